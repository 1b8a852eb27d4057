// /sdte/offer/1 (docs/trade.md step 3, and the buyer's trade notice to sellers after step 5).
export const PROTOCOL_NAME = 'offer'
export const PROTOCOL_VERSION = '1'
/** A solicitation carries a whole demand (at most 8 KiB); everything else is smaller. */
export const MAX_MESSAGE_BYTES = 16 * 1024
export const MESSAGE_TIMEOUT_MS = 10_000
export const EXCHANGE_TIMEOUT_MS = 20_000
export const MAX_INBOUND_STREAMS = 32
export const MAX_OUTBOUND_STREAMS = 64
