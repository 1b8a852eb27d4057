// The p2p layer of SDTE: the libp2p host, the message framing and the protocols on top.
export {
  createP2PHost, resolveP2PHostOptions, DEFAULT_P2P_HOST_OPTIONS, checkDhtKey, dhtKeyToCid
} from './host.ts'
export type {
  P2PHost, P2PHostOptions, ResolvedP2PHostOptions, P2PHostStatus, PeerSummary, GossipMessage, GossipVerdict,
  GossipValidator, GossipHandler, ProtocolHandler, ProtocolHandlerContext, HandleOptions, FindProvidersOptions,
  SdteLibp2p, SdteServices
} from './host.ts'
export { datasetKey, enclaveKey } from './dht-keys.ts'
export * from './errors.ts'
export * as p2pConstants from './constants.ts'
export * from './messages/index.ts'
export { echoProtocol } from './echo/index.ts'
export type { EchoProtocol, EchoOptions } from './echo/index.ts'
