// Bounds on the DHT provider records other peers make this host store (p2p/constants.ts: per key,
// per peer, in all, and their age). kad-dht 16 stores every ADD_PROVIDER a peer sends for itself,
// never expires it, and offers no limit; the ADD_PROVIDER handler calls `providers.addProvider`, so
// that one method of the DHT's Providers is wrapped here. A refused record throws: the handler then
// also skips putting the sender's addresses into the peer store.
import * as C from '../constants.ts'
import { ProviderRecordRefusedError } from '../errors.ts'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** The part of kad-dht's Providers this module wraps. */
export interface ProviderStore {
  addProvider: (cid: CID, provider: PeerId, options?: any) => Promise<void>
  removeProvider: (cid: CID, provider: PeerId, options?: any) => Promise<void>
}

export interface ProviderBounds {
  perKey: number
  perPeer: number
  total: number
  ttlMs: number
}

export const DEFAULT_PROVIDER_BOUNDS: ProviderBounds = {
  perKey: C.MAX_PROVIDERS_PER_KEY,
  perPeer: C.MAX_PROVIDER_RECORDS_PER_PEER,
  total: C.MAX_PROVIDER_RECORDS,
  ttlMs: C.PROVIDER_RECORD_TTL_MS
}

/** What the bounds hold now: records of other peers, in all and on the fullest key. */
export interface ProviderRecordStats { total: number, keys: number, maxPerKey: number, maxPerPeer: number }

/** Wraps `store` so that other peers' records stay within `bounds`; our own are never refused. */
export function boundProviderRecords (store: ProviderStore, selfId: string, bounds: ProviderBounds = DEFAULT_PROVIDER_BOUNDS): () => ProviderRecordStats {
  const add = store.addProvider.bind(store)
  const remove = store.removeProvider.bind(store)
  // Per key (the multihash, base16), the providers in the order of their last record, with its time.
  const byKey = new Map<string, { cid: CID, peers: Map<string, { peer: PeerId, at: number }> }>()
  const perPeer = new Map<string, number>()
  let total = 0

  const forget = (key: string, peer: string): void => {
    const k = byKey.get(key)
    if (k?.peers.delete(peer) !== true) return
    if (k.peers.size === 0) byKey.delete(key)
    total--
    const n = (perPeer.get(peer) ?? 1) - 1
    if (n === 0) perPeer.delete(peer)
    else perPeer.set(peer, n)
  }
  const evict = async (key: string, peer: string): Promise<void> => {
    const rec = byKey.get(key)?.peers.get(peer)
    if (rec === undefined) return
    const cid = byKey.get(key)!.cid
    forget(key, peer)
    await remove(cid, rec.peer).catch(() => {})
  }
  const expire = async (): Promise<void> => {
    const before = Date.now() - bounds.ttlMs
    for (const [key, k] of [...byKey]) {
      for (const [peer, rec] of [...k.peers]) if (rec.at < before) await evict(key, peer)
    }
  }

  store.addProvider = async (cid, provider, options) => {
    const peer = provider.toString()
    if (peer === selfId) { await add(cid, provider, options); return }
    const key = Buffer.from(cid.multihash.bytes).toString('hex')
    const k = byKey.get(key)
    if (k?.peers.has(peer) === true) {
      // A refresh: moves to the newest end of its key.
      k.peers.delete(peer)
      k.peers.set(peer, { peer: provider, at: Date.now() })
      await add(cid, provider, options)
      return
    }
    if ((perPeer.get(peer) ?? 0) >= bounds.perPeer) {
      throw new ProviderRecordRefusedError(`peer already has ${bounds.perPeer} provider records here`)
    }
    if (total >= bounds.total) await expire()
    if (total >= bounds.total) throw new ProviderRecordRefusedError(`${bounds.total} provider records held already`)
    if (k !== undefined && k.peers.size >= bounds.perKey) await evict(key, k.peers.keys().next().value as string)
    const entry = byKey.get(key) ?? { cid, peers: new Map() }
    byKey.set(key, entry)
    entry.peers.set(peer, { peer: provider, at: Date.now() })
    perPeer.set(peer, (perPeer.get(peer) ?? 0) + 1)
    total++
    try {
      await add(cid, provider, options)
    } catch (err) {
      forget(key, peer)
      throw err
    }
  }
  store.removeProvider = async (cid, provider, options) => {
    forget(Buffer.from(cid.multihash.bytes).toString('hex'), provider.toString())
    await remove(cid, provider, options)
  }

  return () => {
    let maxPerKey = 0
    for (const k of byKey.values()) maxPerKey = Math.max(maxPerKey, k.peers.size)
    let maxPerPeer = 0
    for (const n of perPeer.values()) maxPerPeer = Math.max(maxPerPeer, n)
    return { total, keys: byKey.size, maxPerKey, maxPerPeer }
  }
}
