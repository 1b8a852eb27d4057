// /sdte/attest/1: the enclave's quote for a task, and the buyer's encrypted code. Shaped like p2p/echo.
import { messageChannel } from '../messages/index.ts'
import { answerRequest, openExchange, requestReply } from '../messages/exchange.ts'
import * as C from './constants.ts'
import { AttestRequest, CodeAck, QuoteReply, type Attest, type Code } from './schema.ts'
import type { P2PHost } from '../host.ts'

export { Attest, Code, QuoteReply } from './schema.ts'
export * as attestConstants from './constants.ts'

export interface AttestHandlers {
  onAttest: (remotePeer: string, req: Attest) => Promise<QuoteReply>
  onCode: (remotePeer: string, req: Code) => Promise<void>
}

export interface AttestOptions {
  maxMessageBytes?: number
  messageTimeoutMs?: number
  exchangeTimeoutMs?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

export interface AttestProtocol {
  readonly protocol: string
  /** Serves attestation (nodes only). */
  start: (handlers: AttestHandlers) => Promise<void>
  stop: () => Promise<void>
  attest: (nodePeer: string, req: Omit<Attest, 'type'>, o?: { signal?: AbortSignal }) => Promise<QuoteReply>
  sendCode: (nodePeer: string, req: Omit<Code, 'type'>, o?: { signal?: AbortSignal }) => Promise<void>
}

export function attestProtocol (host: P2PHost, options: AttestOptions = {}): AttestProtocol {
  const maxMessageBytes = options.maxMessageBytes ?? C.MAX_MESSAGE_BYTES
  const messageTimeoutMs = options.messageTimeoutMs ?? C.MESSAGE_TIMEOUT_MS
  const exchangeTimeoutMs = options.exchangeTimeoutMs ?? C.EXCHANGE_TIMEOUT_MS
  const protocol = host.protocolId(C.PROTOCOL_NAME, C.PROTOCOL_VERSION)
  let started = false

  const open = async (peer: string, signal?: AbortSignal) =>
    await openExchange(host, peer, protocol, { maxMessageBytes, messageTimeoutMs, exchangeTimeoutMs, signal })

  return {
    protocol,
    async start (handlers) {
      started = true
      await host.handle(protocol, async (stream, context) => {
        const channel = messageChannel(stream, { maxMessageBytes, messageTimeoutMs, signal: context.signal })
        await answerRequest(channel, AttestRequest, 'one attest request', async (req) => {
          if (req.type === 'attest') return await handlers.onAttest(context.remotePeer, req)
          await handlers.onCode(context.remotePeer, req as Code)
          return { type: 'code-ack' }
        })
      }, {
        maxInboundStreams: options.maxInboundStreams ?? C.MAX_INBOUND_STREAMS,
        maxOutboundStreams: options.maxOutboundStreams ?? C.MAX_OUTBOUND_STREAMS,
        timeoutMs: exchangeTimeoutMs
      })
    },
    async stop () { if (started) await host.unhandle(protocol) },
    async attest (nodePeer, req, o = {}) {
      return await requestReply(await open(nodePeer, o.signal), { type: 'attest', ...req }, 'quote', QuoteReply)
    },
    async sendCode (nodePeer, req, o = {}) {
      await requestReply(await open(nodePeer, o.signal), { type: 'code', ...req }, 'code-ack', CodeAck)
    }
  }
}
