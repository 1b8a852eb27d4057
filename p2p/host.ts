// The SDTE libp2p host: TCP + noise + yamux, identify, ping, bootstrap, gossipsub and our own
// Kademlia DHT (`/sdte/kad/1.0.0`, not the public IPFS one), with the small API the roles use:
// publish/subscribe with per-topic validators, provide/find providers of `sdte:<kind>:<value>`
// keys, and protocol streams with limits and deadlines.
//
// Local and private networks are first-class: the DHT keeps loopback and private addresses
// (kad-dht's default mapper drops them and a local testnet then finds nobody) and runs in
// server mode from the start (by default it waits to see a public address first).
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, StrictSign, TopicValidatorResult } from '@libp2p/gossipsub'
import { createTopicScoreParams, validateTopicScoreParams } from '@libp2p/gossipsub/score'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { silentLogger, type ComponentLogger } from '../config/index.ts'
import * as C from './constants.ts'
import {
  DialFailedError, InvalidP2PInputError, NoTopicPeersError, P2POptionsError, P2PStateError, StreamTimeoutError
} from './errors.ts'
import type { GossipSub, Message, TopicValidatorFn } from '@libp2p/gossipsub'
import type { TopicScoreParams } from '@libp2p/gossipsub/score'
import type { Identify } from '@libp2p/identify'
import type { KadDHT, SingleKadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface P2PHostOptions {
  /** Multiaddrs to listen on. Default ['/ip4/127.0.0.1/tcp/0']. */
  listen?: string[]
  /** Multiaddrs (with /p2p/<peer id>) dialled at start and whenever we have no peer. Default []. */
  bootstrap?: string[]
  /** Prefix of our protocol ids. Default '/sdte'; the DHT speaks `${prefix}/kad/1.0.0`. */
  protocolPrefix?: string
  maxConnections?: number
  maxIncomingPendingConnections?: number
  maxParallelDials?: number
  /** Incoming connection attempts accepted per remote host per second. */
  inboundConnectionThreshold?: number
  dialTimeoutMs?: number
  bootstrapRedialIntervalMs?: number
  maxGossipMessageBytes?: number
  maxGossipRpcBytes?: number
  /**
   * Default false: publishing when no peer is subscribed throws NoTopicPeersError instead of
   * silently reaching nobody (a caller can retry once subscriptions have propagated).
   */
  allowPublishToZeroTopicPeers?: boolean
  /** Answer DHT queries (server mode). Default true, so small local networks work. */
  dhtServer?: boolean
  provideTimeoutMs?: number
  findProvidersTimeoutMs?: number
  findProvidersRetryMs?: number
  maxProvidedKeys?: number
  /** Defaults for handle(). */
  maxInboundStreams?: number
  maxOutboundStreams?: number
  handlerTimeoutMs?: number
}

export type ResolvedP2PHostOptions = Required<P2PHostOptions>

export const DEFAULT_P2P_HOST_OPTIONS: Readonly<ResolvedP2PHostOptions> = Object.freeze({
  listen: C.DEFAULT_LISTEN,
  bootstrap: [],
  protocolPrefix: C.DEFAULT_PROTOCOL_PREFIX,
  maxConnections: C.DEFAULT_MAX_CONNECTIONS,
  maxIncomingPendingConnections: C.DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS,
  maxParallelDials: C.DEFAULT_MAX_PARALLEL_DIALS,
  inboundConnectionThreshold: C.DEFAULT_INBOUND_CONNECTION_THRESHOLD,
  dialTimeoutMs: C.DEFAULT_DIAL_TIMEOUT_MS,
  bootstrapRedialIntervalMs: C.DEFAULT_BOOTSTRAP_REDIAL_INTERVAL_MS,
  maxGossipMessageBytes: C.DEFAULT_MAX_GOSSIP_MESSAGE_BYTES,
  maxGossipRpcBytes: C.DEFAULT_MAX_GOSSIP_RPC_BYTES,
  allowPublishToZeroTopicPeers: false,
  dhtServer: true,
  provideTimeoutMs: C.DEFAULT_PROVIDE_TIMEOUT_MS,
  findProvidersTimeoutMs: C.DEFAULT_FIND_PROVIDERS_TIMEOUT_MS,
  findProvidersRetryMs: C.DEFAULT_FIND_PROVIDERS_RETRY_MS,
  maxProvidedKeys: C.DEFAULT_MAX_PROVIDED_KEYS,
  maxInboundStreams: C.DEFAULT_MAX_INBOUND_STREAMS,
  maxOutboundStreams: C.DEFAULT_MAX_OUTBOUND_STREAMS,
  handlerTimeoutMs: C.DEFAULT_HANDLER_TIMEOUT_MS
})

export interface PeerSummary {
  peerId: string
  addresses: string[]
}

export interface GossipMessage {
  /** The signing author (StrictSign: every message is signed by its author's peer key). */
  from: string
  topic: string
  data: Uint8Array
}

export type GossipVerdict = 'accept' | 'ignore' | 'reject'
/**
 * Runs before a message is delivered or forwarded. 'reject' (malformed, bad signature in the
 * payload, ...) drops it and lowers the forwarding peer's score; 'ignore' drops it without penalty
 * (e.g. stale). A validator that throws counts as 'ignore': our bug must not punish peers.
 */
export type GossipValidator = (msg: GossipMessage) => GossipVerdict | Promise<GossipVerdict>
export type GossipHandler = (msg: GossipMessage) => void | Promise<void>

export interface ProtocolHandlerContext {
  remotePeer: string
  connection: Connection
  /** Aborts when the handler's deadline (timeoutMs) passes; pass it to messageChannel. */
  signal: AbortSignal
}
export type ProtocolHandler = (stream: Stream, context: ProtocolHandlerContext) => Promise<void>

export interface HandleOptions {
  maxInboundStreams?: number
  maxOutboundStreams?: number
  /** Whole-exchange deadline of one inbound stream; then it is reset. */
  timeoutMs?: number
}

export interface FindProvidersOptions {
  signal?: AbortSignal
  /** Stop after this many providers. Default 20. */
  limit?: number
  /** Give up (and return what was found, maybe nothing) after this long. Default 10 s. */
  timeoutMs?: number
  /** Include ourselves if we provide the key. Default false. */
  includeSelf?: boolean
}

export type SdteServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  dht: KadDHT
}
export type SdteLibp2p = Libp2p<SdteServices>

