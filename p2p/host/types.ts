// The host as roles and protocols see it (P2PHost and what its methods take), and the type of the
// libp2p node it wraps.
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { ResolvedP2PHostOptions } from './options.ts'

export interface PeerSummary {
  peerId: string
  addresses: string[]
  /** From peers(): whether we hold a direct connection (not only one through a relay). */
  direct?: boolean
}

export interface GossipMessage {
  /** The signing author (StrictSign: every message is signed by its author's peer key). */
  from: string
  topic: string
  data: Uint8Array
  /**
   * The peer this copy came from: the author, or a peer forwarding it. Given to validators (they see the first
   * copy; later copies are dropped as seen), not to handlers.
   */
  receivedFrom?: string
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
  autoNAT: unknown
  dcutr: unknown
  /** Only on a host with relayServer. */
  relay?: CircuitRelayService
  pubsub: GossipSub
  dht: KadDHT
}
export type SdteLibp2p = Libp2p<SdteServices>

export type P2PHostStatus = 'stopped' | 'starting' | 'started' | 'stopping'

/**
 * How others can reach a host, from the addresses it announces now: 'public' (a public address,
 * given with announce or confirmed by AutoNAT), 'relayed' (only through a relay slot), 'local'
 * (only private or loopback addresses: peers on the same network), 'none' (nothing announced).
 */
export type Reachability = 'public' | 'relayed' | 'local' | 'none'

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
  /** How others can reach us now (changes as AutoNAT confirms addresses and reservations come and go). */
  reachability: () => Reachability
  /** Connected peers with their listen addresses (from identify) or connection addresses. */
  peers: () => PeerSummary[]
  connect: (address: string, options?: { signal?: AbortSignal }) => Promise<{ peerId: string }>
  /** Closes every connection to a peer (it may dial again, or be dialled). */
  hangUp: (peerId: string) => Promise<void>
  /** `${protocolPrefix}/${name}/${version}`, e.g. protocolId('offer', 1) = '/sdte/offer/1'. */
  protocolId: (name: string, version: string | number) => string
  publish: (topic: string, data: Uint8Array) => Promise<{ recipients: number }>
  subscribe: (topic: string, handler: GossipHandler, validator?: GossipValidator) => () => void
  /** Peers we know to be subscribed to the topic. */
  topicPeers: (topic: string) => string[]
  /** Our gossipsub score of a peer (lowered by rejected messages). */
  gossipScore: (peerId: string) => number
  /** What strangers made this host hold, each within its bound (p2p/constants.ts): DHT provider records, gossip caches. */
  held: () => HeldCounts
  provide: (key: string, options?: { signal?: AbortSignal }) => Promise<{ announcedTo: number }>
  findProviders: (key: string, options?: FindProvidersOptions) => Promise<PeerSummary[]>
  handle: (protocol: string, handler: ProtocolHandler, options?: HandleOptions) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
  dialProtocol: (peerId: string, protocol: string, options?: { signal?: AbortSignal }) => Promise<Stream>
}

/** Counts of what other peers made a host hold (for tests, the soak benchmark and diagnostics). */
export interface HeldCounts {
  /** Other peers' provider records: in all, keys, on the fullest key, of the peer with the most. */
  providerRecords: { total: number, keys: number, maxPerKey: number, maxPerPeer: number }
  /** Message ids in gossipsub's seen cache, messages in its message cache. */
  gossip: { seen: number, mcache: number }
}
