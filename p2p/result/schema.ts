// The wire messages of /sdte/result/1, one exchange per stream:
//   buyer -> node   ResultRequest | ResultAck (JSON, signed by the trade's buyer), then the buyer closes its side
//   node -> buyer   for a request: ResultHeader (JSON) | Refused (NotReady, UnknownTrade, NotBuyer, ...)
//                   then the envelope in raw frames of at most RESULT_FRAME_BYTES, `size` bytes in all
//                   for an ack: ResultAcked (JSON) | Refused
// The signature covers request.ts's digest: its tag (by type), chain id, DTMC, tradeId, taskId, timestamp.
import { schema as s, type Infer } from '../messages/index.ts'
import { MAX_RESULT_ENVELOPE_BYTES } from './constants.ts'

const signedFields = {
  tradeId: s.hex({ bytes: 32 }),
  taskId: s.hex({ bytes: 32 }),
  /** Unix seconds on the buyer's clock when it signed. */
  timestamp: s.number({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  signature: s.hex({ bytes: 65 })
}

/** The buyer asks a node of the majority for its encrypted result. */
export const ResultRequest = s.object({ type: s.literal('result-request'), ...signedFields })
export type ResultRequest = Infer<typeof ResultRequest>

/** The buyer tells a node it has the result: the node may drop its sealed task. */
export const ResultAck = s.object({ type: s.literal('result-ack'), ...signedFields })
export type ResultAck = Infer<typeof ResultAck>

export const ResultMessageSchema = s.tagged({ 'result-request': ResultRequest, 'result-ack': ResultAck })

export const ResultHeader = s.object({
  type: s.literal('result'),
  size: s.number({ min: 0, max: MAX_RESULT_ENVELOPE_BYTES })
})

export const ResultAcked = s.object({ type: s.literal('acked') })
