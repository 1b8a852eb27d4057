// Defaults for the message framing. Every protocol may lower (or, for bulk data, raise) them.

/** Largest frame body accepted or sent, in bytes (the length prefix is not counted). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024

/** Time allowed for one read, one write or the final close of a stream. */
export const DEFAULT_MESSAGE_TIMEOUT_MS = 10_000

/**
 * A varint of this many bytes can express 2^56 - 1, far beyond any limit we allow; a longer
 * prefix is malformed rather than merely large.
 */
export const MAX_VARINT_BYTES = 8
