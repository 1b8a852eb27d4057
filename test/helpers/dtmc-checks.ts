// Off-chain mirrors of checks DTMC makes on chain, for tests that compare the two. They live here,
// not in contracts/formats.ts, because that file is part of the enclave measurement and the enclave
// never needs them.
import { AbiCoder, getAddress, keccak256 } from 'ethers'
import { quoteSignerOf, taskIdOf, type NetworkDomain, type Quote, type ResultInfo } from '../../contracts/formats.ts'

const abi = AbiCoder.defaultAbiCoder()

/**
 * The key DTMC groups results by: two results are identical when (resultHash, resultSize, status) are equal
 * (DTMC takes only results whose inputHash is the trade's).
 * groupKey = keccak256(abi.encode(resultHash, uint64 resultSize, uint8 status)).
 */
export function groupKeyOf (info: Pick<ResultInfo, 'resultHash' | 'resultSize' | 'status'>): string {
  return keccak256(abi.encode(['bytes32', 'uint64', 'uint8'], [info.resultHash, info.resultSize, info.status])).toLowerCase()
}

/** Why a quote fails the checks DTMC makes; the names are DTMC's custom errors. */
export type QuoteProblem = 'QuoteCodeHashMismatch' | 'MeasurementNotAccepted' | 'InvalidSignature' | 'QuoteNotFromRoot'

/**
 * The on-chain checks of one quote, off chain: taskId bound to (tradeId, codeHash, enclaveAddress),
 * measurement accepted (when a list is given), a well-formed low-s signature by the attestation root.
 * Returns null when the quote passes. The nonce check (the verifier's own, never seen before) is the caller's.
 */
export function quoteProblemOf (
  quote: Quote,
  expect: { domain: NetworkDomain, tradeId: string, codeHash: string, operator: string, attestationRoot: string, measurements?: string[] }
): QuoteProblem | null {
  const lower = (hex: string): string => hex.toLowerCase()
  if (lower(quote.taskId) !== taskIdOf(expect.tradeId, expect.codeHash, quote.enclaveAddress)) return 'QuoteCodeHashMismatch'
  if (expect.measurements !== undefined && !expect.measurements.some(m => lower(m) === lower(quote.measurement))) return 'MeasurementNotAccepted'
  let signer: string
  try {
    signer = quoteSignerOf(quote, expect.domain, expect.tradeId, expect.codeHash, expect.operator)
  } catch {
    return 'InvalidSignature'
  }
  return signer === getAddress(expect.attestationRoot) ? null : 'QuoteNotFromRoot'
}
