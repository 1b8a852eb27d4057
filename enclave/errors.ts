// Typed errors of the enclave. Every class has a stable `name` and `code` (SdteError); errors thrown
// inside the worker cross the message boundary as { name, code, message } and are rebuilt here by
// name, so a caller on the host tells them apart exactly as if they had been thrown locally.
import { SdteError, type SerializedError } from '../config/errors.ts'

export class EnclaveError extends SdteError {
  override name = 'EnclaveError'
  override code = 'ERR_ENCLAVE'
}

/** A request to the enclave is malformed (bad hex, wrong length, out of bounds). Nothing changed. */
export class InvalidRequestError extends EnclaveError {
  override name = 'InvalidRequestError'
  override code = 'ERR_ENCLAVE_INVALID_REQUEST'
}
/** No task with that id in this enclave. */
export class UnknownTaskError extends EnclaveError {
  override name = 'UnknownTaskError'
  override code = 'ERR_ENCLAVE_UNKNOWN_TASK'
}
/** The task is not in a state that allows this request (e.g. execute before all data arrived). */
export class TaskStateError extends EnclaveError {
  override name = 'TaskStateError'
  override code = 'ERR_ENCLAVE_TASK_STATE'
}
/** An ECIES envelope did not open: wrong recipient key, wrong context, or tampered bytes. */
export class EnvelopeError extends EnclaveError {
  override name = 'EnvelopeError'
  override code = 'ERR_ENCLAVE_ENVELOPE'
}
/** The delivered code does not hash to the task's codeHash. */
export class CodeHashMismatchError extends EnclaveError {
  override name = 'CodeHashMismatchError'
  override code = 'ERR_ENCLAVE_CODE_HASH_MISMATCH'
}
/** A code envelope not signed by the trade's buyer (tradeId = keccak(buyer, salt)). Nothing changed. */
export class CodeAuthorizationError extends EnclaveError {
  override name = 'CodeAuthorizationError'
  override code = 'ERR_ENCLAVE_CODE_AUTHORIZATION'
}
/** A data chunk failed authentication (tampered, or from another key or position). */
export class ChunkAuthError extends EnclaveError {
  override name = 'ChunkAuthError'
  override code = 'ERR_ENCLAVE_CHUNK_AUTH'
}
/** A data chunk came out of order: one was dropped or the stream was reordered. */
export class ChunkOrderError extends EnclaveError {
  override name = 'ChunkOrderError'
  override code = 'ERR_ENCLAVE_CHUNK_ORDER'
}
/**
 * A chunk's seller signature does not recover to the account that delivered the data key: the bytes were
 * changed after the seller signed them (by the host or on the way). The host is at fault, not the seller:
 * the chunk is dropped and the delivery stays open where it was.
 */
export class ChunkNotFromSellerError extends EnclaveError {
  override name = 'ChunkNotFromSellerError'
  override code = 'ERR_ENCLAVE_CHUNK_NOT_FROM_SELLER'
}
/** A data-key delivery without a valid seller signature (dataKeyDigestOf). */
export class DataKeyAuthorizationError extends EnclaveError {
  override name = 'DataKeyAuthorizationError'
  override code = 'ERR_ENCLAVE_DATA_KEY_AUTHORIZATION'
}
/** A receipt acknowledgement not signed by the account that delivered the data, or for no receipt. */
export class ReceiptAckError extends EnclaveError {
  override name = 'ReceiptAckError'
  override code = 'ERR_ENCLAVE_RECEIPT_ACK'
}
/** The data stream ended without its last chunk. */
export class TruncatedDataError extends EnclaveError {
  override name = 'TruncatedDataError'
  override code = 'ERR_ENCLAVE_TRUNCATED_DATA'
}
/** The decrypted data does not match the seller's commitment (or its declared size). */
export class CommitmentMismatchError extends EnclaveError {
  override name = 'CommitmentMismatchError'
  override code = 'ERR_ENCLAVE_COMMITMENT_MISMATCH'
}
/**
 * The run's caps asked for are not the trade's: a node runs the analysis with exactly the trade's gas cap (and the
 * output cap the buyer and sellers set) or not at all, so that honest nodes never differ by their configuration.
 */
