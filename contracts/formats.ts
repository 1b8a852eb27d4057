// The byte-level formats of docs/protocol.md that the enclave (TypeScript) and DTMC (Solidity) must
// agree on bit for bit: identifiers, the attestation quote, the signed ResultInfo, the code delivery.
// Pure functions over ethers (and node:crypto's SHA-256), so both the enclave and the chain client import this file.
// Every hex string returned is 0x-prefixed lowercase.
//
// MEASURED: the enclave worker imports this file, so its bytes are part of the enclave measurement
// (enclave/measurement.ts ENCLAVE_CODE_FILES: the enclave's files the worker imports, config/errors.ts
// and this file; test/unit/enclave/measurement.test.ts checks that list
// against the worker's import graph). Editing it changes the measurement every verifier accepts, so
// only what the enclave or the chain client needs lives here; off-chain mirrors of DTMC's checks that
// only tests use are in test/helpers/dtmc-checks.ts.
import { createHash } from 'node:crypto'
import { AbiCoder } from 'ethers/abi'
import { SigningKey, Signature, keccak256 } from 'ethers/crypto'
import { concat, getBytes, toUtf8Bytes } from 'ethers/utils'
import { getAddress } from 'ethers/address'
import { recoverAddress } from 'ethers/transaction'

const abi = AbiCoder.defaultAbiCoder()

/** keccak256("SDTE.Quote.v3"): domain tag of the attestation root's quote signature (v3: the report data names the node's account). */
export const QUOTE_TAG: string = keccak256(toUtf8Bytes('SDTE.Quote.v3'))
/** keccak256("SDTE.ResultInfo.v3"): domain tag of the enclave's result signature. */
export const RESULT_TAG: string = keccak256(toUtf8Bytes('SDTE.ResultInfo.v3'))

/** keccak256("SDTE.CodeDelivery.v2"): domain tag of the buyer's authorization of its code envelope. */
export const CODE_TAG: string = keccak256(toUtf8Bytes('SDTE.CodeDelivery.v2'))

/**
 * The deployment a signature or a derived key is for: the chain id and the DTMC address. Every signed
 * digest holds both (after its tag), so a quote, a result or a code authorization made for one
 * deployment does not verify on another chain or on another DTMC of the same chain.
 */
export interface NetworkDomain {
  chainId: bigint
  /** The DTMC address. */
  verifyingContract: string
}

/** The domain of a network file's deployment (chain id and DTMC address). */
export function networkDomainOf (network: { chainId: number | bigint, contracts: { DTMC: string } }): NetworkDomain {
  return { chainId: BigInt(network.chainId), verifyingContract: getAddress(network.contracts.DTMC) }
}

/** A domain as a string for key derivation: `<chainId>:<lowercase DTMC address>`; throws on a bad one. */
export function networkDomainKey (domain: NetworkDomain): string {
  if (typeof domain.chainId !== 'bigint' || domain.chainId <= 0n) throw new RangeError('domain.chainId must be a positive bigint')
  return `${domain.chainId}:${getAddress(domain.verifyingContract).toLowerCase()}`
}

function domainWords (domain: NetworkDomain): [string[], unknown[]] {
  return [['uint256', 'address'], [domain.chainId, domain.verifyingContract]]
}

/** ResultInfo.status values (docs/protocol.md). */
export const ResultStatus = {
  Ok: 0,
  Reverted: 1,
  OutOfGas: 2,
  Forbidden: 3,
  OutputOverCap: 4,
  InputInvalid: 5,
  Internal: 6
} as const
export type ResultStatusCode = typeof ResultStatus[keyof typeof ResultStatus]

/** What an enclave signs with its task key after running a task (step 8). */
export interface ResultInfo {
  tradeId: string
  taskId: string
  inputHash: string
  /** resultHashOf(resultSalt, output): salted by the buyer, so the public hash of a small output is not guessable. */
  resultHash: string
  resultSize: bigint
  status: number
}

