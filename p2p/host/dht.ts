// The DHT part of the host: provider records for `sdte:<kind>:<value>` keys (each key is provided
// under the CID of its bytes), re-announced while the network is small, and found with retries.
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import * as C from '../constants.ts'
import { InvalidP2PInputError, P2PStateError } from '../errors.ts'
import { sleep } from './util.ts'
import { boundProviderRecords, type ProviderRecordStats, type ProviderStore } from './providers.ts'
import type { SingleKadDHT } from '@libp2p/kad-dht'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../../config/index.ts'
import type { ResolvedP2PHostOptions } from './options.ts'
import type { P2PHost, P2PHostStatus, PeerSummary, SdteLibp2p } from './types.ts'

/** Checks a DHT key: `sdte:<kind>:<value>`, printable ASCII, bounded. */
export function checkDhtKey (key: string): string {
  if (typeof key !== 'string' || key.length > C.MAX_DHT_KEY_LENGTH || !C.DHT_KEY_PATTERN.test(key)) {
    throw new InvalidP2PInputError(`DHT key must match sdte:<kind>:<value> (printable ASCII, at most ${C.MAX_DHT_KEY_LENGTH} characters)`)
  }
  return key
}

/** The CID a DHT key is provided under: CIDv1, raw codec, sha256 of the key's UTF-8 bytes. */
export async function dhtKeyToCid (key: string): Promise<CID> {
  checkDhtKey(key)
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(key)))
}

/** What the DHT part needs of its host: its state, and the signal that its stop() aborts. */
export interface DhtHostState {
  selfId: string
  status: () => P2PHostStatus
  requireStarted: (what: string) => void
  /** Aborted by the host's stop(): ends in-flight DHT work. */
  lifetime: () => AbortSignal
}

/** The host's DHT methods, and what its stop() needs. */
export interface Dht extends Pick<P2PHost, 'provide' | 'findProviders'> {
  /** Other peers' provider records held here (bounded, providers.ts). */
  providerRecords: () => ProviderRecordStats
  /** Cancels a pending re-announcement (the host is stopping). */
  cancelReprovide: () => void
  /** Resolves when a re-announcement under way has ended. */
  settled: () => Promise<void>
}

/** When re-announces run (the defaults are the p2p constants; a unit test shortens them). */
export interface ReprovideTiming {
  /** A re-announce waits this long after the last new DHT peer (batches a burst of joins). */
  debounceMs: number
  /** ...and starts at least this long after the previous announce began. */
  minIntervalMs: number
}

const DEFAULT_REPROVIDE_TIMING: ReprovideTiming = { debounceMs: C.REPROVIDE_DEBOUNCE_MS, minIntervalMs: C.DHT_REPROVIDE_MIN_INTERVAL_MS }

