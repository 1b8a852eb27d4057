// The p2p layer of SDTE: the libp2p host, the message framing and the protocols on top.
export {
  createP2PHost, resolveP2PHostOptions, DEFAULT_P2P_HOST_OPTIONS, checkDhtKey, dhtKeyToCid
} from './host/index.ts'
export type {
  P2PHost, P2PHostComponents, P2PHostOptions, ResolvedP2PHostOptions, P2PHostStatus, PeerSummary, GossipMessage, GossipVerdict,
  GossipValidator, GossipHandler, ProtocolHandler, ProtocolHandlerContext, HandleOptions, FindProvidersOptions,
  SdteLibp2p, SdteServices
} from './host/index.ts'
export { datasetKey, enclaveKey } from './dht-keys.ts'
export * from './errors.ts'
export * as p2pConstants from './constants.ts'
export {
  messageChannel, encodeFrame, encodeJsonMessage, decodeJsonMessage, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MESSAGE_TIMEOUT_MS,
  MAX_VARINT_BYTES, encodeVarint, decodeVarint, schema
} from './messages/index.ts'
export type { MessageChannel, MessageChannelOptions, OperationOptions, Schema, Infer } from './messages/index.ts'
export { echoProtocol } from './echo/index.ts'
export type { EchoProtocol, EchoOptions } from './echo/index.ts'
export * from './demand/index.ts'
export * from './offer/index.ts'
export * from './attest/index.ts'
export * from './data/index.ts'
export * from './result/index.ts'
// What a protocol's server refuses with (RefuseRequest) and its client then sees (RequestRefusedError).
export { RefuseRequest, RequestRefusedError, MAX_REFUSAL_CODE_LENGTH, MAX_REFUSAL_MESSAGE_LENGTH } from './messages/index.ts'
