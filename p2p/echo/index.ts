// /sdte/echo/1. The shape every protocol here follows:
//   constants.ts  protocol name, version and every bound
//   schema.ts     the wire messages, declared with p2p/messages schema helpers
//   handler.ts    the server side, (stream, context, options) => Promise<void>
//   index.ts      public types and a factory taking the host and an options object (all defaulted),
//                 with start()/stop() and the client-side call(s)
import { ProtocolViolationError } from '../errors.ts'
import { messageChannel } from '../messages/index.ts'
import * as C from './constants.ts'
import { handleEcho } from './handler.ts'
import { EchoResponse } from './schema.ts'
import type { P2PHost } from '../host/index.ts'

export { EchoRequest, EchoResponse } from './schema.ts'
export * as echoConstants from './constants.ts'

export interface EchoOptions {
  maxMessageBytes?: number
  messageTimeoutMs?: number
  exchangeTimeoutMs?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

export interface EchoProtocol {
  /** The full protocol id, e.g. '/sdte/echo/1'. */
  readonly protocol: string
  /** Starts answering echo requests. */
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Sends `text` to `peerId` and returns what came back. */
  echo: (peerId: string, text: string, options?: { signal?: AbortSignal }) => Promise<{ text: string, seenFrom: string }>
}

export function echoProtocol (host: P2PHost, options: EchoOptions = {}): EchoProtocol {
  const maxMessageBytes = options.maxMessageBytes ?? C.MAX_MESSAGE_BYTES
  const messageTimeoutMs = options.messageTimeoutMs ?? C.MESSAGE_TIMEOUT_MS
  const exchangeTimeoutMs = options.exchangeTimeoutMs ?? C.EXCHANGE_TIMEOUT_MS
  const protocol = host.protocolId(C.PROTOCOL_NAME, C.PROTOCOL_VERSION)
  let nextId = 0

  return {
    protocol,
    async start () {
      await host.handle(protocol, async (stream, context) => {
        await handleEcho(stream, context, { maxMessageBytes, messageTimeoutMs })
      }, {
        maxInboundStreams: options.maxInboundStreams ?? C.MAX_INBOUND_STREAMS,
        maxOutboundStreams: options.maxOutboundStreams ?? C.MAX_OUTBOUND_STREAMS,
        timeoutMs: exchangeTimeoutMs
      })
    },
    async stop () {
      await host.unhandle(protocol)
    },
    async echo (peerId, text, { signal } = {}) {
      const exchange = signal == null ? AbortSignal.timeout(exchangeTimeoutMs) : AbortSignal.any([signal, AbortSignal.timeout(exchangeTimeoutMs)])
      const stream = await host.dialProtocol(peerId, protocol, { signal: exchange })
      const channel = messageChannel(stream, { maxMessageBytes, messageTimeoutMs, signal: exchange })
      const id = nextId++ % 2 ** 32
      await channel.write({ type: 'echo-request', id, text })
      await channel.close()
      const response = await channel.read(EchoResponse)
      if (response.id !== id) {
        const err = new ProtocolViolationError(`echo response for request ${response.id}, expected ${id}`)
        channel.abort(err)
        throw err
      }
      return { text: response.text, seenFrom: response.seenFrom }
    }
  }
}
