// JSON-RPC 2.0 errors. The standard codes, plus the application's own in -32000..-32099, each with a
// stable `data.name` that clients match on. Errors survive serialisation: `RpcError.fromJSON` on the
// client rebuilds what the server threw. RpcError is the wire object itself (its `code` is the
// JSON-RPC number); every other error is an SdteError (config/errors.ts), which RPC_ERROR_TABLE below
// turns into one of these, keeping its name and code in `data.error` and `data.code`.

export const RPC_PARSE_ERROR = -32700
export const RPC_INVALID_REQUEST = -32600
export const RPC_METHOD_NOT_FOUND = -32601
export const RPC_INVALID_PARAMS = -32602
export const RPC_INTERNAL_ERROR = -32603

/** Application error codes (-32000..-32099). Keep them stable: clients depend on them. */
export const APP_ERRORS = {
  NotFound: -32001,
  Conflict: -32002,
  RoleNotEnabled: -32003,
  ChainUnavailable: -32004,
  ChainReverted: -32005,
  PeerUnreachable: -32006,
  Unavailable: -32007,
  Rejected: -32008,
  /** A method that changes state or reveals secrets, called with the read-only token. */
  Forbidden: -32009
} as const
export type AppErrorName = keyof typeof APP_ERRORS

export interface RpcErrorObject { code: number, message: string, data?: { name: string, [k: string]: unknown } }

export class RpcError extends Error {
  override name = 'RpcError'
  readonly code: number
  readonly data?: { name: string, [k: string]: unknown }
  constructor (code: number, message: string, data?: { name: string, [k: string]: unknown }) {
    super(message)
    this.code = code
    this.data = data
  }

  toJSON (): RpcErrorObject {
    return this.data === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, data: this.data }
  }

  static fromJSON (o: RpcErrorObject): RpcError {
    return new RpcError(o.code, o.message, o.data)
  }
}

export function parseError (why: string): RpcError {
  return new RpcError(RPC_PARSE_ERROR, `parse error: ${why}`, { name: 'ParseError' })
}

export function invalidRequest (why: string): RpcError {
  return new RpcError(RPC_INVALID_REQUEST, `invalid request: ${why}`, { name: 'InvalidRequest' })
}

export function methodNotFound (method: string): RpcError {
  return new RpcError(RPC_METHOD_NOT_FOUND, `method not found: ${method}`, { name: 'MethodNotFound' })
}

/** -32602 naming the (first) bad param; `all` lists every bad param of the request when there are several. */
export function invalidParams (param: string, why: string, all?: ReadonlyArray<{ param: string, why: string }>): RpcError {
  const more = all !== undefined && all.length > 1 ? ` (and ${all.slice(1).map(b => `${b.param}: ${b.why}`).join('; ')})` : ''
  return new RpcError(RPC_INVALID_PARAMS, `invalid params: ${param}: ${why}${more}`, { name: 'InvalidParams', param, ...(all !== undefined && { params: all }) })
}

export function internalError (): RpcError {
  return new RpcError(RPC_INTERNAL_ERROR, 'internal error (see the daemon log)', { name: 'InternalError' })
}

/** An application error for a handler to throw: `throw appError('NotFound', 'no trade 0x12…')`. */
export function appError (name: AppErrorName, message: string, extra: Record<string, unknown> = {}): RpcError {
  return new RpcError(APP_ERRORS[name], message, { name, ...extra })
}

/**
 * The one table from the errors a method may let escape to their JSON-RPC answer, by class name
 * (SdteError subclasses are told apart by `.name`); an error matches its own class or the nearest
 * ancestor listed. Anything not listed is an internal error (-32603, details in the log only).
 */
export const RPC_ERROR_TABLE: Readonly<Record<string, AppErrorName>> = {
  // chain
  ChainRevertError: 'ChainReverted',
  ChainConfigError: 'ChainUnavailable',
  ChainUnavailableError: 'ChainUnavailable',
  // trades
  TradeNotFoundError: 'NotFound',
  // p2p
  InvalidP2PInputError: 'Rejected',
  NoTopicPeersError: 'Unavailable',
  P2PStateError: 'Unavailable',
  RequestRefusedError: 'Rejected',
  DialFailedError: 'PeerUnreachable',
  /** The rest of the p2p layer (timeouts, bad frames, protocol violations): the remote did not answer properly. */
  P2PError: 'PeerUnreachable',
  // attestation and demands checked on a caller's behalf
  QuoteError: 'Rejected',
  DemandInvalidError: 'Rejected'
}

/** The RpcError an error answers with, from RPC_ERROR_TABLE; undefined when it is an internal error. */
export function rpcErrorOf (err: unknown): RpcError | undefined {
  if (err instanceof RpcError) return err
  if (!(err instanceof Error)) return undefined
  for (let proto = Object.getPrototypeOf(err); proto !== null && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
    const app = RPC_ERROR_TABLE[(proto as { constructor: { name: string } }).constructor.name]
    if (app === undefined) continue
    const e = err as Error & { code?: unknown, errorName?: unknown }
    // A revert names the contract's custom error; any other error its own class.
    const error = typeof e.errorName === 'string' ? e.errorName : e.name
    return appError(app, e.message, { error, ...(typeof e.code === 'string' && { code: e.code }) })
  }
  return undefined
}
