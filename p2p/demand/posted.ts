// Which demands BDBC records as posted, read ahead of the gossip. Before, every daemon's validator
// read BDBC (one eth_getLogs) for each demand as it arrived and forwarded it only then, so every hop
// waited for a chain read, and every daemon of a network made its read at the same moment (49 at once
// against one anvil took 1.5 s in bench/network). Here each new block's DemandPosted logs are read
// once, for every demand in it, as the block is seen: the buyer posts before it gossips, so a demand
// is usually known when it arrives. A demand not known (not yet scanned, forgotten past the bound,
// or never posted) is read from the chain as before, so the check is not weakened: only a demand
// seen in a DemandPosted log ever answers yes.
import { silentLogger, type ComponentLogger } from '../../config/index.ts'
import { MAX_KNOWN_POSTED_DEMANDS } from './constants.ts'

export interface PostedDemandsOptions {
  /** The first block to scan (BDBC's deploy block). */
  fromBlock: number
  /** DemandPosted logs of a block range, inclusive. */
  read: (fromBlock: number, toBlock: number) => Promise<Array<{ buyer: string, demandHash: string }>>
  /** Whether BDBC records this demand: the chain read made for one not known here. */
  readOne: (buyer: string, demandHash: string) => Promise<boolean>
  /** Default: MAX_KNOWN_POSTED_DEMANDS. */
  maxKnown?: number
}

export interface PostedDemands {
  /** A new block (the chain's head): scans up to it in the background. */
  onBlock: (blockNumber: number) => void
  /** The validator's isPosted: known from a scan, or read from the chain. Throws when the chain cannot be read. */
  isPosted: (buyer: string, demandHash: string) => Promise<boolean>
  /** Demands known now (tests, diagnostics). */
  known: () => number
}

export function createPostedDemands (opts: PostedDemandsOptions, components: { logger?: ComponentLogger } = {}): PostedDemands {
  const log = (components.logger ?? silentLogger).forComponent('sdte:demand')
  const maxKnown = opts.maxKnown ?? MAX_KNOWN_POSTED_DEMANDS
  const known = new Set<string>()
  const key = (buyer: string, demandHash: string): string => `${buyer.toLowerCase()}:${demandHash.toLowerCase()}`
  const remember = (k: string): void => {
    known.delete(k)
    known.add(k)
    for (const oldest of known) {
      if (known.size <= maxKnown) break
      known.delete(oldest)
    }
  }
  let scannedTo = opts.fromBlock - 1
  let head = scannedTo
  let scanning: Promise<void> | null = null

  // One read at a time, of the blocks since the last one up to the newest head seen; then the next,
  // if heads came meanwhile. A failed read is retried at the next block.
  const scan = async (): Promise<void> => {
    const to = head
    let read = false
    try {
      for (const d of await opts.read(scannedTo + 1, to)) remember(key(d.buyer, d.demandHash))
      scannedTo = to
      read = true
    } catch (err) {
      log.debug('reading posted demands failed (retried at the next block)', { err: err as Error })
    } finally {
      scanning = read && scannedTo < head ? scan() : null
    }
  }

  return {
    onBlock (blockNumber) {
      if (blockNumber > head) head = blockNumber
      if (scanning === null && scannedTo < head) scanning = scan()
    },
    async isPosted (buyer, demandHash) {
      const k = key(buyer, demandHash)
      if (known.has(k)) return true
      // A scan under way may be reading the demand's block now.
      if (scanning !== null) {
        await scanning
        if (known.has(k)) return true
      }
      const posted = await opts.readOne(buyer, demandHash)
      if (posted) remember(k)
      return posted
    },
    known: () => known.size
  }
}
