// Errors raised by the p2p layer. Each is told apart by `.name` and carries a stable `.code`
// string (SdteError, config/errors.ts), because these cross boundaries (the control API reports
// them through its error table, daemon/rpc/errors.ts; a peer's misbehaviour is logged by code).
// Messages never contain payload bytes: those may be secret.
import { SdteError } from '../config/index.ts'

/** Base class: every p2p error has a stable machine-readable code. */
export class P2PError extends SdteError {
  static readonly code: string = 'ERR_P2P'
  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'P2PError'
    this.code = code
  }
}

/** A frame's declared length exceeds `maxMessageBytes` (inbound), or a message to send is too big (outbound). */
export class FrameTooLargeError extends P2PError {
  static readonly code = 'ERR_FRAME_TOO_LARGE'
  readonly length: number
  readonly max: number
  constructor (length: number, max: number) {
    super(`frame of ${length} bytes exceeds the limit of ${max} bytes`, FrameTooLargeError.code)
    this.name = 'FrameTooLargeError'
    this.length = length
    this.max = max
  }
}

/** A frame is not well formed: bad length prefix, not UTF-8, not JSON. */
export class MalformedFrameError extends P2PError {
  static readonly code = 'ERR_MALFORMED_FRAME'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, MalformedFrameError.code, options)
    this.name = 'MalformedFrameError'
  }
}

/** The stream ended in the middle of a frame (inside the length prefix or the body). */
export class TruncatedFrameError extends P2PError {
  static readonly code = 'ERR_TRUNCATED_FRAME'
  constructor (message: string) {
    super(message, TruncatedFrameError.code)
    this.name = 'TruncatedFrameError'
  }
}

/** The stream ended cleanly where a message was required. */
export class StreamEndedError extends P2PError {
  static readonly code = 'ERR_STREAM_ENDED'
  constructor (message = 'stream ended before the expected message') {
    super(message, StreamEndedError.code)
    this.name = 'StreamEndedError'
  }
}

/** A decoded message does not match its schema. `path` names the offending field (`$.a.b`). */
export class MessageSchemaError extends P2PError {
  static readonly code = 'ERR_MESSAGE_SCHEMA'
  readonly path: string
  constructor (path: string, reason: string) {
    super(`${path}: ${reason}`, MessageSchemaError.code)
    this.name = 'MessageSchemaError'
    this.path = path
  }
}

/** A read, a write, a close or a whole handler took longer than its timeout. */
export class StreamTimeoutError extends P2PError {
  static readonly code = 'ERR_STREAM_TIMEOUT'
  readonly timeoutMs: number
  constructor (what: string, timeoutMs: number) {
    super(`${what} timed out after ${timeoutMs} ms`, StreamTimeoutError.code)
    this.name = 'StreamTimeoutError'
    this.timeoutMs = timeoutMs
  }
}

/** Invalid host options (bad multiaddr, non-positive limit, ...). Raised before anything starts. */
export class P2POptionsError extends P2PError {
  static readonly code = 'ERR_P2P_OPTIONS'
  constructor (message: string) {
    super(message, P2POptionsError.code)
    this.name = 'P2POptionsError'
  }
}

/** A caller passed something unusable: a malformed multiaddr, peer id, DHT key, topic. */
export class InvalidP2PInputError extends P2PError {
  static readonly code = 'ERR_P2P_INVALID_INPUT'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, InvalidP2PInputError.code, options)
    this.name = 'InvalidP2PInputError'
  }
}

/** Dialling a peer failed (unreachable, refused, wrong peer id, timed out). */
export class DialFailedError extends P2PError {
  static readonly code = 'ERR_DIAL_FAILED'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, DialFailedError.code, options)
    this.name = 'DialFailedError'
  }
}

/** Publishing found no peer subscribed to the topic, so nobody would receive the message. */
export class NoTopicPeersError extends P2PError {
  static readonly code = 'ERR_NO_TOPIC_PEERS'
  constructor (topic: string) {
    super(`no peer is subscribed to topic ${topic}`, NoTopicPeersError.code)
    this.name = 'NoTopicPeersError'
  }
}

/** The host or a message channel is not in a state for this call (not started, already stopped, already subscribed, already reading). */
export class P2PStateError extends P2PError {
  static readonly code = 'ERR_P2P_STATE'
  constructor (message: string) {
    super(message, P2PStateError.code)
    this.name = 'P2PStateError'
  }
}

/** A stream failed with something that is not an Error (an error or abort event of the stream). */
export class StreamFailedError extends P2PError {
  static readonly code = 'ERR_STREAM_FAILED'
  constructor (message: string) {
    super(message, StreamFailedError.code)
    this.name = 'StreamFailedError'
  }
}

/** The remote sent a well-formed message that breaks the protocol (wrong step, wrong id, extra frame). */
export class ProtocolViolationError extends P2PError {
  static readonly code = 'ERR_PROTOCOL_VIOLATION'
  constructor (message: string) {
    super(message, ProtocolViolationError.code)
    this.name = 'ProtocolViolationError'
  }
}

/** A provider record a peer asked this host to store beyond the bounds. */
export class ProviderRecordRefusedError extends P2PError {
  static readonly code = 'ERR_PROVIDER_RECORD_REFUSED'
  constructor (message: string) {
    super(message, ProviderRecordRefusedError.code)
    this.name = 'ProviderRecordRefusedError'
  }
}

/** A value record (PUT_VALUE) sent to our DHT, which keeps none. */
export class DhtValueRecordRefusedError extends P2PError {
  static readonly code = 'ERR_DHT_VALUE_RECORD_REFUSED'
  constructor (message: string) {
    super(message, DhtValueRecordRefusedError.code)
    this.name = 'DhtValueRecordRefusedError'
  }
}

/** A connection whose peer answered none of CONNECTION_MAX_FAILED_PINGS pings in a row: it is closed (p2p/host/liveness.ts). */
export class ConnectionUnresponsiveError extends P2PError {
  static readonly code = 'ERR_CONNECTION_UNRESPONSIVE'
  constructor (failedPings: number) {
    super(`the peer answered none of ${failedPings} pings in a row`, ConnectionUnresponsiveError.code)
    this.name = 'ConnectionUnresponsiveError'
  }
}