export type P2PHostStatus = 'stopped' | 'starting' | 'started' | 'stopping'

export interface P2PHost {
  readonly peerId: string
  readonly options: Readonly<ResolvedP2PHostOptions>
  /** The underlying libp2p node (for tests and diagnostics; roles use the methods below). */
  readonly node: SdteLibp2p
  readonly status: P2PHostStatus
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Our listen addresses, each ending in /p2p/<our peer id>. */
  addresses: () => string[]
  /** Connected peers with their listen addresses (from identify) or connection addresses. */
  peers: () => PeerSummary[]
  connect: (address: string, options?: { signal?: AbortSignal }) => Promise<{ peerId: string }>
  /** `${protocolPrefix}/${name}/${version}`, e.g. protocolId('offer', 1) = '/sdte/offer/1'. */
  protocolId: (name: string, version: string | number) => string
  publish: (topic: string, data: Uint8Array) => Promise<{ recipients: number }>
  subscribe: (topic: string, handler: GossipHandler, validator?: GossipValidator) => () => void
  /** Peers we know to be subscribed to the topic. */
  topicPeers: (topic: string) => string[]
  /** Our gossipsub score of a peer (lowered by rejected messages). */
  gossipScore: (peerId: string) => number
  provide: (key: string, options?: { signal?: AbortSignal }) => Promise<{ announcedTo: number }>
  findProviders: (key: string, options?: FindProvidersOptions) => Promise<PeerSummary[]>
  handle: (protocol: string, handler: ProtocolHandler, options?: HandleOptions) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
  dialProtocol: (peerId: string, protocol: string, options?: { signal?: AbortSignal }) => Promise<Stream>
}

function checkMultiaddrs (name: string, list: unknown): string[] {
  if (!Array.isArray(list)) throw new P2POptionsError(`${name} must be an array of multiaddr strings`)
  return list.map((a) => {
    if (typeof a !== 'string') throw new P2POptionsError(`${name} must contain multiaddr strings`)
    try {
      multiaddr(a)
    } catch {
      throw new P2POptionsError(`${name}: not a multiaddr: ${a}`)
    }
    return a
  })
}

