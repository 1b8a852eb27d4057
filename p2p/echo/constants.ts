// /sdte/echo/1: a request/response protocol for tests and diagnostics, and the model each real
// protocol (/sdte/offer/1, /sdte/attest/1, /sdte/data/2, /sdte/result/1) follows (see index.ts).
export const PROTOCOL_NAME = 'echo'
export const PROTOCOL_VERSION = '1'
/** Longest text echoed, in characters. */
export const MAX_TEXT_LENGTH = 4096
/** Frame cap for this protocol: a request or response with the longest text fits easily. */
export const MAX_MESSAGE_BYTES = 16 * 1024
export const MESSAGE_TIMEOUT_MS = 10_000
/** Whole exchange, both sides. */
export const EXCHANGE_TIMEOUT_MS = 20_000
export const MAX_INBOUND_STREAMS = 8
export const MAX_OUTBOUND_STREAMS = 8
