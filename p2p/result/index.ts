// /sdte/result/1: the buyer fetches the encrypted result from a node. Shaped like p2p/echo.
import { clientExchange, expectEnd, protocolEndpoint, readReply, RefuseRequest, refusal, type ProtocolLimits } from '../messages/index.ts'
import { ProtocolViolationError } from '../errors.ts'
import * as C from './constants.ts'
import { ResultHeader, ResultRequest } from './schema.ts'
import type { P2PHost } from '../host/index.ts'

export { ResultRequest } from './schema.ts'
export * as resultConstants from './constants.ts'

export interface ResultHandlers {
  /** The encrypted result for the request, or RefuseRequest. */
  get: (remotePeer: string, req: ResultRequest) => Promise<Uint8Array>
}

export type ResultOptions = ProtocolLimits

export interface ResultProtocol {
  readonly protocol: string
  start: (handlers: ResultHandlers) => Promise<void>
  stop: () => Promise<void>
  fetch: (nodePeer: string, req: Omit<ResultRequest, 'type'>, o?: { signal?: AbortSignal }) => Promise<Uint8Array>
}

export function resultProtocol (host: P2PHost, options: ResultOptions = {}): ResultProtocol {
  const endpoint = protocolEndpoint(host, C, options)

  return {
    protocol: endpoint.protocol,
    async start (handlers) {
      await endpoint.serve(async (channel, context) => {
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
      })
    },
    stop: endpoint.stop,
    async fetch (nodePeer, req, o = {}) {
      const channel = await endpoint.open(nodePeer, o.signal)
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