export class CapMismatchError extends EnclaveError {
  override name = 'CapMismatchError'
  override code = 'ERR_ENCLAVE_CAP_MISMATCH'
}
/**
 * A private run asked for wrongly: the host asks for an ordinary run of data whose deliveries carry privacy terms,
 * or a private run of data without them (or with some sellers' only), or an epsilon that is not the run's.
 * Nothing ran.
 */
export class PrivacyMismatchError extends EnclaveError {
  override name = 'PrivacyMismatchError'
  override code = 'ERR_ENCLAVE_PRIVACY_MISMATCH'
}
/** A seller's privacy terms are malformed or out of bounds (docs/enclave.md "Private mode"). Nothing changed. */
export class PrivacyTermsError extends EnclaveError {
  override name = 'PrivacyTermsError'
  override code = 'ERR_ENCLAVE_PRIVACY_TERMS'
}
/** A sealed blob does not unseal: another enclave build, another platform, or tampered. */
export class UnsealError extends EnclaveError {
  override name = 'UnsealError'
  override code = 'ERR_ENCLAVE_UNSEAL'
}
/** The enclave was closed (or its worker died) while the request was pending. */
export class EnclaveClosedError extends EnclaveError {
  override name = 'EnclaveClosedError'
  override code = 'ERR_ENCLAVE_CLOSED'
}
/**
 * A worker started again (after an idle stop) reports another measurement than the first: the enclave's files on
 * disk changed since the host started. Not a lost enclave: opening a new one would run the changed build while the
 * node is registered (CISC) and offers with the old measurement. The host stays closed; the daemon must restart.
 */
export class EnclaveBuildChangedError extends EnclaveError {
  override name = 'EnclaveBuildChangedError'
  override code = 'ERR_ENCLAVE_BUILD_CHANGED'
}
/** The worker did not answer in time. */
export class EnclaveTimeoutError extends EnclaveError {
  override name = 'EnclaveTimeoutError'
  override code = 'ERR_ENCLAVE_TIMEOUT'
}
/**
 * A run outlived its time budget or outgrew its heap budget (constants.ts, "Budget of one run") and
 * was killed. Nothing was signed or sealed: the task may run again.
 */
export class RunOverBudgetError extends EnclaveError {
  override name = 'RunOverBudgetError'
  override code = 'ENCLAVE_RUN_OVER_BUDGET'
}
/** A run's thread failed for another reason than its budget. Nothing was signed or sealed. */
export class RunFailedError extends EnclaveError {
  override name = 'RunFailedError'
  override code = 'ENCLAVE_RUN_FAILED'
}
/** A result envelope does not decrypt, or its plaintext does not hash to the expected resultHash. */
export class ResultDecryptionError extends EnclaveError {
  override name = 'ResultDecryptionError'
  override code = 'ERR_ENCLAVE_RESULT_DECRYPTION'
}

const BY_NAME: Record<string, new (message: string) => EnclaveError> = {
  EnclaveError,
  InvalidRequestError,
  UnknownTaskError,
  TaskStateError,
  EnvelopeError,
  CodeHashMismatchError,
  CodeAuthorizationError,
  ChunkAuthError,
  ChunkOrderError,
  ChunkNotFromSellerError,
  DataKeyAuthorizationError,
  ReceiptAckError,
  TruncatedDataError,
  CommitmentMismatchError,
  CapMismatchError,
  PrivacyMismatchError,
  PrivacyTermsError,
  UnsealError,
  EnclaveClosedError,
  EnclaveBuildChangedError,
  EnclaveTimeoutError,
  RunOverBudgetError,
  RunFailedError,
  ResultDecryptionError
}

export type { SerializedError }

export function serializeError (err: unknown): SerializedError {
  if (err instanceof EnclaveError) return err.toJSON()
  // Anything else is an internal failure; its message may name internals but holds no secrets
  // (no code path puts key or data bytes into an error message).
  const message = err instanceof Error ? err.message : String(err)
  return { name: 'EnclaveError', code: 'ERR_ENCLAVE_INTERNAL', message }
}

export function deserializeError (e: SerializedError): EnclaveError {
  const Ctor = BY_NAME[e.name] ?? EnclaveError
  const err = new Ctor(e.message)
  err.code = e.code
  return err
}
