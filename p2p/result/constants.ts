// /sdte/result/1 (docs/trade.md step 10): the encrypted result, from a node to the buyer.
export const PROTOCOL_NAME = 'result'
export const PROTOCOL_VERSION = '1'
/** The enclave's largest output (16 MiB) plus envelope overhead. */
export const MAX_RESULT_ENVELOPE_BYTES = 16 * 1024 * 1024 + 4096
/** The envelope travels in raw frames of at most this size. */
export const RESULT_FRAME_BYTES = 1024 * 1024
/** The protocol's frame cap: the result's raw frames are its largest. */
export const MAX_MESSAGE_BYTES = RESULT_FRAME_BYTES
export const MESSAGE_TIMEOUT_MS = 30_000
export const EXCHANGE_TIMEOUT_MS = 5 * 60_000
export const MAX_INBOUND_STREAMS = 16
export const MAX_OUTBOUND_STREAMS = 16
