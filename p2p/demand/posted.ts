// Which demands BDBC records as posted, read ahead of the gossip. Before, every daemon's validator
// read BDBC (one eth_getLogs) for each demand as it arrived and forwarded it only then, so every hop
// waited for a chain read, and every daemon of a network made its read at the same moment (49 at once
// against one anvil took 1.5 s in bench/network). Here each new block's DemandPosted logs are read
// once, for every demand in it, as the block is seen: the buyer posts before it gossips, so a demand
// is usually known when it arrives. A demand not known (not yet scanned, forgotten past the bound,
// or never posted) is read from the chain as before, so the check is not weakened: only a demand
// seen in a DemandPosted log ever answers yes.
// A reorganisation may drop a block after it was scanned (and a buyer need not post its demand again):
// each scan reads the last `reorgDepth` blocks again, and a demand those blocks no longer hold is
// forgotten (read from the chain again if it comes up), so that "posted" holds only for what the chain
// holds now, from the first scan after the fork (a block seen after it) on.
import { silentLogger, type ComponentLogger } from '../../config/index.ts'
import { MAX_KNOWN_POSTED_DEMANDS } from './constants.ts'

export interface PostedDemandsOptions {
  /** The first block to scan (BDBC's deploy block). */
  fromBlock: number
  /**
   * Blocks a reorganisation may replace (the chain client's MAX_REORG_DEPTH): each scan reads these again and
   * forgets a demand they no longer hold. 0: a block once read is final.
   */
  reorgDepth: number
  /** DemandPosted logs of a block range, inclusive, with the block each is in. */
  read: (fromBlock: number, toBlock: number) => Promise<Array<{ buyer: string, demandHash: string, blockNumber: number }>>
  /** The block in which BDBC records this demand, or null when it does not: the chain read made for one not known here. */
  readOne: (buyer: string, demandHash: string) => Promise<number | null>
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
  // The demands seen in each of the last reorgDepth blocks scanned: those a reorganisation may still drop.
  const recent = new Map<number, Set<string>>()
  const noteRecent = (blockNumber: number, k: string): void => {
    if (blockNumber <= scannedTo - opts.reorgDepth) return
    const keys = recent.get(blockNumber) ?? new Set<string>()
    keys.add(k)
    recent.set(blockNumber, keys)
  }

  // One read at a time, of the blocks since the last one (and the last reorgDepth again) up to the newest
  // head seen; then the next, if heads came meanwhile. A failed read is retried at the next block.
  const scan = async (): Promise<void> => {
    const to = head
    const from = Math.max(opts.fromBlock, scannedTo + 1 - opts.reorgDepth)
    let read = false
    const started = Date.now()
    try {
      const found = await opts.read(from, to)
      log.debug('posted demands scanned', { from, to, found: found.length, ms: Date.now() - started })
      const now = new Set(found.map(d => key(d.buyer, d.demandHash)))
      // What the re-read blocks held at the last look and hold no more: dropped by a reorganisation.
      for (const [blockNumber, keys] of recent) {
        if (blockNumber < from || blockNumber > to) continue // not read now (one known from a chain read alone may be newer)
        for (const k of keys) {
          if (!now.has(k)) {
            known.delete(k)
            log.debug('a posted demand is gone from the chain (reorganisation): forgotten', { blockNumber })
          }
        }
        recent.delete(blockNumber)
      }
      scannedTo = to
      for (const d of found) {
        const k = key(d.buyer, d.demandHash)
        remember(k)
        noteRecent(d.blockNumber, k)
      }
      for (const blockNumber of recent.keys()) if (blockNumber <= scannedTo - opts.reorgDepth) recent.delete(blockNumber)
      read = true
    } catch (err) {
      log.debug('reading posted demands failed (retried at the next block)', { err: err as Error })
    } finally {
      scanning = read && scannedTo < head ? scan() : null
    }
  }

  return {
    onBlock (blockNumber) {
      if (blockNumber > head) log.debug('head seen', { blockNumber })
      if (blockNumber > head) head = blockNumber
      if (scanning === null && scannedTo < head) scanning = scan()
    },
    async isPosted (buyer, demandHash) {
      const k = key(buyer, demandHash)
      const started = Date.now()
      const at = { head, scannedTo }
      if (known.has(k)) { log.debug('posted check', { how: 'known', ms: 0, ...at }); return true }
      // A scan under way may be reading the demand's block now.
      if (scanning !== null) {
        await scanning
        if (known.has(k)) { log.debug('posted check', { how: 'scan', ms: Date.now() - started, ...at }); return true }
      }
      const blockNumber = await opts.readOne(buyer, demandHash)
      log.debug('posted check', { how: 'read', ms: Date.now() - started, found: blockNumber, ...at })
      if (blockNumber === null) return false
      remember(k)
      noteRecent(blockNumber, k)
      return true
    },
    known: () => known.size
  }
}
