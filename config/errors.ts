// The one base class of SDTE's errors. Errors are told apart by `.name` (the class name, as in
// js-libp2p) and carry a stable machine-readable `.code`, always `ERR_<WHAT>` (as in Node and
// Lodestar), so that an error that crosses a boundary (the enclave worker, the control API, the log)
// survives serialisation as { name, code, message } and is recognised on the other side.
// Subclasses set `code`; a family base (P2PError, EnclaveError, QuoteError) sets a default.
// MEASURED: the enclave worker imports this file (enclave/measurement.ts ENCLAVE_CODE_FILES).

/** What crosses a boundary for an error: never a stack, never secret context. */
export interface SerializedError { name: string, code: string, message: string }

export class SdteError extends Error {
  /** Stable: clients and logs match on it. `ERR_` and SCREAMING_SNAKE_CASE. */
  code: string = 'ERR_SDTE'

  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }

  toJSON (): SerializedError {
    return { name: this.name, code: this.code, message: this.message }
  }
}
