// The wire messages of /sdte/attest/1. One request and one reply per stream; the client closes its
// side after the request (the server answers only then) and the server after its reply:
//   buyer or seller -> node   Attest -> QuoteReply | Refused   (a fresh quote for the task of (tradeId, codeHash))
//   buyer -> node             Code   -> CodeAck | Refused      (bytecode + result key, ECIES to the task key, signed by the buyer)
import { schema as s, type Infer, type Schema } from '../messages/index.ts'
import type { Quote } from '../../contracts/index.ts'
import { MAX_CODE_ENVELOPE_BYTES } from './constants.ts'

export const Attest = s.object({
  type: s.literal('attest'),
  tradeId: s.hex({ bytes: 32 }),
  codeHash: s.hex({ bytes: 32 }),
  nonce: s.hex({ bytes: 32 })
})
export type Attest = Infer<typeof Attest>

/** The wire form of the one Quote (contracts/formats.ts, the format DTMC checks): typed against it. */
export const QuoteSchema: Schema<Quote> = s.object({
  measurement: s.hex({ bytes: 32 }),
  enclaveAddress: s.hex({ bytes: 20 }),
  taskId: s.hex({ bytes: 32 }),
  nonce: s.hex({ bytes: 32 }),
  signature: s.hex({ bytes: 65 })
})

export const QuoteReply = s.object({
  type: s.literal('quote'),
  quote: QuoteSchema,
  /** The task key, compressed secp256k1. */
  enclavePublicKey: s.hex({ bytes: 33 })
})
export type QuoteReply = Infer<typeof QuoteReply>

export const Code = s.object({
  type: s.literal('code'),
  taskId: s.hex({ bytes: 32 }),
  envelope: s.hex({ maxBytes: MAX_CODE_ENVELOPE_BYTES }),
  /** tradeId = keccak(buyer, salt): with the signature, it proves the sender is the trade's buyer. */
  salt: s.hex({ bytes: 32 }),
  /** The buyer's signature over codeAuthDigestOf(taskId, keccak(envelope)). */
  signature: s.hex({ bytes: 65 })
})
export type Code = Infer<typeof Code>

export const AttestRequest = s.tagged({ attest: Attest, code: Code })
export const CodeAck = s.object({ type: s.literal('code-ack') })