/** A quote as it travels on the wire and into DTMC.openTrade (step 4). */
export interface Quote {
  measurement: string
  enclaveAddress: string
  taskId: string
  nonce: string
  signature: string
}

/** The largest values the on-chain ResultInfo fields hold (uint64, uint8). */
export const MAX_UINT64 = (1n << 64n) - 1n

function lower (hex: string): string { return hex.toLowerCase() }

/** tradeId = keccak256(abi.encode(address buyer, bytes32 salt)). */
export function tradeIdOf (buyer: string, salt: string): string {
  return lower(keccak256(abi.encode(['address', 'bytes32'], [buyer, salt])))
}

/** taskId = keccak256(abi.encode(bytes32 tradeId, bytes32 codeHash, address enclaveAddress)). */
export function taskIdOf (tradeId: string, codeHash: string, enclaveAddress: string): string {
  return lower(keccak256(abi.encode(['bytes32', 'bytes32', 'address'], [tradeId, codeHash, enclaveAddress])))
}

/**
 * reportData = keccak256(abi.encode(address enclaveAddress, bytes32 taskId, bytes32 tradeId, bytes32 codeHash, bytes32 nonce,
 * address operator)). The operator is the account of the node whose host runs the enclave (told at its start): a quote is
 * valid only for that account's offer and payee, so a peer cannot hand over another node's quote as its own.
 */
export function reportDataOf (enclaveAddress: string, taskId: string, tradeId: string, codeHash: string, nonce: string, operator: string): string {
  return lower(keccak256(abi.encode(
    ['address', 'bytes32', 'bytes32', 'bytes32', 'bytes32', 'address'],
    [enclaveAddress, taskId, tradeId, codeHash, nonce, operator]
  )))
}

/** quoteDigest = keccak256(abi.encode(bytes32 QUOTE_TAG, uint256 chainId, address dtmc, bytes32 measurement, bytes32 reportData)). */
export function quoteDigestOf (domain: NetworkDomain, measurement: string, reportData: string): string {
  const [types, values] = domainWords(domain)
  return lower(keccak256(abi.encode(['bytes32', ...types, 'bytes32', 'bytes32'], [QUOTE_TAG, ...values, measurement, reportData])))
}

function checkResultInfo (info: ResultInfo): void {
  if (info.resultSize < 0n || info.resultSize > MAX_UINT64) throw new RangeError('resultSize out of uint64 range')
  if (!Number.isInteger(info.status) || info.status < 0 || info.status > 255) throw new RangeError('status out of uint8 range')
}

/**
 * resultDigest = keccak256(abi.encode(RESULT_TAG, uint256 chainId, address dtmc, tradeId, taskId, inputHash, resultHash,
 * uint64 resultSize, uint8 status)). The gas the run used is not in it: it goes to the buyer only, encrypted.
 */
export function resultDigestOf (domain: NetworkDomain, info: ResultInfo): string {
  checkResultInfo(info)
  const [types, values] = domainWords(domain)
  return lower(keccak256(abi.encode(
    ['bytes32', ...types, 'bytes32', 'bytes32', 'bytes32', 'bytes32', 'uint64', 'uint8'],
    [RESULT_TAG, ...values, info.tradeId, info.taskId, info.inputHash, info.resultHash, info.resultSize, info.status]
  )))
}

/**
 * A node's commitment to its result (DTMC.commitResult): keccak256(abi.encode(bytes32 resultDigest, uint8 node,
 * bytes32 nonce)), the nonce a fresh random secret of the node's, shown only in the reveal.
 */
export function resultCommitmentOf (resultDigest: string, node: number, nonce: string): string {
  if (!Number.isInteger(node) || node < 0 || node > 255) throw new RangeError('node out of uint8 range')
  return lower(keccak256(abi.encode(['bytes32', 'uint8', 'bytes32'], [resultDigest, node, nonce])))
}

/**
 * resultHash = keccak256(resultSalt ‖ output): the resultSalt is the buyer's secret for the trade, sent to every
 * enclave inside the code envelope, so identical outputs hash alike on every node while nobody outside the
 * trade can test a guess of the output against the public hash.
 */
