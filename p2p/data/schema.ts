// The wire messages of /sdte/data/2, on one stream:
//   seller -> node   DataOpen (JSON)
//   node -> seller   DataStatus (JSON): where to resume (chunks the enclave already holds are skipped)  | Refused
//   seller -> node   chunks nextChunk..chunks-1, one raw bytes frame each, then DataDone (JSON)
//   node -> seller   DataStatus (JSON): complete (with the enclave's delivery receipt), or Refused with the reason
//   seller -> node   DataAck (JSON) when that status is complete with a receipt not yet acknowledged, then it closes
//   node -> seller   DataStatus (JSON): acked, or Refused
// Each chunk frame is the seller's signature (65 bytes, chunkDigestOf) followed by the encrypted chunk. The ack is the
// seller's signature over receiptAckDigestOf, sent once it holds (and checked) the receipt, on the same stream: the
// enclave runs nothing before every seller has acknowledged its receipt (docs/protocol.md "Delivery receipts").
import { schema as s, type Infer } from '../messages/index.ts'
import { SIGNATURE_BYTES } from './constants.ts'
import { MAX_CHUNKS, MAX_WRAPPED_KEY_BYTES } from './constants.ts'

export const DataOpen = s.object({
  type: s.literal('data-open'),
  tradeId: s.hex({ bytes: 32 }),
  taskId: s.hex({ bytes: 32 }),
  sellerIndex: s.number({ min: 0, max: 7 }),
  commitment: s.hex({ bytes: 32 }),
  wrappedKey: s.hex({ maxBytes: MAX_WRAPPED_KEY_BYTES }),
  /** The seller account's signature over dataKeyDigestOf(taskId, sellerIndex, commitment, keccak(wrappedKey)). */
  sellerSignature: s.hex({ bytes: SIGNATURE_BYTES }),
  /** Plaintext size in bytes and number of chunks: the receiver knows how many frames follow. */
  size: s.number({ min: 0 }),
  chunks: s.number({ min: 1, max: MAX_CHUNKS })
})
export type DataOpen = Infer<typeof DataOpen>

export const DataStatus = s.object({
  type: s.literal('data-status'),
  nextChunk: s.number({ min: 0, max: MAX_CHUNKS }),
  complete: s.boolean(),
  /** The enclave's delivery receipt (receiptDigestOf, signed with the task key) once complete. */
  receipt: s.optional(s.hex({ bytes: SIGNATURE_BYTES })),
  /** Whether the enclave has the seller's acknowledgement of the receipt. */
  acked: s.optional(s.boolean())
})
export type DataStatus = Infer<typeof DataStatus>

/** The seller's end of its chunks (a frame, not the stream's end: the stream stays open for the acknowledgement). */
export const DataDone = s.object({ type: s.literal('data-done') })
export type DataDone = Infer<typeof DataDone>

/** The seller's acknowledgement of the enclave's receipt it got on this stream: its signature over receiptAckDigestOf. */
export const DataAck = s.object({
  type: s.literal('data-ack'),
  ack: s.hex({ bytes: SIGNATURE_BYTES })
})
export type DataAck = Infer<typeof DataAck>
