// The wire messages of /sdte/result/1, on one stream:
//   buyer -> node   ResultRequest (JSON), then the buyer closes its side
//   node -> buyer   ResultHeader (JSON) | Refused (NotReady, UnknownTrade, NotBuyer)
//   node -> buyer   the envelope in raw frames of at most RESULT_FRAME_BYTES, `size` bytes in all
import { schema as s, type Infer } from '../messages/index.ts'
import { MAX_RESULT_ENVELOPE_BYTES } from './constants.ts'

export const ResultRequest = s.object({
  type: s.literal('result-request'),
  tradeId: s.hex({ bytes: 32 }),
  taskId: s.hex({ bytes: 32 })
})
export type ResultRequest = Infer<typeof ResultRequest>

export const ResultHeader = s.object({
  type: s.literal('result'),
  size: s.number({ min: 0, max: MAX_RESULT_ENVELOPE_BYTES })
})