export function resultHashOf (resultSalt: string | Uint8Array, output: Uint8Array): string {
  const salt = getBytes(resultSalt)
  if (salt.length !== 32) throw new RangeError('resultSalt must be 32 bytes')
  return lower(keccak256(concat([salt, output])))
}


/**
 * What the buyer signs to deliver its code envelope to a task: codeAuthDigest = keccak256(abi.encode(
 * CODE_TAG, uint256 chainId, address dtmc, bytes32 taskId, bytes32 keccak256(envelope))). With the salt,
 * the enclave checks that the signer is the trade's buyer (tradeId = keccak256(abi.encode(signer, salt))):
 * nobody else can give a task code, and with it the result key the output is encrypted to. The domain is
 * the one the enclave was started for: a host that started it for another deployment than the buyer's
 * finds the buyer's signature failing, so the enclave signs results only for the buyer's deployment.
 */
export function codeAuthDigestOf (domain: NetworkDomain, taskId: string, envelopeHash: string): string {
  const [types, values] = domainWords(domain)
  return lower(keccak256(abi.encode(['bytes32', ...types, 'bytes32', 'bytes32'], [CODE_TAG, ...values, taskId, envelopeHash])))
}

/** inputHash = keccak256(abi.encode(bytes32[] commitments)), the sellers' data commitments in trade order. */
export function inputHashOf (commitments: string[]): string {
  return lower(keccak256(abi.encode(['bytes32[]'], [commitments])))
}

/** Signs a raw 32-byte digest (no EIP-191 prefix): 65 bytes r ‖ s ‖ v, v = 27 or 28, low s. */
export function signDigest (privateKey: string | SigningKey, digest: string): string {
  const key = typeof privateKey === 'string' ? new SigningKey(privateKey) : privateKey
  return lower(key.sign(digest).serialized)
}

/** Recovers the signer of a raw digest; throws on a malformed or high-s signature (as DTMC reverts). */
export function recoverDigest (digest: string, signature: string): string {
  const bytes = signature.startsWith('0x') ? signature.slice(2) : signature
  if (bytes.length !== 130) throw new Error('signature must be 65 bytes r ‖ s ‖ v')
  const s = BigInt('0x' + bytes.slice(64, 128))
  if (s > SECP256K1_HALF_N) throw new Error('high-s signature')
  const v = Number.parseInt(bytes.slice(128, 130), 16)
  if (v !== 27 && v !== 28) throw new Error('signature v must be 27 or 28')
  return getAddress(recoverAddress(digest, Signature.from('0x' + bytes)))
}

/** secp256k1 n / 2: signatures with s above it are rejected (malleability), on chain and off. */
export const SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n

/** The address that signed a quote for (domain, tradeId, codeHash, operator), recomputing reportData from the context. */
export function quoteSignerOf (quote: Quote, domain: NetworkDomain, tradeId: string, codeHash: string, operator: string): string {
  const reportData = reportDataOf(quote.enclaveAddress, quote.taskId, tradeId, codeHash, quote.nonce, operator)
  return recoverDigest(quoteDigestOf(domain, quote.measurement, reportData), quote.signature)
}

// ---- delivery receipts and seller signatures (issue 10, properties 1 and 6; docs/protocol.md "Delivery receipts") ----

/** keccak256("SDTE.DataKeyDelivery.v1"): domain tag of the seller's signature over its data-key delivery. */
export const DATA_KEY_TAG: string = keccak256(toUtf8Bytes('SDTE.DataKeyDelivery.v1'))
/** keccak256("SDTE.DataChunk.v1"): domain tag of the seller's signature over one encrypted chunk. */
export const CHUNK_TAG: string = keccak256(toUtf8Bytes('SDTE.DataChunk.v1'))
/** keccak256("SDTE.DeliveryReceipt.v1"): domain tag of the enclave's delivery receipt (checked by DTMC.claimDelivery). */
export const RECEIPT_TAG: string = keccak256(toUtf8Bytes('SDTE.DeliveryReceipt.v1'))
/** keccak256("SDTE.ReceiptAck.v1"): domain tag of the seller's acknowledgement of a receipt. */
export const RECEIPT_ACK_TAG: string = keccak256(toUtf8Bytes('SDTE.ReceiptAck.v1'))

