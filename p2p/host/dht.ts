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

export function createDht (node: SdteLibp2p, opts: ResolvedP2PHostOptions, log: Logger, host: DhtHostState): Dht {
  const { selfId, requireStarted } = host
  const providedKeys = new Map<string, CID>()
  let reprovideTimer: ReturnType<typeof setTimeout> | undefined
  let reproviding: Promise<void> | undefined
  const providerRecords = boundProviderRecords((node.services.dht as unknown as { providers: ProviderStore }).providers, selfId)

  // kad-dht's exported RoutingTable type only declares `size`; the instance is an event emitter.
  const routingTable = (node.services.dht as SingleKadDHT).routingTable as unknown as {
    size: number
    kBucketSize: number
    addEventListener: (type: 'peer:add', listener: () => void) => void
  }

  /** Sends our provider record for `cid`; returns how many peers stored it (partial on timeout). */
  async function announce (key: string, cid: CID, signal?: AbortSignal): Promise<number> {
    let announcedTo = 0
    const timeout = AbortSignal.timeout(opts.provideTimeoutMs)
    const stopping = host.lifetime()
    try {
      for await (const event of node.services.dht.provide(cid, { signal: AbortSignal.any([timeout, stopping, ...(signal == null ? [] : [signal])]) })) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') announcedTo++
      }
    } catch (err) {
      signal?.throwIfAborted()
      // Out of time or stopping: the record is stored locally and reached `announcedTo` peers.
      if (!timeout.aborted && !stopping.aborted) throw err
      log.debug('provide cut short', { dhtKey: key, announcedTo })
    }
    log.debug('provided', { dhtKey: key, announcedTo })
    return announcedTo
  }

  // Provider records go to the peers closest to the key at the time of provide. In a small or
  // young network those may not have joined yet, so while the routing table is small we
  // re-announce our keys whenever it gains a peer. Large networks rely on kad-dht's reprovider.
  function scheduleReprovide (): void {
    if (host.status() !== 'started' || providedKeys.size === 0) return
    if (routingTable.size > routingTable.kBucketSize) return
    clearTimeout(reprovideTimer)
    reprovideTimer = setTimeout(() => {
      const previous = reproviding ?? Promise.resolve()
      reproviding = previous.then(async () => {
        for (const [key, cid] of providedKeys) {
          if (host.status() !== 'started') return
          try {
            await announce(key, cid)
          } catch (err) {
            log.debug('re-provide failed', { dhtKey: key, error: err })
          }
        }
      })
    }, C.REPROVIDE_DEBOUNCE_MS)
  }
  routingTable.addEventListener('peer:add', scheduleReprovide)

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
