// /sdte/attest/1 (docs/trade.md steps 4 and 7): remote attestation of a node's enclave, and delivery
// of the buyer's encrypted code to it.
export const PROTOCOL_NAME = 'attest'
export const PROTOCOL_VERSION = '1'
/** Largest code envelope accepted: the enclave's code limit (256 KiB) plus envelope overhead. */
export const MAX_CODE_ENVELOPE_BYTES = 256 * 1024 + 4096
/** A code message carries the envelope as hex: twice its size plus the JSON around it. */
export const MAX_MESSAGE_BYTES = 2 * MAX_CODE_ENVELOPE_BYTES + 4096
export const MESSAGE_TIMEOUT_MS = 15_000
export const EXCHANGE_TIMEOUT_MS = 30_000
export const MAX_INBOUND_STREAMS = 32
export const MAX_OUTBOUND_STREAMS = 64
