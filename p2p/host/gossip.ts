// The gossip part of the host: publish, subscribe with a per-topic validator (gossipsub scores a
// peer down for each message its validator rejects), and who is subscribed.
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { createTopicScoreParams, validateTopicScoreParams } from '@libp2p/gossipsub/score'
import * as C from '../constants.ts'
import { InvalidP2PInputError, NoTopicPeersError, P2PStateError } from '../errors.ts'
import { parsePeerId } from './util.ts'
import type { Message, TopicValidatorFn } from '@libp2p/gossipsub'
import type { Connection, PeerId } from '@libp2p/interface'
import type { TopicScoreParams } from '@libp2p/gossipsub/score'
import type { Logger, MetricsRegistry } from '../../config/index.ts'
import type { ResolvedP2PHostOptions } from './options.ts'
import type { GossipVerdict, P2PHost, SdteLibp2p } from './types.ts'

export function checkTopic (topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > C.MAX_TOPIC_LENGTH || !/^[\x21-\x7e]+$/.test(topic)) {
    throw new InvalidP2PInputError(`topic must be 1..${C.MAX_TOPIC_LENGTH} printable ASCII characters`)
  }
}

/** Topic score: only invalid messages count (P4); mesh-delivery penalties would punish quiet topics. */
function topicScoreParams (): TopicScoreParams {
  const p = createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 1000,
    firstMessageDeliveriesWeight: 0.1,
    firstMessageDeliveriesDecay: 0.99,
    firstMessageDeliveriesCap: 100,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: C.GOSSIP_INVALID_MESSAGE_WEIGHT,
    invalidMessageDeliveriesDecay: C.GOSSIP_INVALID_MESSAGE_DECAY
  })
  validateTopicScoreParams(p)
  return p
}

/** The parts of gossipsub's caches the bounds below touch (gossipsub 17 internals, checked at start). */
interface TimeCache { entries: Map<string, unknown>, put: (key: string, value?: unknown) => boolean }
interface GossipCaches {
  seenCache: TimeCache
  publishedMessageIds: TimeCache
  fastMsgIdCache?: TimeCache
  mcache: { msgs: Map<string, unknown>, put: (id: unknown, msg: unknown, validated?: boolean) => boolean }
}

/** What gossipsub's caches hold now. */
export interface GossipCacheStats { seen: number, mcache: number }

/**
 * Bounds gossipsub's caches by count as well as by time (C.GOSSIP_MAX_SEEN, C.GOSSIP_MAX_MCACHE): each
 * message id a peer sends goes into the seen caches before it is validated, for GOSSIP_SEEN_TTL_MS,
 * so a flood of unique messages grew them at the flood's rate. Past the bound the oldest ids go
 * (entries are in insertion order, which gossipsub's own prune relies on too).
 */
export function boundGossipCaches (pubsub: unknown, maxSeen = C.GOSSIP_MAX_SEEN, maxMcache = C.GOSSIP_MAX_MCACHE): () => GossipCacheStats {
  const g = pubsub as GossipCaches
  if (!(g.seenCache?.entries instanceof Map) || !(g.mcache?.msgs instanceof Map)) throw new P2PStateError('gossipsub caches are not where this version keeps them')
  const caches = [g.seenCache, g.publishedMessageIds, g.fastMsgIdCache].filter((c): c is TimeCache => c?.entries instanceof Map)
  for (const cache of caches) {
    const put = cache.put.bind(cache)
    cache.put = (key, value) => {
      const collided = put(key, value)
      for (const oldest of cache.entries.keys()) {
        if (cache.entries.size <= maxSeen) break
        cache.entries.delete(oldest)
      }
      return collided
    }
  }
  const mput = g.mcache.put.bind(g.mcache)
  // A message not kept is still delivered and forwarded; it is only not served to IWANT.
  g.mcache.put = (id, msg, validated) => g.mcache.msgs.size >= maxMcache ? false : mput(id, msg, validated)
  return () => ({ seen: g.seenCache.entries.size, mcache: g.mcache.msgs.size })
}

