// The pieces every request/response protocol shares: open a message channel to a peer under one
// whole-exchange deadline, and the `refused` reply a handler sends when it understands a request
// but will not serve it (unknown trade, not chosen, ...), so the caller gets a reason, not a reset.
import { SdteError } from '../../config/index.ts'
import { messageChannel, type MessageChannel } from './channel.ts'
import { clearOnClose, deadline } from '../deadline.ts'
import * as s from './schema.ts'
import { P2PError, ProtocolViolationError } from '../errors.ts'
import type { P2PHost, ProtocolHandlerContext } from '../host/index.ts'

export interface ExchangeOptions {
  maxMessageBytes: number
  messageTimeoutMs: number
  exchangeTimeoutMs: number
  signal?: AbortSignal
}

/** Dials `protocol` on `peerId` and wraps the stream; every operation is bounded by the exchange deadline. */
export async function openExchange (host: P2PHost, peerId: string, protocol: string, o: ExchangeOptions): Promise<MessageChannel> {
  // Not AbortSignal.timeout/any: see p2p/deadline.ts. The deadline ends with the stream.
  const d = deadline(o.exchangeTimeoutMs, [o.signal])
  let stream
  try {
    stream = await host.dialProtocol(peerId, protocol, { signal: d.signal })
  } catch (err) {
    d.clear()
    throw err
  }
  clearOnClose(stream, d)
  return messageChannel(stream, { maxMessageBytes: o.maxMessageBytes, messageTimeoutMs: o.messageTimeoutMs, signal: d.signal })
}

/** Bounds of a refusal's reason code and human-readable message. */
export const MAX_REFUSAL_CODE_LENGTH = 64
export const MAX_REFUSAL_MESSAGE_LENGTH = 512

export const Refused = s.object({
  type: s.literal('refused'),
  code: s.string({ maxLength: MAX_REFUSAL_CODE_LENGTH, pattern: /^[A-Za-z][A-Za-z0-9_]*$/ }),
  message: s.string({ maxLength: MAX_REFUSAL_MESSAGE_LENGTH })
})
export type Refused = s.Infer<typeof Refused>

/** A request the remote understood and declined; `code` is its stable reason. */
export class RequestRefusedError extends P2PError {
  static readonly code = 'ERR_REQUEST_REFUSED'
  readonly reason: string
  constructor (reason: string, message: string) {
    super(`refused (${reason}): ${message}`, RequestRefusedError.code)
    this.name = 'RequestRefusedError'
    this.reason = reason
  }
}

/** What a handler throws to send a `refused` reply; the stream then closes normally. */
export class RefuseRequest extends SdteError {
  override name = 'RefuseRequest'
  override code = 'ERR_REFUSE_REQUEST'
  readonly reason: string
  constructor (reason: string, message: string) {
    super(message)
    this.reason = reason
  }
}

export function refusal (err: RefuseRequest): Refused {
  return { type: 'refused', code: refusalCode(err.reason), message: err.message.slice(0, MAX_REFUSAL_MESSAGE_LENGTH) }
}

/**
 * The reason as a code the remote's Refused schema accepts. A handler passing some other string
 * (an error's name with a dash, a long sentence) must still produce a refusal, not a reply the
 * client rejects as schema-invalid; the characters that are not allowed become '_'.
 */
function refusalCode (reason: string): string {
  const code = reason.replace(/[^A-Za-z0-9_]/g, '_').slice(0, MAX_REFUSAL_CODE_LENGTH)
  return /^[A-Za-z]/.test(code) ? code : ('R' + code).slice(0, MAX_REFUSAL_CODE_LENGTH)
}

/** Turns a `refused` reply into a RequestRefusedError; passes anything else through. */
export function unlessRefused<T extends { type: string }> (reply: T | Refused): Exclude<T, Refused> {
  if (reply.type === 'refused') {
    const r = reply as Refused
    throw new RequestRefusedError(r.code, r.message)
  }
  return reply as Exclude<T, Refused>
}

/** Reads the one reply of type `replyType` (or a `refused`, thrown as RequestRefusedError). */
export async function readReply<T> (channel: MessageChannel, replyType: string, reply: s.Schema<T>): Promise<T> {
  const answer = await channel.read(s.tagged({ refused: Refused, [replyType]: reply }))
  return unlessRefused(answer as { type: string }) as T
}

/**
 * Runs the client side of an exchange on `channel`. Any failure (a refusal, a bad reply, the
 * caller's own error) resets the stream before it is rethrown: a stream left half-open would hold
 * one of the connection's per-protocol stream slots (maxInboundStreams / maxOutboundStreams) until
 * the connection closes, and after a few refusals no new stream of that protocol could be opened.
 */
