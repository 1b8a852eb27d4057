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
/**
 * How far a signed result request's or ack's timestamp (the buyer's clock, unix seconds) may be
 * from the node's clock, either way. It bounds how long a captured request can be replayed; a
 * replay gains nothing anyway (the result is encrypted to the buyer, an ack only repeats itself).
 */
export const MAX_REQUEST_SKEW_SECONDS = 5 * 60
/**
 * How long after a settled trade's deadline (on the chain's clock) a node of the majority keeps
 * its sealed task, and so the result, for a buyer that has not acknowledged it. A buyer offline
 * for less than this after the deadline still gets its result; after it, nodes may drop it.
 */
export const RESULT_RETENTION_SECONDS = 7 * 24 * 3600
