// /sdte/result/1: the buyer fetches the encrypted result from a node, and acknowledges it once it
// has it. Shaped like p2p/echo. Both messages are signed by the trade's buyer (request.ts); the
// handlers check the signer against DTMC.
import { clientExchange, expectEnd, protocolEndpoint, readReply, RefuseRequest, refusal, type ProtocolLimits } from '../messages/index.ts'
import { ProtocolViolationError } from '../errors.ts'
import * as C from './constants.ts'
import { ResultAcked, ResultHeader, ResultMessageSchema, type ResultAck, type ResultRequest } from './schema.ts'
import type { P2PHost } from '../host/index.ts'

export { ResultRequest, ResultAck } from './schema.ts'
export {
  RESULT_REQUEST_TAG, RESULT_ACK_TAG, ResultRequestInvalidError, resultMessageDigestOf, resultMessageSigner, signResultMessage
} from './request.ts'
export type { ResultDomain, ResultMessage } from './request.ts'
export * as resultConstants from './constants.ts'

export interface ResultHandlers {
  /** The encrypted result for the request, or RefuseRequest. Serving must not change what the node keeps. */
  get: (remotePeer: string, req: ResultRequest) => Promise<Uint8Array>
  /** The buyer has the result: the node may drop it. Returns when recorded, or throws RefuseRequest. */
  ack: (remotePeer: string, req: ResultAck) => Promise<void>
}

export type ResultOptions = ProtocolLimits

export interface ResultProtocol {
  readonly protocol: string
  start: (handlers: ResultHandlers) => Promise<void>
  stop: () => Promise<void>
  /** Fetches the envelope with a request the buyer signed (signResultMessage('result-request', ...)). */
  fetch: (nodePeer: string, req: ResultRequest, o?: { signal?: AbortSignal }) => Promise<Uint8Array>
  /** Sends the buyer's signed ack (signResultMessage('result-ack', ...)); resolves once the node recorded it. */
  ack: (nodePeer: string, ack: ResultAck, o?: { signal?: AbortSignal }) => Promise<void>
}

export function resultProtocol (host: P2PHost, options: ResultOptions = {}): ResultProtocol {
  const endpoint = protocolEndpoint(host, C, options)

  return {
    protocol: endpoint.protocol,
    async start (handlers) {
      await endpoint.serve(async (channel, context) => {
        const req = await channel.read(ResultMessageSchema)
        // The client closes its side after its one message; check that before acting on it.
        await expectEnd(channel, `one ${req.type}`)
        let envelope: Uint8Array | undefined
        try {
          if (req.type === 'result-ack') await handlers.ack(context.remotePeer, req)
          else envelope = await handlers.get(context.remotePeer, req)
        } catch (err) {
          if (!(err instanceof RefuseRequest)) throw err
          await channel.write(refusal(err))
          await channel.close()
          return
        }
        if (envelope === undefined) {
          await channel.write({ type: 'acked' })
          await channel.close()
          return
        }
        await channel.write({ type: 'result', size: envelope.length })
        for (let off = 0; off < envelope.length; off += C.RESULT_FRAME_BYTES) {
          await channel.writeBytes(envelope.subarray(off, off + C.RESULT_FRAME_BYTES))
        }
        await channel.close()
      })
    },
    stop: endpoint.stop,
    async fetch (nodePeer, req, o = {}) {
      const channel = await endpoint.open(nodePeer, o.signal)
      return await clientExchange(channel, async () => {
        await channel.write(req)
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
    },
    async ack (nodePeer, ack, o = {}) {
      const channel = await endpoint.open(nodePeer, o.signal)
      await clientExchange(channel, async () => {
        await channel.write(ack)
        await channel.close()
        await readReply(channel, 'acked', ResultAcked)
        await expectEnd(channel, 'the ack reply')
      })
    }
  }
}
