// The gossip validator of the demand topic. A demand that is oversized, malformed, badly signed,
// for another network or too far ahead is rejected: gossipsub does not forward it and scores the
// sending peer down. One that expired or is a second copy of a demand id already seen is ignored:
// not forwarded, no penalty, since an honest peer may have relayed it late (DEMAND_VERDICTS).
// Rejected too: a demand whose `buyerPeer` is not the peer that authored the gossip message (a demand
// naming a victim would make every seller and node dial the victim), and one whose hash the buyer
// has not posted to BDBC (a demand nobody paid gas for). A buyer over its rate (MAX_DEMANDS_PER_BUYER
// per DEMAND_RATE_WINDOW_SECONDS) is ignored: not forwarded, nobody penalised, since it paid for each.
import { silentLogger, type ComponentLogger } from '../../config/index.ts'
import { decodeDemand, verifyDemandSignature, DemandInvalidError, type Demand } from './demand.ts'
import { CLOCK_SKEW_SECONDS, DEMAND_RATE_WINDOW_SECONDS, MAX_DEMAND_TTL_SECONDS, MAX_DEMANDS_PER_BUYER, MAX_RATE_TRACKED_BUYERS, MAX_SEEN_DEMANDS } from './constants.ts'

export interface DemandValidatorOptions {
  chainId: number
  dtmc: string
  /**
   * Whether BDBC records `demandHash` as posted by `buyer` (a DemandPosted event). Throws when the
   * chain cannot be read (the message is then ignored, not held against anyone).
   */
  isPosted: (buyer: string, demandHash: string) => Promise<boolean>
  /** Seconds since the epoch; injectable for tests. */
  now?: () => number
  maxSeen?: number
  /** Default: MAX_DEMANDS_PER_BUYER. */
  maxPerBuyer?: number
}

/** What the daemon hands the validator, as js-libp2p hands its components (createP2PHost's second argument). */
export interface DemandValidatorComponents {
  /** Default: silentLogger. */
  logger?: ComponentLogger
}

export interface DemandValidator {
  /** Checks one gossip message's form (not its author nor BDBC); returns the demand or throws DemandInvalidError. */
  check: (bytes: Uint8Array) => { demand: Demand, demandHash: string }
  /**
   * Checks a demand that came another way, a solicitation from `remotePeer`: signature, network,
   * expiry, the buyer's peer and BDBC; not the seen set nor the rate. Throws DemandInvalidError.
   */
  verify: (demand: Demand, remotePeer: string) => Promise<string>
  /** The gossipsub verdict for one message (`from`: its author). */
  validate: (msg: { from: string, data: Uint8Array }) => Promise<'accept' | 'ignore' | 'reject'>
  /**
   * The demand `validate` accepted in exactly these bytes (the same Uint8Array, which gossipsub hands on to the
   * topic's handler), or undefined: the handler then need not decode and check the signature a second time.
   */
  accepted: (bytes: Uint8Array) => { demand: Demand, demandHash: string } | undefined
}

