// Defaults and bounds of the control API (daemon/rpc/server.ts); config/options.ts takes its
// `rpc` defaults from here.

/** The control API listens on loopback only: it is the daemon's owner's, never the network's. */
export const RPC_HOST = '127.0.0.1'
/** 0 picks a free port; the daemon writes the URL to <datadir>/api. */
export const DEFAULT_RPC_PORT = 0
/** Largest request body (HTTP 413 above it). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
/** Most requests in one JSON-RPC batch (-32600 above it). */
export const DEFAULT_MAX_BATCH_LENGTH = 32
/** Deadline of one request, its handler included (the handler's AbortSignal fires then). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000
