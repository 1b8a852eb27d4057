// Assembles the libp2p node of a host: TCP + noise + yamux, identify, ping, bootstrap, gossipsub with
// signed messages only, and our own Kademlia DHT (`/sdte/kad/1.0.0`, not the public IPFS one).
//
// Across NATs (docs/p2p.md): every host can dial relayed (/p2p-circuit) addresses, asks peers to
// dial it back (AutoNAT, which confirms observed public addresses before they are announced), and
// upgrades a relayed connection to a direct one (DCUtR); a host without a public address reserves a
// slot on a relay; the relay role serves reservations within the limits in p2p/constants.ts.
//
// Local and private networks are first-class (mode 'local', the default): the DHT keeps loopback and
// private addresses (kad-dht's default mapper drops them and a local testnet then finds nobody),
// they are announced, and gossipsub does not count many peers on loopback as a Sybil signal. In mode
// 'public' none of that: only public addresses are announced or kept in the DHT. Either way the DHT
// runs in server mode from the start (by default it waits to see a public address first).
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNAT } from '@libp2p/autonat'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { gossipsub, StrictSign } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { isPrivate } from '@libp2p/utils'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import * as C from '../constants.ts'
import { DhtValueRecordRefusedError } from '../errors.ts'
import { dropReservationOf, reservationGate } from './relay-sources.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Libp2pInit } from 'libp2p'
import type { ResolvedP2PHostOptions } from './options.ts'
import type { SdteLibp2p } from './types.ts'

/** What libp2p is handed besides its options: its logger and, optionally, its metrics. */
export type Libp2pComponents = Pick<Libp2pInit, 'logger' | 'metrics'>

/** The address a host listens on to reserve a slot on a relay it finds (the circuit transport's convention). */
export const RELAY_RESERVATION_LISTEN_ADDRESS = '/p2p-circuit'

/**
 * Whether a host reserves a relay slot. In 'auto' mode: on a public network (mode 'public') unless it
 * announces a public address of its own (--announce). A public listen address alone does not count:
 * libp2p announces it only once AutoNAT has confirmed it (several peers dialled it back), and until
 * then the host is reachable only through a relay. On a local network (mode 'local': a devnet, a
 * LAN) peers reach each other directly, and a host looking for a relay would only disturb them: the
 * relay discovery walks the DHT at random and dials every peer it finds, which on a small loopback
 * network was seen to reset our own streams.
 */
export function wantsRelayReservation (opts: Pick<ResolvedP2PHostOptions, 'announce' | 'relayReservation' | 'relayServer' | 'mode'>): boolean {
  if (opts.relayReservation !== 'auto') return opts.relayReservation === 'always'
  if (opts.relayServer || opts.mode === 'local') return false
  return !opts.announce.some(a => {
    const ma = multiaddr(a)
    const host = ma.getComponents().find(c => ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(c.name))
    if (host === undefined || host.value === '0.0.0.0' || host.value === '::') return false
    return !isPrivate(ma)
  })
}

