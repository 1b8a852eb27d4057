// /sdte/data/2 (docs/trade.md step 7): the seller's encrypted data, streamed to an attested enclave.
export const PROTOCOL_NAME = 'data'
/**
 * 2 since issue 13: the seller ends its chunks with data-done and acknowledges the receipt on the same stream
 * (data-ack). Version 1 ended the chunks with the stream's end and took the ack in a second stream's data-open; a
 * daemon of either kind dialling the other now fails at protocol negotiation, naming the protocol, instead of
 * stalling mid-delivery. No version 1 handler is kept: its ack on a second open is the flow version 2 replaced.
 */
export const PROTOCOL_VERSION = '2'
/** A secp256k1 signature r ‖ s ‖ v: the seller's on each chunk, key delivery and ack; the enclave's receipt. */
export const SIGNATURE_BYTES = 65
/** Largest chunk frame: the seller's signature, then the enclave's largest chunk (4 MiB) plus header and tag. */
export const MAX_CHUNK_FRAME_BYTES = SIGNATURE_BYTES + 4 * 1024 * 1024 + 64
/** The protocol's frame cap: a chunk frame is its largest. */
export const MAX_MESSAGE_BYTES = MAX_CHUNK_FRAME_BYTES
/** Most chunks in one delivery (even 128 byte chunks of a 128 MiB dataset; the seller sends 1 MiB chunks). */
export const MAX_CHUNKS = 1 << 20
/** The wrapped data key envelope is small: ECIES overhead plus a 32-byte key and a commitment. */
export const MAX_WRAPPED_KEY_BYTES = 1024
export const MESSAGE_TIMEOUT_MS = 30_000
/** A whole delivery; large datasets at loopback speed take seconds, a slow link minutes. */
export const EXCHANGE_TIMEOUT_MS = 15 * 60_000
/**
 * The node's wait for the seller's data-ack after it sent the complete status with the enclave's receipt (default of
 * the option ackTimeoutMs). Without its own bound that wait had only a frame's (MESSAGE_TIMEOUT_MS, sized for a 4 MiB
 * chunk on a slow link) and the whole delivery's: a seller silent after data-done held the stream and its handler that
 * long (test/attacks/data-ack-withheld). An honest seller is one receipt check, one store write (it keeps the receipt
 * before it acknowledges; the write may queue behind its progress writes for the same trade) and one signature away
 * from its ack: milliseconds, seconds on a loaded machine, so 10 s. Missing it costs an honest seller one more
 * stream, not the delivery: the node then resets the stream, the enclave keeps the data complete and the receipt
 * unacknowledged (as when a seller ends without an ack), and the seller's next stream gets the receipt again and acks it.
 */
export const DATA_ACK_TIMEOUT_MS = 10_000
export const MAX_INBOUND_STREAMS = 16
export const MAX_OUTBOUND_STREAMS = 16
/** The seller reports progress every this many chunks (8 MiB of the seller's 1 MiB chunks). */
export const PROGRESS_EVERY_CHUNKS = 8
