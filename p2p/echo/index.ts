// /sdte/echo/1, the smallest protocol here and the model of every request/response protocol
// (/sdte/offer/1, /sdte/attest/1, /sdte/data/2, /sdte/result/1). The shape:
//   constants.ts  protocol name, version and every bound (the defaults protocolEndpoint reads)
//   schema.ts     the wire messages, declared with p2p/messages schema helpers
//   index.ts      public types and a factory taking the host and an options object (all defaulted),
//                 with start()/stop() and the client-side call(s), all through protocolEndpoint
//                 (p2p/messages/exchange.ts): answerRequest serves, requestReply asks
import { ProtocolViolationError } from '../errors.ts'
import { answerRequest, protocolEndpoint, requestReply, type ProtocolLimits } from '../messages/index.ts'
import * as C from './constants.ts'
import { EchoRequest, EchoResponse } from './schema.ts'
import type { P2PHost } from '../host/index.ts'

export { EchoRequest, EchoResponse } from './schema.ts'
export * as echoConstants from './constants.ts'

export type EchoOptions = ProtocolLimits

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
  const endpoint = protocolEndpoint(host, C, options)
  let nextId = 0

  return {
    protocol: endpoint.protocol,
    async start () {
      // One request per stream: a second one is a protocol violation and resets the stream.
      await endpoint.serve(async (channel, context) => {
        await answerRequest(channel, EchoRequest, 'one echo request', async (req): Promise<EchoResponse> =>
          ({ type: 'echo-response', id: req.id, text: req.text, seenFrom: context.remotePeer }))
      })
    },
    stop: endpoint.stop,
    async echo (peerId, text, { signal } = {}) {
      const channel = await endpoint.open(peerId, signal)
      const id = nextId++ % 2 ** 32
      const response = await requestReply(channel, { type: 'echo-request', id, text }, 'echo-response', EchoResponse)
      if (response.id !== id) {
        const err = new ProtocolViolationError(`echo response for request ${response.id}, expected ${id}`)
        channel.abort(err)
        throw err
      }
      return { text: response.text, seenFrom: response.seenFrom }
    }
  }
}