/** The parts of gossipsub's per-peer state repairStreams reads (gossipsub 17 internals, checked at start). */
interface GossipPeerState {
  peers: Map<string, unknown>
  streamsOutbound: Map<string, { rawStream: { status: string, remoteWriteStatus: string, abort: (err: Error) => void } }>
  protocols: string[]
  onPeerConnected: (peerId: PeerId, connection: Connection) => void
}

/** What gossipStreamRepairer may do: how often a peer is retried, and how many reopenings a peer gets in a window. */
export interface GossipStreamRepairLimits {
  /** Least time between two attempts for one peer. Default GOSSIP_STREAM_RETRY_MS. */
  retryMs?: number
  /** Reopenings of one peer within windowMs, past which it is left alone. Default GOSSIP_MAX_STREAM_REPAIRS. */
  maxRepairs?: number
  /** Default GOSSIP_STREAM_REPAIR_WINDOW_MS. */
  windowMs?: number
  /** Peers whose reopenings are remembered after they disconnected. Default GOSSIP_MAX_REPAIR_RECORDS. */
  maxRecords?: number
  /** The clock (tests). Default Date.now. */
  now?: () => number
}

/** One pass of the repairer: peers handed back to gossipsub, and peers newly left alone as over their repairs (counted once a window). */
export interface GossipRepairPass { repaired: number, refused: number }

/**
 * Opens again the gossip streams gossipsub lost while their connection stayed open. Gossipsub opens
 * one outbound stream a peer when the peer connects (or first opens a stream to us) and never again:
 * when that stream fails (a negotiation that timed out on a loaded host, a reset) the peer gets
 * nothing from us any more, and when our read from the peer fails gossipsub forgets the peer
 * altogether, both while still connected. The main cause, libp2p's connection monitor aborting a
 * connection (every stream on it) when one ping was slow, is configured away (libp2p.ts); streams
 * are still lost when a peer holds two connections to us and one of them closes (gossipsub hears of
 * no disconnect, as the peer stays connected). Written here since gossipsub has no option for it: we
 * hand such a peer to gossipsub as a fresh connection (its own onPeerConnected), which adds it back
 * and opens the stream, sending our subscriptions. A peer gets at most `maxRepairs` of these in
 * `windowMs`: one that keeps closing our stream would otherwise have it reopened every `retryMs`.
 * The count is kept by peer id across its connections (a peer that disconnected and came back had a
 * fresh allowance), for the window, in a table of at most `maxRecords` peers beyond those connected.
 */