/** Fills defaults and validates; throws P2POptionsError naming the first bad option. */
export function resolveP2PHostOptions (options: P2PHostOptions = {}): ResolvedP2PHostOptions {
  const o: ResolvedP2PHostOptions = { ...DEFAULT_P2P_HOST_OPTIONS }
  for (const [k, v] of Object.entries(options)) {
    if (!(k in DEFAULT_P2P_HOST_OPTIONS)) throw new P2POptionsError(`unknown p2p option ${k}`)
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v
  }
  o.listen = checkMultiaddrs('listen', o.listen)
  o.bootstrap = checkMultiaddrs('bootstrap', o.bootstrap)
  for (const b of o.bootstrap) {
    if (multiaddr(b).getComponents().find(c => c.name === 'p2p') === undefined) {
      throw new P2POptionsError(`bootstrap address needs /p2p/<peer id>: ${b}`)
    }
  }
  if (typeof o.protocolPrefix !== 'string' || !/^\/[a-z0-9][a-z0-9._-]{0,31}$/.test(o.protocolPrefix)) {
    throw new P2POptionsError('protocolPrefix must look like /name (lowercase, at most 32 characters)')
  }
  for (const k of ['maxConnections', 'maxIncomingPendingConnections', 'maxParallelDials', 'inboundConnectionThreshold',
    'dialTimeoutMs', 'bootstrapRedialIntervalMs', 'maxGossipMessageBytes', 'maxGossipRpcBytes', 'provideTimeoutMs',
    'findProvidersTimeoutMs', 'findProvidersRetryMs', 'maxProvidedKeys', 'maxInboundStreams', 'maxOutboundStreams',
    'handlerTimeoutMs'] as const) {
    const v = o[k]
    if (!Number.isSafeInteger(v) || v <= 0) throw new P2POptionsError(`${k} must be a positive integer`)
  }
  if (o.maxGossipRpcBytes < o.maxGossipMessageBytes) throw new P2POptionsError('maxGossipRpcBytes must be at least maxGossipMessageBytes')
  for (const k of ['allowPublishToZeroTopicPeers', 'dhtServer'] as const) {
    if (typeof o[k] !== 'boolean') throw new P2POptionsError(`${k} must be a boolean`)
  }
  return o
}

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

function checkTopic (topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > C.MAX_TOPIC_LENGTH || !/^[\x21-\x7e]+$/.test(topic)) {
    throw new InvalidP2PInputError(`topic must be 1..${C.MAX_TOPIC_LENGTH} printable ASCII characters`)
  }
}

function parsePeerId (peerId: string): PeerId {
  try {
    return peerIdFromString(peerId)
  } catch (err) {
    throw new InvalidP2PInputError('not a peer id', { cause: err })
  }
}

function parseMultiaddr (address: string): Multiaddr {
  try {
    return multiaddr(address)
  } catch (err) {
    throw new InvalidP2PInputError('not a multiaddr', { cause: err })
  }
}

