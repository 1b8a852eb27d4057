// Quote verification for buyers and sellers (steps 4 and 7), checking what DTMC checks on chain —
// the root's signature over quoteDigest(measurement, reportData(enclaveAddress, taskId, tradeId,
// codeHash, nonce)), an accepted measurement, and taskId = keccak(abi.encode(tradeId, codeHash,
// enclaveAddress)) — plus what only the verifier knows: the nonce it sent, that the nonce was not
// seen before, and (for a seller) the enclave key and task recorded on DTMC. Each failure has its
// own error class.
import { computeAddress, getAddress } from 'ethers'
import { SdteError } from '../config/index.ts'
import { quoteSignerOf, taskIdOf, type NetworkDomain } from '../contracts/index.ts'
import type { Quote } from '../contracts/index.ts'

export class QuoteError extends SdteError {
  override name = 'QuoteError'
  override code = 'ERR_QUOTE_INVALID'
}
/** The nonce is not the one this verifier sent. */
export class QuoteNonceError extends QuoteError { override name = 'QuoteNonceError'; override code = 'ERR_QUOTE_NONCE' }
/** The nonce was already used: a replayed quote. */
export class QuoteReplayError extends QuoteError { override name = 'QuoteReplayError'; override code = 'ERR_QUOTE_REPLAY' }
/** The enclave key is not the expected one (the one on DTMC for this trade), or the task key handed over with the quote is not the quote's. */
export class QuoteEnclaveKeyError extends QuoteError { override name = 'QuoteEnclaveKeyError'; override code = 'ERR_QUOTE_ENCLAVE_KEY' }
/** The task id is not the expected one (the one on DTMC for this trade). */
export class QuoteTaskError extends QuoteError { override name = 'QuoteTaskError'; override code = 'ERR_QUOTE_TASK' }
/** The quote's task is not bound to this (tradeId, codeHash) and its enclave key: another codeHash or trade. */
export class QuoteCodeHashError extends QuoteError { override name = 'QuoteCodeHashError'; override code = 'ERR_QUOTE_CODE_HASH' }
/** The signature is not the attestation root's over this quote. */
export class QuoteSignatureError extends QuoteError { override name = 'QuoteSignatureError'; override code = 'ERR_QUOTE_SIGNATURE' }
/** The measurement is not one the verifier accepts. */
export class QuoteMeasurementError extends QuoteError { override name = 'QuoteMeasurementError'; override code = 'ERR_QUOTE_MEASUREMENT' }

export interface QuoteExpectations {
  /** The verifier's deployment (chain id, DTMC address): a quote for another one fails its signature check. */
  domain: NetworkDomain
  /** Address of the attestation root (network.json / DTMC). */
  expectedRoot: string
  /** Measurements of enclave builds the verifier accepts (DTMC's set). */
  acceptedMeasurements: Iterable<string>
  tradeId: string
  codeHash: string
  /**
   * The account of the node the quote is for (its offer's account, its payee on DTMC): the report data names it, so
   * another node's quote handed over as this one's fails its signature check.
   */
  operator: string
  /** The nonce this verifier sent with its attestation request. */
  nonce: string
  /** Nonces already used; a valid quote's nonce is added to it. Pass one set per verifier, kept across trades. */
  seenNonces?: Set<string>
  /**
   * The task public key that came with the quote, which the verifier will encrypt to (the code, a data key): it must
   * be the quote's enclave key. The quote signs only its address, so a host could otherwise hand over a key of its
   * own and read what is encrypted to it.
   */
  enclavePublicKey: string
  /** For a seller: the enclave address DTMC holds for this trade. */
  enclaveAddress?: string
  /** For a seller: the task id DTMC holds for this trade. */
  taskId?: string
}

function same (a: string, b: string): boolean { return a.toLowerCase() === b.toLowerCase() }

/**
 * Verifies a quote; returns it normalised (lowercase hex) or throws the QuoteError subclass of the
 * first check that fails, in this order: nonce, replay, enclave key, task, binding to
 * (tradeId, codeHash), root signature, measurement, the task key handed over with the quote. The quote's form (field lengths, hex) is checked
 * once, where it enters: its wire schema (QuoteSchema, p2p/attest/schema.ts); a malformed signature
 * that gets here anyway fails as a signature.
 */
export function verifyQuote (quote: Quote, ex: QuoteExpectations): Quote {
  const q: Quote = {
    measurement: quote.measurement.toLowerCase(),
    enclaveAddress: quote.enclaveAddress.toLowerCase(),
    taskId: quote.taskId.toLowerCase(),
    nonce: quote.nonce.toLowerCase(),
    signature: quote.signature.toLowerCase()
  }
  if (!same(q.nonce, ex.nonce)) throw new QuoteNonceError('quote is not for the nonce this verifier sent')
  if (ex.seenNonces?.has(q.nonce) === true) throw new QuoteReplayError('quote nonce was already used')
  if (ex.enclaveAddress !== undefined && !same(q.enclaveAddress, ex.enclaveAddress)) throw new QuoteEnclaveKeyError('quote is for another enclave key')
  if (ex.taskId !== undefined && !same(q.taskId, ex.taskId)) throw new QuoteTaskError('quote is for another task')
  let boundTask: string
  try {
    boundTask = taskIdOf(ex.tradeId, ex.codeHash, q.enclaveAddress)
  } catch {
    throw new QuoteCodeHashError('quote enclave key is not an address')
  }
  if (q.taskId !== boundTask) throw new QuoteCodeHashError('quote task is not bound to this tradeId, codeHash and enclave key')
  let signer: string
  try {
    signer = quoteSignerOf(q, ex.domain, ex.tradeId, ex.codeHash, ex.operator)
  } catch (err) {
    throw new QuoteSignatureError(`quote signature is malformed (${(err as Error).message})`)
  }
  if (getAddress(signer) !== getAddress(ex.expectedRoot)) throw new QuoteSignatureError('quote is not signed by the attestation root for this node\'s account')
  let accepted = false
  for (const m of ex.acceptedMeasurements) if (same(m, q.measurement)) { accepted = true; break }
  if (!accepted) throw new QuoteMeasurementError('quote is from an enclave build that is not accepted')
  let handedOver: string
  try {
    handedOver = computeAddress(ex.enclavePublicKey)
  } catch {
    throw new QuoteEnclaveKeyError('the task key handed over with the quote is not a public key')
  }
  if (!same(handedOver, q.enclaveAddress)) throw new QuoteEnclaveKeyError('the task key handed over with the quote is not the quote\'s enclave key')
  ex.seenNonces?.add(q.nonce)
  return q
}
