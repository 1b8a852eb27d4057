// The libp2p host (docs/p2p.md): createP2PHost and its options, interface and DHT key helpers.
export { createP2PHost } from './host.ts'
export type { P2PHostComponents } from './host.ts'
export { resolveP2PHostOptions, DEFAULT_P2P_HOST_OPTIONS } from './options.ts'
export type { P2PHostOptions, ResolvedP2PHostOptions } from './options.ts'
export { checkDhtKey, dhtKeyToCid } from './dht.ts'
export type * from './types.ts'