export function createDht (node: SdteLibp2p, opts: ResolvedP2PHostOptions, log: Logger, host: DhtHostState, timing: ReprovideTiming = DEFAULT_REPROVIDE_TIMING): Dht {
  const { selfId, requireStarted } = host
  const providedKeys = new Map<string, CID>()
  /** For each provided key, the peers that stored our record at its latest announce. */
  const storedAt = new Map<string, Set<string>>()
  let reprovideTimer: ReturnType<typeof setTimeout> | undefined
  /** The re-announce under way, if any: at most one runs at a time. */
  let reproviding: Promise<void> | undefined
  /** A new peer arrived since the latest re-announce began: one more is due. */
  let reprovideDue = false
  let lastAnnounceAt = -Infinity
  const providerRecords = boundProviderRecords((node.services.dht as unknown as { providers: ProviderStore }).providers, selfId)

  // kad-dht's exported RoutingTable type only declares `size`; the instance is an event emitter.
  const routingTable = (node.services.dht as SingleKadDHT).routingTable as unknown as {
    size: number
    kBucketSize: number
    addEventListener: (type: 'peer:add', listener: (event: CustomEvent<PeerId>) => void) => void
  }

  /** Sends our provider record for `cid`; returns how many peers stored it (partial on timeout). */
  async function announce (key: string, cid: CID, signal?: AbortSignal): Promise<number> {
    let announcedTo = 0
    const stored = new Set<string>()
    lastAnnounceAt = Date.now()
    const timeout = AbortSignal.timeout(opts.provideTimeoutMs)
    const stopping = host.lifetime()
    try {
      for await (const event of node.services.dht.provide(cid, { signal: AbortSignal.any([timeout, stopping, ...(signal == null ? [] : [signal])]) })) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') {
          announcedTo++
          stored.add(event.from.toString())
        }
      }
    } catch (err) {
      signal?.throwIfAborted()
      // Out of time or stopping: the record is stored locally and reached `announcedTo` peers.
      if (!timeout.aborted && !stopping.aborted) throw err
      log.debug('provide cut short', { dhtKey: key, announcedTo })
    } finally {
      // Only the latest announce's peers are kept: bounded by k per key.
      if (providedKeys.has(key)) storedAt.set(key, stored)
    }
    log.debug('provided', { dhtKey: key, announcedTo })
    return announcedTo
  }

  // Provider records go to the peers closest to the key at the time of provide. In a small or
  // young network those may not have joined yet, so while the routing table is small we
  // re-announce our keys when it gains a peer that does not hold them yet (a daemon that provided
  // before its peers joined must still be found). Large networks rely on kad-dht's reprovider.
  // A re-announce is a whole provide per key, so a burst of joins is coalesced: at most one runs at
  // a time, and one starts no sooner than minIntervalMs after the previous announce began; peers
  // that join in between are reached by one trailing re-announce.
  function onPeerAdded (event: CustomEvent<PeerId>): void {
    if (host.status() !== 'started' || providedKeys.size === 0) return
    if (routingTable.size > routingTable.kBucketSize) return
    const peer = event.detail?.toString()
    // kad-dht emits peer:add again for a peer it evicted and re-added: it still holds our records.
    if (peer != null && [...providedKeys.keys()].every(key => storedAt.get(key)?.has(peer) === true)) return
    reprovideDue = true
    if (reproviding == null) armReprovide()
  }

  function armReprovide (): void {
    clearTimeout(reprovideTimer)
    const now = Date.now()
    const at = Math.max(now + timing.debounceMs, lastAnnounceAt + timing.minIntervalMs)
    reprovideTimer = setTimeout(reprovide, at - now)
  }

  function reprovide (): void {
    reprovideDue = false
    reproviding = (async () => {
      for (const [key, cid] of providedKeys) {
        if (host.status() !== 'started') return
        try {
          await announce(key, cid)
        } catch (err) {
          log.debug('re-provide failed', { dhtKey: key, error: err })
        }
      }
    })().finally(() => {
      reproviding = undefined
      if (reprovideDue && host.status() === 'started') armReprovide()
    })
  }
  routingTable.addEventListener('peer:add', onPeerAdded)

  return {
    providerRecords,

    async provide (key, { signal } = {}) {
      requireStarted('provide')
      const cid = await dhtKeyToCid(key)
      if (!providedKeys.has(key) && providedKeys.size >= opts.maxProvidedKeys) {
        throw new P2PStateError(`already providing ${opts.maxProvidedKeys} keys (maxProvidedKeys)`)
      }
      providedKeys.set(key, cid)
      if (routingTable.size === 0) {
        // Nobody to tell yet: the first DHT peer to arrive triggers the announcement.
        log.debug('provide deferred until a DHT peer joins', { dhtKey: key })
        return { announcedTo: 0 }
      }
      return { announcedTo: await announce(key, cid, signal) }
    },

    async findProviders (key, { signal, limit = C.DEFAULT_FIND_PROVIDERS_LIMIT, timeoutMs = opts.findProvidersTimeoutMs, includeSelf = false } = {}) {
      requireStarted('findProviders')
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new InvalidP2PInputError('limit must be 1..1000')
      if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new InvalidP2PInputError('timeoutMs must be a positive integer')
      const cid = await dhtKeyToCid(key)
      const deadline = AbortSignal.timeout(timeoutMs)
      const searchSignal = AbortSignal.any([deadline, host.lifetime(), ...(signal == null ? [] : [signal])])
      const found = new Map<string, PeerSummary>()
      // A provider record may still be on its way (a provide racing this query, or the closest
      // peers only just joined): query again until something is found or the deadline passes.
      while (true) {
        // Each pass's query gets a signal of its own, aborted once the pass is over (enough providers,
        // or the query ended): breaking out of the loop alone does not stop it. libp2p merges its
        // content routers' iterators (it-merge), which asks kad-dht's to return without awaiting it:
        // a query parked on a response goes on until its next event, and its dials and streams with it.
        const pass = new AbortController()
        try {
          for await (const info of node.contentRouting.findProviders(cid, { signal: AbortSignal.any([searchSignal, pass.signal]) })) {
            const id = info.id.toString()
            if (id === selfId && !includeSelf) continue
            const prev = found.get(id)
            const addresses = [...new Set([...(prev?.addresses ?? []), ...info.multiaddrs.map(String)])]
            found.set(id, { peerId: id, addresses })
            if (found.size >= limit) break
          }
        } catch (err) {
          if (!searchSignal.aborted) log.debug('findProviders pass failed', { dhtKey: key, error: err })
        } finally {
          pass.abort()
        }
        signal?.throwIfAborted()
        if (found.size > 0 || searchSignal.aborted) break
        await sleep(opts.findProvidersRetryMs, searchSignal)
        signal?.throwIfAborted()
        if (searchSignal.aborted) break
      }
      for (const p of found.values()) {
        if (p.addresses.length > 0) continue
        try {
          const peer = await node.peerStore.get(peerIdFromString(p.peerId))
          p.addresses = peer.addresses.map(a => a.multiaddr.toString())
        } catch {
          // Unknown to our peer store: the caller can still dial by peer id through the DHT.
        }
      }
      return [...found.values()].slice(0, limit)
    },

    cancelReprovide () {
      clearTimeout(reprovideTimer)
    },

    async settled () {
      await reproviding?.catch(() => {})
    }
  }
}