export function createDemandValidator (opts: DemandValidatorOptions, components: DemandValidatorComponents = {}): DemandValidator {
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000))
  const maxSeen = opts.maxSeen ?? MAX_SEEN_DEMANDS
  const maxPerBuyer = opts.maxPerBuyer ?? MAX_DEMANDS_PER_BUYER
  const log = (components.logger ?? silentLogger).forComponent('sdte:demand')
  const dtmc = opts.dtmc.toLowerCase()
  // demandId -> expiresAt, in insertion order, bounded.
  const seen = new Map<string, number>()
  // buyer -> times (seconds) of its demands accepted within the rate window; bounded in buyers.
  const recent = new Map<string, number[]>()
  // The accepted message's bytes -> its demand, until gossipsub drops the message (weak: no bound needed).
  // Decoding checks the buyer's signature (a secp256k1 recovery, the costliest step of the form check:
  // 25 ms a demand on the loaded bench machine), so the handler takes the result instead of a second decode.
  const acceptedDemands = new WeakMap<Uint8Array, { demand: Demand, demandHash: string }>()

  const checkTerms = (d: Demand): void => {
    if (d.chainId !== opts.chainId || d.dtmc !== dtmc) throw new DemandInvalidError('network', `demand for chain ${d.chainId} / ${d.dtmc}, not this network`)
    const t = now()
    if (d.expiresAt + CLOCK_SKEW_SECONDS < t) throw new DemandInvalidError('expired', 'demand expired')
    if (d.expiresAt > t + MAX_DEMAND_TTL_SECONDS + CLOCK_SKEW_SECONDS) throw new DemandInvalidError('too-far', `demand expires more than ${MAX_DEMAND_TTL_SECONDS} s ahead`)
  }

  const checkAuthor = (d: Demand, author: string): void => {
    if (d.buyerPeer !== author) throw new DemandInvalidError('author', 'the demand names a buyer peer other than its author')
  }

  const checkPosted = async (d: Demand, demandHash: string): Promise<void> => {
    if (!await opts.isPosted(d.buyer, demandHash)) throw new DemandInvalidError('not-posted', 'the buyer has not posted this demand to BDBC')
  }

  const check = (bytes: Uint8Array): { demand: Demand, demandHash: string } => {
    const r = decodeDemand(bytes)
    const d = r.demand
    checkTerms(d)
    if (seen.has(d.demandId)) throw new DemandInvalidError('duplicate', 'demand id already seen')
    seen.set(d.demandId, d.expiresAt)
    // Forget the oldest ids beyond the bound (they expire first: TTLs are capped).
    for (const id of seen.keys()) {
      if (seen.size <= maxSeen) break
      seen.delete(id)
    }
    return r
  }

  /** The buyer's demands still in the rate window, or null when it has used its share. */
  const withinRate = (buyer: string): number[] | null => {
    const since = now() - DEMAND_RATE_WINDOW_SECONDS
    const times = (recent.get(buyer) ?? []).filter(t => t > since)
    return times.length >= maxPerBuyer ? null : times
  }

  const counted = (buyer: string, times: number[]): void => {
    recent.delete(buyer)
    recent.set(buyer, [...times, now()])
    // The least recently active buyers go first; a forgotten buyer only gets a fresh window.
    for (const b of recent.keys()) {
      if (recent.size <= MAX_RATE_TRACKED_BUYERS) break
      recent.delete(b)
    }
  }

  return {
    check,
    verify: async (d, remotePeer) => {
      const demandHash = verifyDemandSignature(d)
      checkTerms(d)
      checkAuthor(d, remotePeer)
      await checkPosted(d, demandHash)
      return demandHash
    },
    validate: async (msg) => {
      let demand: Demand
      try {
        const r = check(msg.data)
        demand = r.demand
        log.debug('demand validating', { demandId: demand.demandId })
        checkAuthor(demand, msg.from)
        const times = withinRate(demand.buyer)
        if (times === null) {
          log.debug('demand ignored: buyer over its rate', { from: msg.from, buyer: demand.buyer })
          return 'ignore'
        }
        try {
          await checkPosted(demand, r.demandHash)
        } catch (err) {
          if (err instanceof DemandInvalidError) throw err
          log.debug('demand ignored: BDBC not readable', { from: msg.from, err: err as Error })
          return 'ignore'
        }
        counted(demand.buyer, times)
        acceptedDemands.set(msg.data, r)
        return 'accept'
      } catch (err) {
        if (!(err instanceof DemandInvalidError)) throw err
        log.debug(`demand ${err.verdict === 'reject' ? 'rejected' : 'ignored'}`, { from: msg.from, reason: err.reason })
        return err.verdict
      }
    },
    accepted: (bytes) => acceptedDemands.get(bytes)
  }
}
