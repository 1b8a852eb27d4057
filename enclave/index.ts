// The enclave: a simulated SGX enclave (worker thread) that runs a buyer's EVM analysis on sellers'
// data, with attestation, sealing and a confined EVM with analytics precompiles; plus the helpers
// buyers and sellers use outside it. See docs/enclave.md.
//
// Node side (trusted node role):   createEnclave(options) -> EnclaveHost (the EnclaveBackend interface)
// Buyer side:   verifyQuote, encryptCodeForEnclave, generateKeyPair (one-time result key), decryptResult, openResult
// Seller side:  verifyQuote, encryptDataset / encryptChunks, datasetCommitment, wrapDataKey (with privacy terms: privacySecretOf)
export { createEnclave } from './host.ts'
export type { EnclaveBackend, EnclaveHost, EnclaveOptions, EnclaveComponents, DataDelivery, ExecuteOptions } from './host.ts'
export type { AttestRequest, AttestResponse, ExecuteResponse, PrivacyColumn, PrivacyTerms, RunBudgetPolicy, RunDiagnosis, SellerDataStatus, TaskSummary } from './messages.ts'
export { DEFAULT_RUN_BUDGET_POLICY, runBudgetOf } from './runs.ts'
export type { RunBudget } from './runs.ts'
export { MemoryBlobStore } from './store.ts'
export type { SealedBlobStore } from './store.ts'
export {
  verifyQuote, QuoteError, QuoteNonceError, QuoteReplayError, QuoteEnclaveKeyError, QuoteTaskError,
  QuoteCodeHashError, QuoteSignatureError, QuoteMeasurementError
} from './quote.ts'
export type { QuoteExpectations } from './quote.ts'
export {
  encryptCodeForEnclave, signCodeDelivery, signDataKeyDelivery, signChunk, splitSignedChunk, signReceiptAck, wrapDataKey, encryptDataset, encryptChunks, encryptChunk, datasetCommitment, commitmentHasher, decryptResult, openResult, RESULT_GAS_BYTES, encryptDiagnosis, openDiagnosis,
  generateKeyPair, eciesEncrypt, eciesDecrypt
} from './crypto.ts'
export type { CodeDelivery, DataKeyDelivery, EncryptedDataset, KeyPair } from './crypto.ts'
export { privacySecretOf, encodePrivacyTerms, decodePrivacyTerms } from './privacy-terms.ts'
export * from './errors.ts'
export * from './constants.ts'
export * from './examples.ts'

/**
 * The measurement of this build (enclave/measurement.ts), loaded when first asked for: it hashes the
 * EVM's configuration, so measurement.ts loads @ethereumjs/evm, which a daemon's main thread never
 * needs (the enclave worker computes its own measurement in its thread; test/unit/architecture.test.ts).
 */
export async function computeMeasurement (variant = ''): Promise<string> {
  return (await import('./measurement.ts')).computeMeasurement(variant)
}
