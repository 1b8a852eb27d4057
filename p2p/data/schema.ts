// The wire messages of /sdte/data/1, on one stream:
//   seller -> node   DataOpen (JSON)
//   node -> seller   DataStatus (JSON): where to resume (chunks the enclave already holds are skipped)  | Refused
//   seller -> node   chunks nextChunk..chunks-1, one raw bytes frame each, then the seller closes its side
//   node -> seller   DataStatus (JSON): complete, or Refused with the reason (bad chunk, wrong commitment...)
import { schema as s, type Infer } from '../messages/index.ts'
import { MAX_CHUNKS, MAX_WRAPPED_KEY_BYTES } from './constants.ts'

export const DataOpen = s.object({
  type: s.literal('data-open'),
  tradeId: s.hex({ bytes: 32 }),
  taskId: s.hex({ bytes: 32 }),
  sellerIndex: s.number({ min: 0, max: 7 }),
  commitment: s.hex({ bytes: 32 }),
  wrappedKey: s.hex({ maxBytes: MAX_WRAPPED_KEY_BYTES }),
  /** Plaintext size in bytes and number of chunks: the receiver knows how many frames follow. */
  size: s.number({ min: 0 }),
  chunks: s.number({ min: 1, max: MAX_CHUNKS })
})
export type DataOpen = Infer<typeof DataOpen>

export const DataStatus = s.object({
  type: s.literal('data-status'),
  nextChunk: s.number({ min: 0, max: MAX_CHUNKS }),
  complete: s.boolean()
})
export type DataStatus = Infer<typeof DataStatus>