export function gossipStreamRepairer (node: SdteLibp2p, log: Logger, limits: GossipStreamRepairLimits = {}): () => Promise<GossipRepairPass> {
  const retryMs = limits.retryMs ?? C.GOSSIP_STREAM_RETRY_MS
  const maxRepairs = limits.maxRepairs ?? C.GOSSIP_MAX_STREAM_REPAIRS
  const windowMs = limits.windowMs ?? C.GOSSIP_STREAM_REPAIR_WINDOW_MS
  const maxRecords = limits.maxRecords ?? C.GOSSIP_MAX_REPAIR_RECORDS
  const clock = limits.now ?? Date.now
  const g = node.services.pubsub as unknown as GossipPeerState
  if (!(g.peers instanceof Map) || !(g.streamsOutbound instanceof Map) || !Array.isArray(g.protocols) || typeof g.onPeerConnected !== 'function') {
    throw new P2PStateError('gossipsub peer state is not where this version keeps it')
  }
  const lastTried = new Map<string, number>()
  /**
   * Per peer, connected or not: when its stream was reopened, within the window (at most maxRepairs
   * times), and whether it was logged as over its repairs (once a window). In the order of their
   * last reopening, so the first disconnected one is the one to forget past maxRecords.
   */
  const records = new Map<string, { at: number[], refusedLogged: boolean }>()
  return async () => {
    const now = clock()
    const connected = new Set<string>()
    let repaired = 0
    let refused = 0
    for (const conn of node.getConnections()) {
      const id = conn.remotePeer.toString()
      // Gossipsub does not run on limited (relayed) connections.
      if (conn.status !== 'open' || conn.limits != null || connected.has(id)) continue
      connected.add(id)
      const out = g.streamsOutbound.get(id)
      // The peer closed its end of our stream: it dropped the stream (or us) and reads nothing from it.
      const lost = out !== undefined && (out.rawStream.status !== 'open' || out.rawStream.remoteWriteStatus === 'closed')
      if (g.peers.has(id) && out !== undefined && !lost) continue
      if (now - (lastTried.get(id) ?? -Infinity) < retryMs) continue
      if (!g.peers.has(id)) {
        // Only peers that speak gossipsub (identify told the peer store); others are not ours to add.
        const peer = await node.peerStore.get(conn.remotePeer).catch(() => undefined)
        if (peer?.protocols.some(p => g.protocols.includes(p)) !== true) continue
      }
      const record = records.get(id) ?? { at: [], refusedLogged: false }
      record.at = record.at.filter(t => now - t < windowMs)
      if (record.at.length >= maxRepairs) {
        if (!record.refusedLogged) {
          record.refusedLogged = true
          refused++
          log.warn('gossip stream of a peer lost too often; not reopening it for now', { peerId: id, repairs: record.at.length, windowMs })
        }
        continue
      }
      record.refusedLogged = false
      lastTried.set(id, now)
      record.at.push(now)
      records.delete(id)
      records.set(id, record)
      if (lost) {
        out.rawStream.abort(new P2PStateError('gossip stream closed by the peer'))
        if (g.streamsOutbound.get(id) === out) g.streamsOutbound.delete(id)
      }
      log.info('reopening a lost gossip stream', { peerId: id, known: g.peers.has(id), lost })
      g.onPeerConnected(conn.remotePeer, conn)
      repaired++
    }
    // A peer that connects again is retried at once (gossipsub then opens its streams itself), but
    // its reopenings in the window still count. Disconnected peers' records go once their window has
    // passed, and the oldest past maxRecords (connected peers' never: they are at most maxConnections).
    for (const id of lastTried.keys()) if (!connected.has(id)) lastTried.delete(id)
    let disconnected = 0
    for (const [id, record] of records) {
      if (connected.has(id)) continue
      if (record.at.every(t => now - t >= windowMs)) records.delete(id)
      else disconnected++
    }
    for (const [id] of records) {
      if (disconnected <= maxRecords) break
      if (connected.has(id)) continue
      records.delete(id)
      disconnected--
    }
    return { repaired, refused }
  }
}

/** The host's gossip methods, and what its stop() needs. */
export interface Gossip extends Pick<P2PHost, 'publish' | 'subscribe' | 'topicPeers' | 'gossipScore'> {
  caches: () => GossipCacheStats
  /** Opens again gossip streams lost while their connection stayed open (gossipStreamRepairer); the host runs it now and then. */
  repairStreams: () => Promise<void>
  /** Leaves every topic (the host is stopping). */
  unsubscribeAll: () => void
}

