// /sdte/result/1: the buyer fetches the encrypted result from a node. Shaped like p2p/echo.
import { messageChannel } from '../messages/index.ts'
import { clientExchange, expectEnd, openExchange, readReply, RefuseRequest, refusal } from '../messages/exchange.ts'
import { ProtocolViolationError } from '../errors.ts'
import * as C from './constants.ts'
import { ResultHeader, ResultRequest } from './schema.ts'
import type { P2PHost } from '../host.ts'

export { ResultRequest } from './schema.ts'
export * as resultConstants from './constants.ts'

export interface ResultHandlers {
  /** The encrypted result for the request, or RefuseRequest. */
  get: (remotePeer: string, req: ResultRequest) => Promise<Uint8Array>
}

export interface ResultOptions {
  messageTimeoutMs?: number
  exchangeTimeoutMs?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

export interface ResultProtocol {
  readonly protocol: string
  start: (handlers: ResultHandlers) => Promise<void>
  stop: () => Promise<void>
  fetch: (nodePeer: string, req: Omit<ResultRequest, 'type'>, o?: { signal?: AbortSignal }) => Promise<Uint8Array>
}

export function resultProtocol (host: P2PHost, options: ResultOptions = {}): ResultProtocol {
  const maxMessageBytes = C.RESULT_FRAME_BYTES
  const messageTimeoutMs = options.messageTimeoutMs ?? C.MESSAGE_TIMEOUT_MS
  const exchangeTimeoutMs = options.exchangeTimeoutMs ?? C.EXCHANGE_TIMEOUT_MS
  const protocol = host.protocolId(C.PROTOCOL_NAME, C.PROTOCOL_VERSION)
  let started = false

  return {
    protocol,
    async start (handlers) {
      started = true
      await host.handle(protocol, async (stream, context) => {
        const channel = messageChannel(stream, { maxMessageBytes, messageTimeoutMs, signal: context.signal })
        const req = await channel.read(ResultRequest)
        // The client closes its side after its one request; check that before acting on it.
        await expectEnd(channel, 'one result request')
        let envelope: Uint8Array
        try {
          envelope = await handlers.get(context.remotePeer, req)
        } catch (err) {
          if (!(err instanceof RefuseRequest)) throw err
          await channel.write(refusal(err))
          await channel.close()
          return
        }
        await channel.write({ type: 'result', size: envelope.length })
        for (let off = 0; off < envelope.length; off += C.RESULT_FRAME_BYTES) {
          await channel.writeBytes(envelope.subarray(off, off + C.RESULT_FRAME_BYTES))
        }
        await channel.close()
      }, {
        maxInboundStreams: options.maxInboundStreams ?? C.MAX_INBOUND_STREAMS,
        maxOutboundStreams: options.maxOutboundStreams ?? C.MAX_OUTBOUND_STREAMS,
        timeoutMs: exchangeTimeoutMs
      })
    },
    async stop () { if (started) await host.unhandle(protocol) },
    async fetch (nodePeer, req, o = {}) {
      const channel = await openExchange(host, nodePeer, protocol, { maxMessageBytes, messageTimeoutMs, exchangeTimeoutMs, signal: o.signal })
      return await clientExchange(channel, async () => {
        await channel.write({ type: 'result-request', ...req })
        await channel.close()
        const header = await readReply(channel, 'result', ResultHeader)
        const out = new Uint8Array(header.size)
        let got = 0
        while (got < header.size) {
          const frame = await channel.readBytes()
          if (got + frame.length > header.size) throw new ProtocolViolationError(`result larger than its header's ${header.size} bytes`)
          // An empty frame carries nothing: a node sending them would spin this loop until the deadline.
          if (frame.length === 0) throw new ProtocolViolationError('empty result frame')
          out.set(frame, got)
          got += frame.length
        }
        await expectEnd(channel, `the ${header.size} result bytes`)
        return out
      })
    }
  }
}