function withTimeout (timeoutMs: number, signal?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(timeoutMs)
  return signal == null ? t : AbortSignal.any([signal, t])
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
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

/** What the host is handed rather than configured with: its identity and (libp2p's way) its logger. */
export interface P2PHostComponents {
  privateKey: PrivateKey
  /** Default: silentLogger (a host used on its own logs nothing). */
  logger?: ComponentLogger
}

export async function createP2PHost (options: P2PHostOptions, components: P2PHostComponents): Promise<P2PHost> {
  const opts = resolveP2PHostOptions(options)
  const log = (components.logger ?? silentLogger).forComponent('sdte:p2p')
  const dhtProtocol = `${opts.protocolPrefix}/${C.DHT_PROTOCOL_NAME}/${C.DHT_PROTOCOL_VERSION}`

  const node: SdteLibp2p = await createLibp2p({
    start: false,
    privateKey: components.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // A paused stream (the message channel's read backpressure) still receives what yamux's window
    // already granted: its read buffer must hold a whole window plus a frame, or it is reset.
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: C.YAMUX_MAX_STREAM_WINDOW, maxReadBufferLength: C.YAMUX_MAX_READ_BUFFER } })],
    connectionManager: {
      maxConnections: opts.maxConnections,
      maxIncomingPendingConnections: opts.maxIncomingPendingConnections,
      maxParallelDials: opts.maxParallelDials,
      inboundConnectionThreshold: opts.inboundConnectionThreshold,
      dialTimeout: opts.dialTimeoutMs
    },
    // @libp2p/bootstrap refuses an empty list; we also redial the list ourselves (see below).
    peerDiscovery: opts.bootstrap.length > 0 ? [bootstrap({ list: opts.bootstrap, timeout: 10 })] : [],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        allowPublishToZeroTopicPeers: opts.allowPublishToZeroTopicPeers,
        emitSelf: false,
        maxInboundDataLength: opts.maxGossipRpcBytes,
        // Loopback/LAN testnets put every peer on one IP: do not count that as a Sybil signal there.
        scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) }
      }),
      dht: kadDHT({
        protocol: dhtProtocol,
        clientMode: !opts.dhtServer,
        peerInfoMapper: passthroughMapper,
        // Queries wait (bounded by their signal) for a first DHT peer rather than returning nothing.
        allowQueryWithZeroPeers: false,
        logPrefix: 'libp2p:sdte-dht',
        datastorePrefix: '/sdte-dht'
      })
    }
  })

  const selfId = node.peerId.toString()
  let status: P2PHostStatus = 'stopped'
  const listenAddrsByPeer = new Map<string, string[]>()
  const subscriptions = new Map<string, (evt: CustomEvent<Message>) => void>()
  const providedKeys = new Map<string, CID>()
  let redialTimer: ReturnType<typeof setInterval> | undefined
  let reprovideTimer: ReturnType<typeof setTimeout> | undefined
  let reproviding: Promise<void> | undefined
  // Aborted by stop(): ends in-flight DHT work and bootstrap dials. Renewed by start().
  let lifetime = new AbortController()

  node.addEventListener('peer:identify', (evt) => {
    listenAddrsByPeer.set(evt.detail.peerId.toString(), evt.detail.listenAddrs.map(String))
  })
  node.addEventListener('peer:disconnect', (evt) => {
    listenAddrsByPeer.delete(evt.detail.toString())
  })

  // kad-dht's exported RoutingTable type only declares `size`; the instance is an event emitter.
  const routingTable = (node.services.dht as SingleKadDHT).routingTable as unknown as {
    size: number
    kBucketSize: number
    addEventListener: (type: 'peer:add', listener: () => void) => void
  }
  const pubsub = node.services.pubsub
  const score = (pubsub as unknown as { score?: { params: { topics: Record<string, TopicScoreParams> } } }).score

  function requireStarted (what: string): void {
    if (status !== 'started') throw new P2PStateError(`${what}: host is ${status}`)
  }

  function withPeerId (address: string): string {
    return address.includes('/p2p/') ? address : `${address}/p2p/${selfId}`
  }

  async function redialBootstrap (): Promise<void> {
    if (status !== 'started' || node.getConnections().length > 0) return
    for (const address of opts.bootstrap) {
      const target = multiaddr(address)
      if (address.endsWith(`/p2p/${selfId}`)) continue
      try {
        await node.dial(target, { signal: withTimeout(opts.dialTimeoutMs, lifetime.signal) })
      } catch (err) {
        log.debug('bootstrap dial failed', { address, error: err })
      }
    }
  }

  /** Sends our provider record for `cid`; returns how many peers stored it (partial on timeout). */
  async function announce (key: string, cid: CID, signal?: AbortSignal): Promise<number> {
    let announcedTo = 0
    const timeout = AbortSignal.timeout(opts.provideTimeoutMs)
    const stopping = lifetime.signal
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
    if (status !== 'started' || providedKeys.size === 0) return
    if (routingTable.size > routingTable.kBucketSize) return
    clearTimeout(reprovideTimer)
    reprovideTimer = setTimeout(() => {
      const previous = reproviding ?? Promise.resolve()
      reproviding = previous.then(async () => {
        for (const [key, cid] of providedKeys) {
          if (status !== 'started') return
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

  const host: P2PHost = {
    peerId: selfId,
    options: Object.freeze({ ...opts }),
    node,
    get status () { return status },

    async start () {
      if (status !== 'stopped') throw new P2PStateError(`start: host is ${status}`)
      status = 'starting'
      lifetime = new AbortController()
      try {
        await node.start()
      } catch (err) {
        status = 'stopped'
        throw err
      }
      status = 'started'
      log.debug('p2p host started', { peerId: selfId, addresses: host.addresses() })
      if (opts.bootstrap.length > 0) {
        redialTimer = setInterval(() => { void redialBootstrap() }, opts.bootstrapRedialIntervalMs)
        redialTimer.unref()
      }
    },

    async stop () {
      if (status !== 'started') return
      status = 'stopping'
      clearInterval(redialTimer)
      clearTimeout(reprovideTimer)
      lifetime.abort(new P2PStateError('host stopping'))
      for (const topic of [...subscriptions.keys()]) unsubscribe(topic)
      await reproviding?.catch(() => {})
      await node.stop()
      status = 'stopped'
      log.debug('p2p host stopped', { peerId: selfId })
    },

    addresses () {
      return node.getMultiaddrs().map(a => withPeerId(a.toString()))
    },

    peers () {
      const byPeer = new Map<string, Set<string>>()
      for (const conn of node.getConnections()) {
        const id = conn.remotePeer.toString()
        if (!byPeer.has(id)) byPeer.set(id, new Set())
        byPeer.get(id)?.add(conn.remoteAddr.toString())
      }
      return [...byPeer.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([peerId, seen]) => ({
        peerId,
        addresses: listenAddrsByPeer.get(peerId) ?? [...seen]
      }))
    },

    async connect (address, { signal } = {}) {
      requireStarted('connect')
      const ma = parseMultiaddr(address)
      try {
        const conn = await node.dial(ma, { signal: withTimeout(opts.dialTimeoutMs, signal) })
        return { peerId: conn.remotePeer.toString() }
      } catch (err) {
        if (signal?.aborted === true) throw signal.reason
        throw new DialFailedError(`could not connect to ${address}: ${(err as Error).message}`, { cause: err })
      }
    },

    protocolId (name, version) {
      if (!/^[a-z][a-z0-9-]{0,31}$/.test(name) || !/^[0-9][0-9.]{0,15}$/.test(String(version))) {
        throw new InvalidP2PInputError('protocol name must be lowercase [a-z0-9-], version digits and dots')
      }
      return `${opts.protocolPrefix}/${name}/${version}`
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
      const topicValidator: TopicValidatorFn = async (_peer, msg) => {
        // StrictSign already refused unsigned messages; this keeps the type narrow.
        if (msg.type !== 'signed') return TopicValidatorResult.Reject
        if (msg.data.byteLength > opts.maxGossipMessageBytes) return TopicValidatorResult.Reject
        if (validator === undefined) return TopicValidatorResult.Accept
        let verdict: GossipVerdict
        try {
          verdict = await validator({ from: msg.from.toString(), topic, data: msg.data })
        } catch (err) {
          log.warn('gossip validator threw; ignoring the message', { topic, error: err })
          return TopicValidatorResult.Ignore
        }
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
      const searchSignal = AbortSignal.any([deadline, lifetime.signal, ...(signal == null ? [] : [signal])])
      const found = new Map<string, PeerSummary>()
      // A provider record may still be on its way (a provide racing this query, or the closest
      // peers only just joined): query again until something is found or the deadline passes.
      while (true) {
        try {
          for await (const info of node.contentRouting.findProviders(cid, { signal: searchSignal })) {
            const id = info.id.toString()
            if (id === selfId && !includeSelf) continue
            const prev = found.get(id)
            const addresses = [...new Set([...(prev?.addresses ?? []), ...info.multiaddrs.map(String)])]
            found.set(id, { peerId: id, addresses })
            if (found.size >= limit) break
          }
        } catch (err) {
          if (!searchSignal.aborted) log.debug('findProviders pass failed', { dhtKey: key, error: err })
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

    async handle (protocol, handler, handleOptions = {}) {
      const timeoutMs = handleOptions.timeoutMs ?? opts.handlerTimeoutMs
      await node.handle(protocol, async (stream, connection) => {
        const deadline = AbortSignal.timeout(timeoutMs)
        const onDeadline = (): void => {
          if (stream.status === 'open') stream.abort(new StreamTimeoutError(`handler for ${protocol}`, timeoutMs))
        }
        deadline.addEventListener('abort', onDeadline, { once: true })
        const remotePeer = connection.remotePeer.toString()
        try {
          await handler(stream, { remotePeer, connection, signal: deadline })
          if (stream.status === 'open' && stream.writeStatus === 'writable') await stream.close({ signal: deadline })
        } catch (err) {
          // A misbehaving remote is routine, not an operator problem: debug, not warn.
          log.debug('protocol handler failed', { protocol, remotePeer, error: err })
          if (stream.status === 'open') stream.abort(err instanceof Error ? err : new Error(String(err)))
        } finally {
          deadline.removeEventListener('abort', onDeadline)
        }
      }, {
        maxInboundStreams: handleOptions.maxInboundStreams ?? opts.maxInboundStreams,
        maxOutboundStreams: handleOptions.maxOutboundStreams ?? opts.maxOutboundStreams
      })
    },

    async unhandle (protocol) {
      await node.unhandle(protocol)
    },

    async dialProtocol (peerId, protocol, { signal } = {}) {
      requireStarted('dialProtocol')
      const id = parsePeerId(peerId)
      try {
        return await node.dialProtocol(id, protocol, { signal: withTimeout(opts.dialTimeoutMs, signal) })
      } catch (err) {
        if (signal?.aborted === true) throw signal.reason
        throw new DialFailedError(`could not open ${protocol} to ${peerId}: ${(err as Error).message}`, { cause: err })
      }
    }
  }

  function unsubscribe (topic: string): void {
    const listener = subscriptions.get(topic)
    if (listener === undefined) return
    subscriptions.delete(topic)
    pubsub.removeEventListener('message', listener)
    pubsub.topicValidators.delete(topic)
    pubsub.unsubscribe(topic)
  }

  return host
}