export function createGossip (node: SdteLibp2p, opts: ResolvedP2PHostOptions, log: Logger, metrics: MetricsRegistry, requireStarted: (what: string) => void): Gossip {
  const pubsub = node.services.pubsub
  // Counted where the verdict is applied: `error` is a validator that threw (the message is ignored).
  const validations = metrics.counter('sdte_gossip_validation_total', 'Gossip messages validated, by topic and verdict (accept, reject, ignore, error)', ['topic', 'verdict'])
  const score = (pubsub as unknown as { score?: { params: { topics: Record<string, TopicScoreParams> } } }).score
  const subscriptions = new Map<string, (evt: CustomEvent<Message>) => void>()
  const caches = boundGossipCaches(pubsub)
  const repairer = gossipStreamRepairer(node, log)
  const repairs = metrics.counter('sdte_gossip_stream_repairs_total', 'Peers whose gossip stream was lost while connected and opened again', [])
  const refusedRepairs = metrics.counter('sdte_gossip_stream_repairs_refused_total', 'Peers whose lost gossip stream is no longer reopened: GOSSIP_MAX_STREAM_REPAIRS reopenings within GOSSIP_STREAM_REPAIR_WINDOW_MS (counted once a window)', [])

  function unsubscribe (topic: string): void {
    const listener = subscriptions.get(topic)
    if (listener === undefined) return
    subscriptions.delete(topic)
    pubsub.removeEventListener('message', listener)
    pubsub.topicValidators.delete(topic)
    pubsub.unsubscribe(topic)
  }

  return {
    caches,

    async repairStreams () {
      const pass = await repairer()
      if (pass.repaired > 0) repairs.inc({}, pass.repaired)
      if (pass.refused > 0) refusedRepairs.inc({}, pass.refused)
    },

    async publish (topic, data) {
      requireStarted('publish')
      checkTopic(topic)
      if (!(data instanceof Uint8Array)) throw new InvalidP2PInputError('gossip data must be bytes')
      if (data.byteLength > opts.maxGossipMessageBytes) {
        throw new InvalidP2PInputError(`gossip message of ${data.byteLength} bytes exceeds ${opts.maxGossipMessageBytes}`)
      }
      try {
        const result = await pubsub.publish(topic, data)
        return { recipients: result.recipients.length }
      } catch (err) {
        if ((err as Error).message === 'PublishError.NoPeersSubscribedToTopic') throw new NoTopicPeersError(topic)
        throw err
      }
    },

    subscribe (topic, handler, validator) {
      requireStarted('subscribe')
      checkTopic(topic)
      if (subscriptions.has(topic)) throw new P2PStateError(`already subscribed to ${topic}`)
      const topicValidator: TopicValidatorFn = async (peer, msg) => {
        const count = (verdict: GossipVerdict | 'error'): void => { validations.inc({ topic, verdict }) }
        // StrictSign already refused unsigned messages; this keeps the type narrow.
        if (msg.type !== 'signed' || msg.data.byteLength > opts.maxGossipMessageBytes) {
          count('reject')
          return TopicValidatorResult.Reject
        }
        if (validator === undefined) {
          count('accept')
          return TopicValidatorResult.Accept
        }
        let verdict: GossipVerdict
        try {
          verdict = await validator({ from: msg.from.toString(), topic, data: msg.data, receivedFrom: peer.toString() })
        } catch (err) {
          log.warn('gossip validator threw; ignoring the message', { topic, error: err })
          count('error')
          return TopicValidatorResult.Ignore
        }
        count(verdict)
        if (verdict === 'accept') return TopicValidatorResult.Accept
        if (verdict === 'reject') return TopicValidatorResult.Reject
        return TopicValidatorResult.Ignore
      }
      const listener = (evt: CustomEvent<Message>): void => {
        const msg = evt.detail
        if (msg.topic !== topic || msg.type !== 'signed') return
        try {
          const r = handler({ from: msg.from.toString(), topic, data: msg.data })
          if (r instanceof Promise) r.catch((err: unknown) => { log.warn('gossip handler failed', { topic, error: err }) })
        } catch (err) {
          log.warn('gossip handler failed', { topic, error: err })
        }
      }
      pubsub.topicValidators.set(topic, topicValidator)
      if (score !== undefined && score.params.topics[topic] === undefined) score.params.topics[topic] = topicScoreParams()
      pubsub.addEventListener('message', listener)
      subscriptions.set(topic, listener)
      pubsub.subscribe(topic)
      return () => { unsubscribe(topic) }
    },

    topicPeers (topic) {
      return pubsub.getSubscribers(topic).map(String)
    },

    gossipScore (peerId) {
      return (pubsub as unknown as { getScore: (id: string) => number }).getScore(parsePeerId(peerId).toString())
    },

    unsubscribeAll () {
      for (const topic of [...subscriptions.keys()]) unsubscribe(topic)
    }
  }
}
