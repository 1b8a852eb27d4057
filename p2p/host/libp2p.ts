// Assembles the libp2p node of a host: TCP + noise + yamux, identify, ping, bootstrap, gossipsub with
// signed messages only, and our own Kademlia DHT (`/sdte/kad/1.0.0`, not the public IPFS one).
//
// Local and private networks are first-class: the DHT keeps loopback and private addresses
// (kad-dht's default mapper drops them and a local testnet then finds nobody) and runs in
// server mode from the start (by default it waits to see a public address first).
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, StrictSign } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import * as C from '../constants.ts'
import { DhtValueRecordRefusedError } from '../errors.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { ResolvedP2PHostOptions } from './options.ts'
import type { SdteLibp2p } from './types.ts'

/** A libp2p node built from checked options (resolveP2PHostOptions), not started. */
export async function createSdteLibp2p (opts: ResolvedP2PHostOptions, privateKey: PrivateKey): Promise<SdteLibp2p> {
  const dhtProtocol = `${opts.protocolPrefix}/${C.DHT_PROTOCOL_NAME}/${C.DHT_PROTOCOL_VERSION}`
  return await createLibp2p({
    start: false,
    privateKey,
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
    // @libp2p/bootstrap refuses an empty list; we also redial the list ourselves (host.ts, redialBootstrap).
    peerDiscovery: opts.bootstrap.length > 0 ? [bootstrap({ list: opts.bootstrap, timeout: 10 })] : [],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        allowPublishToZeroTopicPeers: opts.allowPublishToZeroTopicPeers,
        emitSelf: false,
        maxInboundDataLength: opts.maxGossipRpcBytes,
        seenTTL: C.GOSSIP_SEEN_TTL_MS,
        mcacheLength: C.GOSSIP_MCACHE_LENGTH,
        mcacheGossip: C.GOSSIP_MCACHE_GOSSIP,
        // Loopback/LAN testnets put every peer on one IP: do not count that as a Sybil signal there.
        scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) }
      }),
      dht: kadDHT({
        protocol: dhtProtocol,
        clientMode: !opts.dhtServer,
        peerInfoMapper: passthroughMapper,
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
}