export async function clientExchange<T> (channel: MessageChannel, run: (channel: MessageChannel) => Promise<T>): Promise<T> {
  try {
    return await run(channel)
  } catch (err) {
    channel.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

/**
 * Requires the remote's clean end of stream next (one request per stream). Anything else, another
 * frame or bytes, is a protocol violation: the stream is reset and the error thrown.
 */
export async function expectEnd (channel: MessageChannel, what: string): Promise<void> {
  if (await channel.readBytesOrEnd() !== undefined) {
    const err = new ProtocolViolationError(`more than ${what} on one stream`)
    channel.abort(err)
    throw err
  }
}

/**
 * The server side of a one-request, one-reply stream: read the request, require the client's end,
 * then write `answer(request)`, or a `refused` reply when it throws RefuseRequest.
 */
export async function answerRequest<T> (channel: MessageChannel, request: s.Schema<T>, what: string, answer: (req: T) => Promise<unknown>): Promise<void> {
  const req = await channel.read(request)
  // The client closes its side after its one request; check that before acting on it.
  await expectEnd(channel, what)
  let reply: unknown
  try {
    reply = await answer(req)
  } catch (err) {
    if (!(err instanceof RefuseRequest)) throw err
    reply = refusal(err)
  }
  await channel.write(reply)
  await channel.close()
}

/** The client side: one request, our end, one reply of type `replyType` (a refusal is thrown). */
export async function requestReply<T> (channel: MessageChannel, message: unknown, replyType: string, reply: s.Schema<T>): Promise<T> {
  return await clientExchange(channel, async () => {
    await channel.write(message)
    await channel.close()
    return await readReply(channel, replyType, reply)
  })
}

/** The bounds of one protocol; each protocol's constants.ts holds its defaults. */
export interface ProtocolLimits {
  /** Largest frame, in bytes. */
  maxMessageBytes?: number
  /** One read or write. */
  messageTimeoutMs?: number
  /** A whole exchange, both sides. */
  exchangeTimeoutMs?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

/** A protocol's two ends over a host: serve inbound streams, open outbound exchanges, all within its limits. */
export interface ProtocolEndpoint {
  /** The full protocol id, e.g. '/sdte/attest/1'. */
  readonly protocol: string
  /** Serves the protocol: `handler` runs per inbound stream on a message channel under the exchange deadline. */
  serve: (handler: (channel: MessageChannel, context: ProtocolHandlerContext) => Promise<void>) => Promise<void>
  stop: () => Promise<void>
  /** A message channel to `peerId` under one exchange deadline. */
  open: (peerId: string, signal?: AbortSignal) => Promise<MessageChannel>
}

/** What every protocol's constants.ts declares: its id and the defaults of its limits. */
export interface ProtocolConstants {
  PROTOCOL_NAME: string
  PROTOCOL_VERSION: string
  MAX_MESSAGE_BYTES: number
  MESSAGE_TIMEOUT_MS: number
  EXCHANGE_TIMEOUT_MS: number
  MAX_INBOUND_STREAMS: number
  MAX_OUTBOUND_STREAMS: number
}

export function protocolEndpoint (host: P2PHost, c: ProtocolConstants, options: ProtocolLimits = {}): ProtocolEndpoint {
  const limits: Required<ProtocolLimits> = {
    maxMessageBytes: options.maxMessageBytes ?? c.MAX_MESSAGE_BYTES,
    messageTimeoutMs: options.messageTimeoutMs ?? c.MESSAGE_TIMEOUT_MS,
    exchangeTimeoutMs: options.exchangeTimeoutMs ?? c.EXCHANGE_TIMEOUT_MS,
    maxInboundStreams: options.maxInboundStreams ?? c.MAX_INBOUND_STREAMS,
    maxOutboundStreams: options.maxOutboundStreams ?? c.MAX_OUTBOUND_STREAMS
  }
  const protocol = host.protocolId(c.PROTOCOL_NAME, c.PROTOCOL_VERSION)
  let serving = false
  return {
    protocol,
    async serve (handler) {
      serving = true
      await host.handle(protocol, async (stream, context) => {
        await handler(messageChannel(stream, { maxMessageBytes: limits.maxMessageBytes, messageTimeoutMs: limits.messageTimeoutMs, signal: context.signal }), context)
      }, { maxInboundStreams: limits.maxInboundStreams, maxOutboundStreams: limits.maxOutboundStreams, timeoutMs: limits.exchangeTimeoutMs })
    },
    async stop () {
      if (serving) await host.unhandle(protocol)
      serving = false
    },
    async open (peerId, signal) {
      return await openExchange(host, peerId, protocol, { ...limits, signal })
    }
  }
}