/**
 * What the seller signs with its account key to hand its data key to a task: dataKeyDigest =
 * keccak256(abi.encode(DATA_KEY_TAG, uint256 chainId, address dtmc, bytes32 taskId, uint8 sellerIndex,
 * bytes32 commitment, bytes32 keccak256(wrappedKey))). The enclave learns from it which account delivered
 * the data (the receipt names that account, and only it can acknowledge the receipt).
 */
export function dataKeyDigestOf (domain: NetworkDomain, taskId: string, sellerIndex: number, commitment: string, wrappedKeyHash: string): string {
  const [types, values] = domainWords(domain)
  return lower(keccak256(abi.encode(['bytes32', ...types, 'bytes32', 'uint8', 'bytes32', 'bytes32'], [DATA_KEY_TAG, ...values, taskId, sellerIndex, commitment, wrappedKeyHash])))
}

/**
 * The hash of an encrypted chunk in chunkDigest: SHA-256, not keccak256. It covers every byte of the dataset once
 * per node on both ends, and keccak256 exists here only in JavaScript (about 15-60 MiB/s on this machine, seconds
 * per 64 MiB on the seller for each node and again in each enclave), while SHA-256 is node:crypto's native code
 * (over 1 GiB/s). Nothing on chain reads it; the digest around it stays keccak256 like every other.
 */
export function chunkHashOf (chunk: Uint8Array): string {
  return '0x' + createHash('sha256').update(chunk).digest('hex')
}

/**
 * What the seller signs for each encrypted chunk: chunkDigest = keccak256(abi.encode(CHUNK_TAG, uint256 chainId,
 * address dtmc, bytes32 taskId, uint8 sellerIndex, bytes32 keccak256(wrappedKey), bytes32 sha256(chunk))) (chunkHashOf). A chunk
 * whose signature does not recover to the seller was changed on the way (the host's fault); a signed chunk that
 * fails is the seller's. The wrapped key of the delivery it belongs to is in it, so a host cannot replay a signed
 * chunk of an earlier delivery (under another data key) to make the current one fail in the seller's name.
 */
export function chunkDigestOf (domain: NetworkDomain, taskId: string, sellerIndex: number, wrappedKeyHash: string, chunkHash: string): string {
  const [types, values] = domainWords(domain)
  return lower(keccak256(abi.encode(['bytes32', ...types, 'bytes32', 'uint8', 'bytes32', 'bytes32'], [CHUNK_TAG, ...values, taskId, sellerIndex, wrappedKeyHash, chunkHash])))
}

/**
 * The enclave's delivery receipt, signed with the task key once a seller's whole dataset matched its commitment:
 * receiptDigest = keccak256(abi.encode(RECEIPT_TAG, uint256 chainId, address dtmc, bytes32 tradeId, bytes32 taskId,
 * uint8 sellerIndex, bytes32 commitment, address seller)). DTMC.claimDelivery pays the seller's data fee on it.
 */
export function receiptDigestOf (domain: NetworkDomain, tradeId: string, taskId: string, sellerIndex: number, commitment: string, seller: string): string {
  const [types, values] = domainWords(domain)
  return lower(keccak256(abi.encode(
    ['bytes32', ...types, 'bytes32', 'bytes32', 'uint8', 'bytes32', 'address'],
    [RECEIPT_TAG, ...values, tradeId, taskId, sellerIndex, commitment, seller]
  )))
}

/** What the seller signs to acknowledge a receipt: keccak256(abi.encode(RECEIPT_ACK_TAG, bytes32 receiptDigest)). */
export function receiptAckDigestOf (receiptDigest: string): string {
  return lower(keccak256(abi.encode(['bytes32', 'bytes32'], [RECEIPT_ACK_TAG, receiptDigest])))
}
