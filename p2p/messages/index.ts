// Length-prefixed, size-capped, schema-checked messages over a libp2p v3 stream.
export { messageChannel, encodeFrame, encodeJsonMessage, decodeJsonMessage } from './channel.ts'
export type { MessageChannel, MessageChannelOptions, OperationOptions } from './channel.ts'
export { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MESSAGE_TIMEOUT_MS, MAX_VARINT_BYTES } from './constants.ts'
export { encodeVarint, decodeVarint } from './varint.ts'
// What every request/response protocol shares: the exchange deadline, the `refused` reply.
export {
  openExchange, protocolEndpoint, clientExchange, answerRequest, requestReply, readReply, expectEnd, refusal, unlessRefused,
  Refused, RefuseRequest, RequestRefusedError, MAX_REFUSAL_CODE_LENGTH, MAX_REFUSAL_MESSAGE_LENGTH
} from './exchange.ts'
export type { ExchangeOptions, ProtocolLimits, ProtocolEndpoint, ProtocolConstants } from './exchange.ts'
export * as schema from './schema.ts'
export type { Schema, Infer } from './schema.ts'
export {
  FrameTooLargeError,
  MalformedFrameError,
  TruncatedFrameError,
  StreamEndedError,
  MessageSchemaError,
  StreamTimeoutError
} from '../errors.ts'