/** A libp2p node built from checked options (resolveP2PHostOptions), not started. */
export async function createSdteLibp2p (opts: ResolvedP2PHostOptions, privateKey: PrivateKey, components: Libp2pComponents = {}): Promise<SdteLibp2p> {
  const dhtProtocol = `${opts.protocolPrefix}/${C.DHT_PROTOCOL_NAME}/${C.DHT_PROTOCOL_VERSION}`
  // The gater runs only once the node exists (a reservation needs a started relay); it reads the
  // node it belongs to, so the node is bound after it is built.
  let built: SdteLibp2p | undefined
  const relayGate = reservationGate({
    remoteAddrsOf: (p) => built?.getConnections(p).map(c => c.remoteAddr) ?? [],
    reservations: () => built?.services.relay?.reservations.entries() ?? []
  }, C.RELAY_MAX_RESERVATIONS_PER_SOURCE, C.RELAY_HOP_TIMEOUT_MS)
  const node: SdteLibp2p = await createLibp2p({
    start: false,
    privateKey,
    ...components,
    addresses: {
      listen: wantsRelayReservation(opts) ? [...opts.listen, RELAY_RESERVATION_LISTEN_ADDRESS] : opts.listen,
      ...(opts.announce.length > 0 && { announce: opts.announce }),
      // A relayed address counts by its relay's address, the first component.
      ...(opts.mode === 'public' && { announceFilter: (addrs: Multiaddr[]) => addrs.filter(a => !isPrivate(a)) })
    },
    transports: [tcp(), circuitRelayTransport({ maxInboundStopStreams: C.RELAY_MAX_STOP_STREAMS })],
    connectionEncrypters: [noise()],
    ...(opts.relayServer && {
      connectionGater: {
        denyInboundRelayReservation: (peer: PeerId) => built === undefined || relayGate(peer)
      }
    }),
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
    // libp2p's connection monitor pings every connection every 10 s and by default aborts the
    // connection (every stream on it: gossip, DHT, trades) when one ping is not answered within its
    // adaptive timeout (at least 5 s). On a loaded host that is routine: a 20-daemon network at a load
    // average of 50 had 1,140 connections aborted so in 4 minutes, the main way gossipsub lost its
    // streams (a peer with a second connection hears of no disconnect, so gossipsub never reopens
    // them) and demands missed daemons (BENCHMARKS.md, Network; js-libp2p #3463, #3504). Its only other
    // choice is never to abort, which kept a vanished peer's connection ~15 min; the host runs its own
    // (liveness.ts: closed after CONNECTION_MAX_FAILED_PINGS unanswered in a row) and turns it off.
    connectionMonitor: { enabled: false },
    // @libp2p/bootstrap refuses an empty list; we also redial the list ourselves (host.ts, redialBootstrap).
    peerDiscovery: opts.bootstrap.length > 0 ? [bootstrap({ list: opts.bootstrap, timeout: 10 })] : [],
    services: {
      identify: identify(),
      ping: ping(),
      autoNAT: autoNAT(),
      dcutr: dcutr(),
      ...(opts.relayServer && {
        relay: circuitRelayServer({
          hopTimeout: C.RELAY_HOP_TIMEOUT_MS,
          maxInboundHopStreams: C.RELAY_MAX_INBOUND_HOP_STREAMS,
          maxOutboundStopStreams: C.RELAY_MAX_STOP_STREAMS,
          reservations: {
            maxReservations: C.RELAY_MAX_RESERVATIONS,
            reservationTtl: C.RELAY_RESERVATION_TTL_MS,
            applyDefaultLimit: true,
            defaultDurationLimit: C.RELAY_CONNECTION_DURATION_MS,
            defaultDataLimit: BigInt(C.RELAY_CONNECTION_DATA_BYTES)
          }
        })
      }),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        allowPublishToZeroTopicPeers: opts.allowPublishToZeroTopicPeers,
        emitSelf: false,
        maxInboundDataLength: opts.maxGossipRpcBytes,
        seenTTL: C.GOSSIP_SEEN_TTL_MS,
        mcacheLength: C.GOSSIP_MCACHE_LENGTH,
        mcacheGossip: C.GOSSIP_MCACHE_GOSSIP,
        // Loopback/LAN testnets put every peer on one IP: do not count that as a Sybil signal there.
        ...(opts.mode === 'local' && { scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) } })
      }),
      dht: kadDHT({
        protocol: dhtProtocol,
        clientMode: !opts.dhtServer,
        peerInfoMapper: opts.mode === 'public' ? removePrivateAddressesMapper : passthroughMapper,
        // Queries wait (bounded by their signal) for a first DHT peer rather than returning nothing.
        allowQueryWithZeroPeers: false,
        // We use provider records only: no value records (PUT_VALUE) from anyone, since each would be
        // kept forever (kad-dht 16 validates /pk/ records, which any fresh key makes).
        validators: { pk: async () => { throw new DhtValueRecordRefusedError('this DHT keeps no value records') } },
        logPrefix: 'libp2p:sdte-dht',
        datastorePrefix: '/sdte-dht'
      })
    }
  })
  built = node
  if (opts.relayServer) {
    // A reservation is dropped with its holder's last connection (relay-sources.ts dropReservationOf).
    node.addEventListener('peer:disconnect', (evt) => {
      const relay = node.services.relay
      if (relay !== undefined) dropReservationOf(relay.reservations, evt.detail)
    })
  }
  return node
}
