// The host's options: what can be configured, the defaults (from p2p/constants.ts), and the one
// check every option goes through before a libp2p node is built from them.
import { isPrivate } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import * as C from '../constants.ts'
import { P2POptionsError } from '../errors.ts'

export interface P2PHostOptions {
  /** Multiaddrs to listen on. Default ['/ip4/127.0.0.1/tcp/0']. */
  listen?: string[]
  /** 'local' (default) or 'public': which addresses are announced and kept in the DHT (p2p/constants.ts NETWORK_MODES). */
  mode?: C.NetworkMode
  /**
   * Addresses announced to peers (identify, DHT) instead of the listen addresses: an operator's
   * public IP and port when the host listens on a private one (port forwarding, a cloud VM). Default [].
   */
  announce?: string[]
  /** Serve circuit-relay v2 reservations and relayed connections (the relay role). Default false. */
  relayServer?: boolean
  /** Reserve a slot on a relay: 'auto' (in mode public, unless an announce address is public), 'always', 'never'. */
  relayReservation?: RelayReservationMode
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
  /** How often each connection is pinged (p2p/host/liveness.ts). Default CONNECTION_PING_INTERVAL_MS. */
  connectionPingIntervalMs?: number
  /** How long a ping waits for its answer. Default CONNECTION_PING_TIMEOUT_MS. */
  connectionPingTimeoutMs?: number
  /** Pings in a row without an answer after which a connection is closed. Default CONNECTION_MAX_FAILED_PINGS. */
  connectionMaxFailedPings?: number
  /** How long dialProtocol waits for a relayed connection to become direct (DCUtR) before it fails. */
  directUpgradeWaitMs?: number
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

export type RelayReservationMode = C.RelayReservationMode

export type ResolvedP2PHostOptions = Required<P2PHostOptions>

export const DEFAULT_P2P_HOST_OPTIONS: Readonly<ResolvedP2PHostOptions> = Object.freeze({
  listen: C.DEFAULT_LISTEN,
  mode: C.DEFAULT_NETWORK_MODE,
  announce: [],
  relayServer: false,
  relayReservation: C.DEFAULT_RELAY_RESERVATION,
  bootstrap: [],
  protocolPrefix: C.DEFAULT_PROTOCOL_PREFIX,
  maxConnections: C.DEFAULT_MAX_CONNECTIONS,
  maxIncomingPendingConnections: C.DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS,
  maxParallelDials: C.DEFAULT_MAX_PARALLEL_DIALS,
  inboundConnectionThreshold: C.DEFAULT_INBOUND_CONNECTION_THRESHOLD,
  dialTimeoutMs: C.DEFAULT_DIAL_TIMEOUT_MS,
  connectionPingIntervalMs: C.CONNECTION_PING_INTERVAL_MS,
  connectionPingTimeoutMs: C.CONNECTION_PING_TIMEOUT_MS,
  connectionMaxFailedPings: C.CONNECTION_MAX_FAILED_PINGS,
  directUpgradeWaitMs: C.DIRECT_UPGRADE_WAIT_MS,
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
  o.announce = checkMultiaddrs('announce', o.announce)
  if (!(C.NETWORK_MODES as readonly string[]).includes(o.mode)) throw new P2POptionsError(`mode must be one of ${C.NETWORK_MODES.join(', ')}`)
  for (const a of o.announce) {
    if (a.includes('/p2p/')) throw new P2POptionsError(`announce address must not name a peer (the host adds /p2p/<its id>): ${a}`)
    if (o.mode === 'public' && isPrivate(multiaddr(a))) throw new P2POptionsError(`announce address is private or loopback, and mode is public: ${a}`)
  }
  if (!(C.RELAY_RESERVATION_MODES as readonly string[]).includes(o.relayReservation)) {
    throw new P2POptionsError(`relayReservation must be one of ${C.RELAY_RESERVATION_MODES.join(', ')}`)
  }
  for (const b of o.bootstrap) {
    if (multiaddr(b).getComponents().find(c => c.name === 'p2p') === undefined) {
      throw new P2POptionsError(`bootstrap address needs /p2p/<peer id>: ${b}`)
    }
  }
  if (typeof o.protocolPrefix !== 'string' || !/^\/[a-z0-9][a-z0-9._-]{0,31}$/.test(o.protocolPrefix)) {
    throw new P2POptionsError('protocolPrefix must look like /name (lowercase, at most 32 characters)')
  }
  for (const k of ['maxConnections', 'maxIncomingPendingConnections', 'maxParallelDials', 'inboundConnectionThreshold',
    'dialTimeoutMs', 'connectionPingIntervalMs', 'connectionPingTimeoutMs', 'connectionMaxFailedPings', 'directUpgradeWaitMs', 'bootstrapRedialIntervalMs', 'maxGossipMessageBytes', 'maxGossipRpcBytes', 'provideTimeoutMs',
    'findProvidersTimeoutMs', 'findProvidersRetryMs', 'maxProvidedKeys', 'maxInboundStreams', 'maxOutboundStreams',
    'handlerTimeoutMs'] as const) {
    const v = o[k]
    if (!Number.isSafeInteger(v) || v <= 0) throw new P2POptionsError(`${k} must be a positive integer`)
  }
  if (o.maxGossipRpcBytes < o.maxGossipMessageBytes) throw new P2POptionsError('maxGossipRpcBytes must be at least maxGossipMessageBytes')
  for (const k of ['allowPublishToZeroTopicPeers', 'dhtServer', 'relayServer'] as const) {
    if (typeof o[k] !== 'boolean') throw new P2POptionsError(`${k} must be a boolean`)
  }
  return o
}
