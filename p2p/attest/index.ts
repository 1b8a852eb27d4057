// /sdte/attest/1: the enclave's quote for a task, and the buyer's encrypted code. Shaped like p2p/echo.
import { answerRequest, protocolEndpoint, requestReply, type ProtocolLimits } from '../messages/index.ts'
import * as C from './constants.ts'
import { AttestRequest, CodeAck, QuoteReply, type Attest, type Code } from './schema.ts'
import type { P2PHost } from '../host/index.ts'

export { Attest, Code, QuoteReply } from './schema.ts'
export * as attestConstants from './constants.ts'

export interface AttestHandlers {
  onAttest: (remotePeer: string, req: Attest) => Promise<QuoteReply>
  onCode: (remotePeer: string, req: Code) => Promise<void>
}

export type AttestOptions = ProtocolLimits

export interface AttestProtocol {
  readonly protocol: string
  /** Serves attestation (nodes only). */
  start: (handlers: AttestHandlers) => Promise<void>
  stop: () => Promise<void>
  attest: (nodePeer: string, req: Omit<Attest, 'type'>, o?: { signal?: AbortSignal }) => Promise<QuoteReply>
  sendCode: (nodePeer: string, req: Omit<Code, 'type'>, o?: { signal?: AbortSignal }) => Promise<void>
}

export function attestProtocol (host: P2PHost, options: AttestOptions = {}): AttestProtocol {
  const endpoint = protocolEndpoint(host, C, options)
  const open = endpoint.open

  return {
    protocol: endpoint.protocol,
    async start (handlers) {
      await endpoint.serve(async (channel, context) => {
        await answerRequest(channel, AttestRequest, 'one attest request', async (req) => {
          if (req.type === 'attest') return await handlers.onAttest(context.remotePeer, req)
          await handlers.onCode(context.remotePeer, req as Code)
          return { type: 'code-ack' }
        })
      })
    },
    stop: endpoint.stop,
    async attest (nodePeer, req, o = {}) {
      return await requestReply(await open(nodePeer, o.signal), { type: 'attest', ...req }, 'quote', QuoteReply)
    },
    async sendCode (nodePeer, req, o = {}) {
      await requestReply(await open(nodePeer, o.signal), { type: 'code', ...req }, 'code-ack', CodeAck)
    }
  }
}
