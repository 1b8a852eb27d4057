// The gossip validator of the demand topic. A demand that is oversized, malformed, badly signed,
// for another network or too far ahead is rejected: gossipsub does not forward it and scores the
// sending peer down. One that expired or is a second copy of a demand id already seen is ignored:
// not forwarded, no penalty, since an honest peer may have relayed it late (DEMAND_VERDICTS).
import { silentLogger, type ComponentLogger } from '../../config/index.ts'
import { decodeDemand, verifyDemandSignature, DemandInvalidError, type Demand } from './demand.ts'
import { CLOCK_SKEW_SECONDS, MAX_DEMAND_TTL_SECONDS, MAX_SEEN_DEMANDS } from './constants.ts'

export interface DemandValidatorOptions {
  chainId: number
  dtmc: string
  /** Seconds since the epoch; injectable for tests. */
  now?: () => number
  maxSeen?: number
}

/** What the daemon hands the validator, as js-libp2p hands its components (createP2PHost's second argument). */
export interface DemandValidatorComponents {
  /** Default: silentLogger. */
  logger?: ComponentLogger
}

export interface DemandValidator {
  /** Checks one gossip message; returns the demand or throws DemandInvalidError. */
  check: (bytes: Uint8Array) => { demand: Demand, demandHash: string }
  /** Checks a demand that came another way (a solicitation): signature, network, expiry; not the seen set. */
  verify: (demand: Demand) => string
  /** The gossipsub verdict for one message. */
  validate: (msg: { from: string, data: Uint8Array }) => 'accept' | 'ignore' | 'reject'
}

export function createDemandValidator (opts: DemandValidatorOptions, components: DemandValidatorComponents = {}): DemandValidator {
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000))
  const maxSeen = opts.maxSeen ?? MAX_SEEN_DEMANDS
  const log = (components.logger ?? silentLogger).forComponent('sdte:demand')
  const dtmc = opts.dtmc.toLowerCase()
  // demandId -> expiresAt, in insertion order, bounded.
  const seen = new Map<string, number>()

  const checkTerms = (d: Demand): void => {
    if (d.chainId !== opts.chainId || d.dtmc !== dtmc) throw new DemandInvalidError('network', `demand for chain ${d.chainId} / ${d.dtmc}, not this network`)
    const t = now()
    if (d.expiresAt + CLOCK_SKEW_SECONDS < t) throw new DemandInvalidError('expired', 'demand expired')
    if (d.expiresAt > t + MAX_DEMAND_TTL_SECONDS + CLOCK_SKEW_SECONDS) throw new DemandInvalidError('too-far', `demand expires more than ${MAX_DEMAND_TTL_SECONDS} s ahead`)
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

  return {
    check,
    verify: (d) => {
      const demandHash = verifyDemandSignature(d)
      checkTerms(d)
      return demandHash
    },
    validate: (msg) => {
      try {
        check(msg.data)
        return 'accept'
      } catch (err) {
        if (!(err instanceof DemandInvalidError)) throw err
        log.debug(`demand ${err.verdict === 'reject' ? 'rejected' : 'ignored'}`, { from: msg.from, reason: err.reason })
        return err.verdict
      }
    }
  }
}
