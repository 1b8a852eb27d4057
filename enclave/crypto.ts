// The enclave's cryptography, all from maintained libraries (@noble/curves for secp256k1 ECDH,
// @noble/hashes for HKDF and keccak, node:crypto for AES-256-GCM); nothing here is a primitive.
//
// ECIES envelope (code delivery, data-key wrapping, result delivery):
//   version u8 = 1 ‖ ephemeral public key (33 bytes, compressed) ‖ iv (12) ‖ ciphertext ‖ GCM tag (16)
//   key = HKDF-SHA256(ikm = ECDH(ephemeral, recipient).x, salt = ephPub ‖ recipientPub, info = "SDTE.ECIES.v1")
//   AAD = the caller's context bytes (a domain tag plus the task id and whatever else binds the envelope).
//
// Data chunk (seller data, one-time AES-256-GCM key per delivery):
//   version u8 = 1 ‖ flags u8 (bit 0: last chunk) ‖ index u32 BE ‖ ciphertext ‖ GCM tag (16)
//   iv = 8 zero bytes ‖ index u32 BE (unique: the key is used for one dataset delivery only)
//   AAD = "SDTE.DataChunk.v1" ‖ commitment (32) ‖ index u32 BE ‖ flags u8
// so a chunk moved to another position, a dropped or reordered chunk, a stream cut before its last
// chunk, or a chunk of another dataset all fail authentication or the enclave's order check.
//
// Commitment of a dataset = SHA-256(plaintext bytes): the seller computes it once when it adds the
// dataset (it is what CISC records), independent of how the data is later chunked. SHA-256 rather
// than keccak256 because node:crypto has it natively (~1 GB/s against ~20 MB/s for keccak in JS),
// and the enclave hashes every byte it receives.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { AbiCoder } from 'ethers/abi'
import { SigningKey, keccak256 } from 'ethers/crypto'
import { getBytes, hexlify, toUtf8Bytes } from 'ethers/utils'
import {
  COMMITMENT_SALT_BYTES,
  CODE_ENVELOPE_TAG, DATA_CHUNK_TAG, DATA_KEY_ENVELOPE_TAG, DIAGNOSIS_ENVELOPE_TAG, DIAGNOSIS_PAD_BYTES, DIAGNOSIS_TAG, MAX_DIAGNOSIS_SIZE, DEFAULT_CHUNK_SIZE, DEFAULT_GAS_CAP, DEFAULT_OUTPUT_CAP,
  ECIES_INFO, ENVELOPE_VERSION, MAX_CHUNK_SIZE, MAX_OUTPUT_CAP, RESULT_ENVELOPE_TAG, SEALED_BLOB_VERSION, SEAL_INFO, SELLER_SIGNATURE_BYTES
} from './constants.ts'
import { ChunkAuthError, EnvelopeError, InvalidRequestError, ResultDecryptionError, UnsealError } from './errors.ts'
import { decodePrivacyTerms, encodePrivacyTerms } from './privacy-terms.ts'
import type { PrivacyTerms, RunDiagnosis } from './messages.ts'
import { chunkDigestOf, chunkHashOf, codeAuthDigestOf, dataKeyDigestOf, receiptAckDigestOf, receiptDigestOf, recoverDigest, resultHashOf, signDigest, type NetworkDomain } from '../contracts/formats.ts'

const abi = AbiCoder.defaultAbiCoder()
const IV_BYTES = 12
const TAG_BYTES = 16
const PUB_BYTES = 33
const ENVELOPE_HEADER = 1 + PUB_BYTES + IV_BYTES
export const CHUNK_HEADER_BYTES = 6
const LAST_FLAG = 1

export type Bytes = Uint8Array
export type BytesLike = Uint8Array | string

export function toBytes (v: BytesLike, what = 'value'): Uint8Array {
  if (v instanceof Uint8Array) return v
  try { return getBytes(v) } catch { throw new InvalidRequestError(`${what} must be 0x-prefixed hex bytes`) }
}

function concat (...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map(p => Buffer.from(p.buffer, p.byteOffset, p.byteLength)))
}

function u32 (n: number): Uint8Array {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

// ---- AES-256-GCM ----

function gcmSeal (key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, iv)
  c.setAAD(aad)
  const a = c.update(plaintext)
  const b = c.final()
  return concat(a, b, c.getAuthTag())
}

/** Returns undefined when authentication fails. */
function gcmOpen (key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  if (sealed.length < TAG_BYTES) return undefined
  const d = createDecipheriv('aes-256-gcm', key, iv)
  d.setAAD(aad)
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
  try {
    const a = d.update(sealed.subarray(0, sealed.length - TAG_BYTES))
    const b = d.final()
    return b.length === 0 ? new Uint8Array(a.buffer, a.byteOffset, a.byteLength) : concat(a, b)
  } catch {
    return undefined
  }
}

// ---- keys ----

export interface KeyPair { privateKey: Uint8Array, publicKey: Uint8Array }

/** A fresh secp256k1 key pair; publicKey is compressed (33 bytes). */
export function generateKeyPair (): KeyPair {
  const privateKey = secp256k1.utils.randomSecretKey()
  return { privateKey, publicKey: secp256k1.getPublicKey(privateKey, true) }
}

export function compressPublicKey (pub: BytesLike): Uint8Array {
  const bytes = toBytes(pub, 'public key')
  if (!secp256k1.utils.isValidPublicKey(bytes, bytes.length === 33)) throw new InvalidRequestError('not a secp256k1 public key')
  return secp256k1.Point.fromBytes(bytes).toBytes(true)
}

// ---- ECIES ----

function eciesKey (shared: Uint8Array, ephPub: Uint8Array, recipientPub: Uint8Array): Uint8Array {
  return hkdf(sha256, shared.subarray(1), concat(ephPub, recipientPub), toUtf8Bytes(ECIES_INFO), 32)
}

/** Encrypts to a secp256k1 public key (compressed or not), bound to `context` as GCM AAD. */
export function eciesEncrypt (recipientPublicKey: BytesLike, plaintext: Uint8Array, context: Uint8Array): Uint8Array {
  const recipient = compressPublicKey(recipientPublicKey)
  const eph = generateKeyPair()
  const key = eciesKey(secp256k1.getSharedSecret(eph.privateKey, recipient, true), eph.publicKey, recipient)
  const iv = randomBytes(IV_BYTES)
  return concat(Uint8Array.of(ENVELOPE_VERSION), eph.publicKey, iv, gcmSeal(key, iv, plaintext, context))
}

/** Opens an ECIES envelope; throws EnvelopeError for another recipient, another context or tampering. */
export function eciesDecrypt (privateKey: Uint8Array, envelope: Uint8Array, context: Uint8Array): Uint8Array {
  if (envelope.length < ENVELOPE_HEADER + TAG_BYTES || envelope[0] !== ENVELOPE_VERSION) throw new EnvelopeError('malformed envelope')
  const ephPub = envelope.subarray(1, 1 + PUB_BYTES)
  let shared: Uint8Array
  try { shared = secp256k1.getSharedSecret(privateKey, ephPub, true) } catch { throw new EnvelopeError('malformed envelope key') }
  const key = eciesKey(shared, ephPub, secp256k1.getPublicKey(privateKey, true))
  const out = gcmOpen(key, envelope.subarray(1 + PUB_BYTES, ENVELOPE_HEADER), envelope.subarray(ENVELOPE_HEADER), context)
  if (out === undefined) throw new EnvelopeError('envelope does not open with this key and context')
  return out
}

// ---- envelopes of the protocol ----

function tagged (tag: string, types: string[], values: unknown[]): Uint8Array {
  return getBytes(abi.encode(['bytes32', ...types], [keccak256(toUtf8Bytes(tag)), ...values]))
}

export function codeEnvelopeContext (taskId: string): Uint8Array { return tagged(CODE_ENVELOPE_TAG, ['bytes32'], [taskId]) }
export function dataKeyEnvelopeContext (taskId: string, sellerIndex: number): Uint8Array {
  return tagged(DATA_KEY_ENVELOPE_TAG, ['bytes32', 'uint256'], [taskId, sellerIndex])
}
export function resultEnvelopeContext (taskId: string, resultHash: string): Uint8Array {
  return tagged(RESULT_ENVELOPE_TAG, ['bytes32', 'bytes32'], [taskId, resultHash])
}

/** What the buyer sends the enclave (step 4): its analysis code, one-time result key and caps. */
export interface CodeDelivery {
  /** Runtime bytecode of the analysis contract; keccak256 of it must equal the task's codeHash. */
  code: BytesLike
  /** The buyer's one-time result public key (secp256k1, compressed or uncompressed). */
  resultPublicKey: BytesLike
  /** Gas cap of the run, as posted on DTMC; every node of the trade runs with the same one. Default DEFAULT_GAS_CAP. */
  gasCap?: bigint
  /** Output cap in bytes, as posted on DTMC. Default DEFAULT_OUTPUT_CAP. */
  outputCap?: bigint
  /**
   * The trade's result salt (32 bytes), the buyer's secret, the same for every enclave of the trade: resultHash =
   * resultHashOf(resultSalt, output), so the public hash cannot be tested against guesses of the output.
   */
  resultSalt: BytesLike
}

/** ECIES-encrypts a code delivery to the task key. Only the attested enclave can open it. */
export function encryptCodeForEnclave (enclavePublicKey: BytesLike, taskId: string, d: CodeDelivery): Uint8Array {
  const salt = toBytes(d.resultSalt, 'resultSalt')
  if (salt.length !== 32) throw new InvalidRequestError('resultSalt must be 32 bytes')
  const plain = getBytes(abi.encode(['bytes', 'bytes', 'uint64', 'uint64', 'bytes32'],
    [toBytes(d.code, 'code'), compressPublicKey(d.resultPublicKey), d.gasCap ?? DEFAULT_GAS_CAP, d.outputCap ?? DEFAULT_OUTPUT_CAP, salt]))
  return eciesEncrypt(enclavePublicKey, plain, codeEnvelopeContext(taskId))
}

/**
 * The buyer's authorization of a code envelope for a task (step 4): its signature over
 * codeAuthDigestOf(domain, taskId, keccak256(envelope)), domain being the buyer's deployment (chain id,
 * DTMC). The enclave accepts code only with it, checked against the domain its task was attested for.
 */
export function signCodeDelivery (buyerPrivateKey: string, domain: NetworkDomain, taskId: string, envelope: Uint8Array): string {
  return signDigest(buyerPrivateKey, codeAuthDigestOf(domain, taskId, keccak256(envelope)))
}

export interface OpenedCode { code: Uint8Array, resultPublicKey: Uint8Array, gasCap: bigint, outputCap: bigint, resultSalt: string }

export function openCodeEnvelope (taskPrivateKey: Uint8Array, taskId: string, envelope: Uint8Array): OpenedCode {
  const plain = eciesDecrypt(taskPrivateKey, envelope, codeEnvelopeContext(taskId))
  try {
    const [code, resultPublicKey, gasCap, outputCap, resultSalt] = abi.decode(['bytes', 'bytes', 'uint64', 'uint64', 'bytes32'], plain)
    return { code: getBytes(code), resultPublicKey: compressPublicKey(resultPublicKey), gasCap, outputCap, resultSalt: String(resultSalt).toLowerCase() }
  } catch (err) {
    if (err instanceof InvalidRequestError) throw new EnvelopeError('code envelope holds an invalid result key')
    throw new EnvelopeError('code envelope is not abi.encode(bytes, bytes, uint64, uint64, bytes32)')
  }
}

/** What a seller wraps to the task key (step 7). */
export interface DataKeyDelivery {
  /** The one-time AES-256 data key (32 bytes). */
  key: Uint8Array
  /** The dataset's commitment, SHA-256(commitmentSalt ‖ plaintext) (datasetCommitment). */
  commitment: string
  /** The seller's secret salt of the commitment (32 bytes): the enclave checks the plaintext against the commitment with it. */
  commitmentSalt: Uint8Array
  /** Plaintext size in bytes. */
  size: number
  /** The output cap the seller accepts (the enclave enforces the smallest of buyer's and sellers'). Default MAX_OUTPUT_CAP. */
  outputCap?: bigint
  /**
   * Privacy terms (docs/enclave.md "Private mode"): with them the dataset is used only by private runs. Inside the
   * envelope, so encrypted to the task key and covered by the seller's signature over keccak256(wrappedKey).
   */
  privacy?: PrivacyTerms
}

/** Bytes of the plaintext of a data key envelope without privacy terms: abi.encode of five static words. */
const PLAIN_DATA_KEY_BYTES = 160
/** The data key envelope's fields before the privacy terms (docs/protocol.md "Data delivery"). */
const DATA_KEY_FIELDS = ['bytes32', 'bytes32', 'bytes32', 'uint64', 'uint64']

export function wrapDataKey (enclavePublicKey: BytesLike, taskId: string, sellerIndex: number, d: DataKeyDelivery): Uint8Array {
  if (d.key.length !== 32) throw new InvalidRequestError('data key must be 32 bytes')
  if (d.commitmentSalt.length !== COMMITMENT_SALT_BYTES) throw new InvalidRequestError(`commitment salt must be ${COMMITMENT_SALT_BYTES} bytes`)
  const fields = [d.key, d.commitment, d.commitmentSalt, d.size, d.outputCap ?? MAX_OUTPUT_CAP]
  const plain = d.privacy === undefined
    ? getBytes(abi.encode(DATA_KEY_FIELDS, fields))
    : getBytes(abi.encode([...DATA_KEY_FIELDS, 'bytes'], [...fields, encodePrivacyTerms(d.privacy)]))
  return eciesEncrypt(enclavePublicKey, plain, dataKeyEnvelopeContext(taskId, sellerIndex))
}

export interface OpenedDataKey { key: Uint8Array, commitment: string, commitmentSalt: Uint8Array, size: number, outputCap: bigint, privacy?: PrivacyTerms }

export function unwrapDataKey (taskPrivateKey: Uint8Array, taskId: string, sellerIndex: number, envelope: Uint8Array): OpenedDataKey {
  const plain = eciesDecrypt(taskPrivateKey, envelope, dataKeyEnvelopeContext(taskId, sellerIndex))
  let opened: OpenedDataKey
  let terms: Uint8Array | undefined
  try {
    // The plain format is exactly five words; anything longer must be the private format (a sixth field, bytes).
    const privateFormat = plain.length !== PLAIN_DATA_KEY_BYTES
    const [key, commitment, commitmentSalt, size, outputCap, privacy] = abi.decode(privateFormat ? [...DATA_KEY_FIELDS, 'bytes'] : DATA_KEY_FIELDS, plain)
    opened = { key: getBytes(key), commitment: String(commitment).toLowerCase(), commitmentSalt: getBytes(commitmentSalt), size: Number(size), outputCap }
    if (privateFormat) terms = getBytes(privacy)
  } catch {
    throw new EnvelopeError('data key envelope is not abi.encode(bytes32 key, bytes32 commitment, bytes32 commitmentSalt, uint64 size, uint64 outputCap[, bytes privacyTerms])')
  }
  if (terms !== undefined) opened.privacy = decodePrivacyTerms(terms)
  return opened
}

/** Bytes of the gas-used prefix of a result envelope's plaintext (uint64, big-endian). */
export const RESULT_GAS_BYTES = 8

/**
 * Encrypts a result to the buyer's one-time key, bound to the task and the result hash. The plaintext is the gas
 * the run used (RESULT_GAS_BYTES, big-endian) then the output: the gas goes to the buyer only, never to the chain
 * or the node's host. resultHash = resultHashOf(resultSalt, output).
 */
export function encryptResult (resultPublicKey: Uint8Array, taskId: string, resultSalt: string, output: Uint8Array, gasUsed: bigint): { envelope: Uint8Array, resultHash: string } {
  if (gasUsed < 0n || gasUsed >= 1n << 64n) throw new InvalidRequestError('gasUsed out of uint64 range')
  const resultHash = resultHashOf(resultSalt, output)
  const plain = new Uint8Array(RESULT_GAS_BYTES + output.length)
  new DataView(plain.buffer).setBigUint64(0, gasUsed)
  plain.set(output, RESULT_GAS_BYTES)
  return { envelope: eciesEncrypt(resultPublicKey, plain, resultEnvelopeContext(taskId, resultHash)), resultHash }
}

/**
 * The buyer's side of step 10: opens the encrypted result with its one-time result key and checks
 * it against the resultHash that DTMC finalised, with the trade's result salt. Returns the output and
 * the gas the run used. Throws ResultDecryptionError otherwise.
 */
export function openResult (encryptedResult: BytesLike, resultPrivateKey: BytesLike, expected: { taskId: string, resultHash: string, resultSalt: string }): { output: Uint8Array, gasUsed: bigint } {
  let plain: Uint8Array
  try {
    plain = eciesDecrypt(toBytes(resultPrivateKey, 'result key'), toBytes(encryptedResult, 'encrypted result'),
      resultEnvelopeContext(expected.taskId, expected.resultHash))
  } catch (err) {
    throw new ResultDecryptionError(`result does not decrypt for this task and result hash (${(err as Error).message})`)
  }
  if (plain.length < RESULT_GAS_BYTES) throw new ResultDecryptionError('result plaintext is shorter than its gas prefix')
  const output = plain.slice(RESULT_GAS_BYTES)
  if (resultHashOf(expected.resultSalt, output) !== expected.resultHash.toLowerCase()) throw new ResultDecryptionError('result does not match resultHash')
  return { output, gasUsed: new DataView(plain.buffer, plain.byteOffset).getBigUint64(0) }
}

function diagnosisDigestOf (taskId: string, json: Uint8Array): string {
  return keccak256(tagged(DIAGNOSIS_TAG, ['bytes32', 'bytes'], [taskId, json]))
}

/**
 * Why a run produced no output, for the buyer only (docs/enclave.md "Diagnosis"): which opcode was refused
 * at which position, the gas used, the output size over the cap, which sellers' input was refused. All of
 * it may depend on the data (the code can branch on it), so like the gas used of a result it goes neither
 * to the chain nor to the node's host: it is encrypted to the buyer's one-time result key, and signed
 * with the task key so that the buyer knows the enclave of the trade wrote it (ECIES alone does not say
 * who encrypted). Plaintext: JSON `{ diagnosis, signature }`.
 */
export function encryptDiagnosis (resultPublicKey: Uint8Array, taskId: string, diagnosis: RunDiagnosis, taskKey: SigningKey): Uint8Array {
  const json = toUtf8Bytes(JSON.stringify(diagnosis))
  const signature = signDigest(taskKey, diagnosisDigestOf(taskId, json))
  // Padded with spaces (JSON ignores them) to a multiple of DIAGNOSIS_PAD_BYTES: the envelope's length, which the
  // host sees, must not tell "CALL" from "SSTORE" or a short gas figure from a long one.
  const text = JSON.stringify({ diagnosis, signature })
  const plain = toUtf8Bytes(text.padEnd(Math.ceil(text.length / DIAGNOSIS_PAD_BYTES) * DIAGNOSIS_PAD_BYTES, ' '))
  return eciesEncrypt(resultPublicKey, plain, tagged(DIAGNOSIS_ENVELOPE_TAG, ['bytes32'], [taskId]))
}

/** The buyer's side: opens a diagnosis and checks that the task's enclave (its address in the quote, on DTMC) signed it. */
export function openDiagnosis (envelope: BytesLike, resultPrivateKey: BytesLike, expected: { taskId: string, enclaveAddress: string }): RunDiagnosis {
  const bytes = toBytes(envelope, 'diagnosis')
  if (bytes.length > MAX_DIAGNOSIS_SIZE + 1024) throw new ResultDecryptionError(`diagnosis over ${MAX_DIAGNOSIS_SIZE} bytes`)
  let parsed: { diagnosis: RunDiagnosis, signature: string }
  try {
    const plain = eciesDecrypt(toBytes(resultPrivateKey, 'result key'), bytes, tagged(DIAGNOSIS_ENVELOPE_TAG, ['bytes32'], [expected.taskId]))
    parsed = JSON.parse(new TextDecoder().decode(plain))
  } catch (err) {
    throw new ResultDecryptionError(`diagnosis does not open for this task (${(err as Error).message})`)
  }
  if (typeof parsed?.diagnosis !== 'object' || parsed.diagnosis === null || typeof parsed.signature !== 'string' || typeof parsed.diagnosis.status !== 'number') {
    throw new ResultDecryptionError('diagnosis is not { diagnosis, signature }')
  }
  let signer: string
  try {
    signer = recoverDigest(diagnosisDigestOf(expected.taskId, toUtf8Bytes(JSON.stringify(parsed.diagnosis))), parsed.signature)
  } catch (err) {
    throw new ResultDecryptionError(`diagnosis signature: ${(err as Error).message}`)
  }
  if (signer.toLowerCase() !== expected.enclaveAddress.toLowerCase()) throw new ResultDecryptionError('diagnosis is not signed by the task\'s enclave')
  return parsed.diagnosis
}

/** openResult's output only. */
export function decryptResult (encryptedResult: BytesLike, resultPrivateKey: BytesLike, expected: { taskId: string, resultHash: string, resultSalt: string }): Uint8Array {
  return openResult(encryptedResult, resultPrivateKey, expected).output
}

// ---- data chunks ----

function chunkIv (index: number): Uint8Array {
  const iv = new Uint8Array(IV_BYTES)
  iv.set(u32(index), 8)
  return iv
}

function chunkAad (commitment: Uint8Array, index: number, flags: number): Uint8Array {
  return concat(toUtf8Bytes(DATA_CHUNK_TAG), commitment, u32(index), Uint8Array.of(flags))
}

/** Encrypts one chunk of a dataset under its one-time data key. */
export function encryptChunk (key: Uint8Array, commitment: string, index: number, last: boolean, plaintext: Uint8Array): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) throw new InvalidRequestError('chunk index out of range')
  const flags = last ? LAST_FLAG : 0
  const header = concat(Uint8Array.of(ENVELOPE_VERSION, flags), u32(index))
  return concat(header, gcmSeal(key, chunkIv(index), plaintext, chunkAad(getBytes(commitment), index, flags)))
}

export interface ChunkHeader { index: number, last: boolean }

export function readChunkHeader (chunk: Uint8Array): ChunkHeader {
  if (chunk.length < CHUNK_HEADER_BYTES + TAG_BYTES || chunk[0] !== ENVELOPE_VERSION || (chunk[1] & ~LAST_FLAG) !== 0) {
    throw new ChunkAuthError('malformed data chunk')
  }
  return { index: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).readUInt32BE(2), last: (chunk[1] & LAST_FLAG) !== 0 }
}

/** Decrypts and authenticates one chunk; throws ChunkAuthError when anything about it was changed. */
export function decryptChunk (key: Uint8Array, commitment: string, chunk: Uint8Array): { index: number, last: boolean, plaintext: Uint8Array } {
  const { index, last } = readChunkHeader(chunk)
  const out = gcmOpen(key, chunkIv(index), chunk.subarray(CHUNK_HEADER_BYTES), chunkAad(getBytes(commitment), index, chunk[1]))
  if (out === undefined) throw new ChunkAuthError(`data chunk ${index} failed authentication`)
  return { index, last, plaintext: out }
}

/**
 * A dataset's commitment (bytes32 hex), published in CISC: SHA-256(salt ‖ plaintext), with a secret 32-byte salt of
 * the seller's that only the enclaves it delivers to learn (inside the wrapped data key). Unsalted, the public
 * commitment let anyone confirm a guess of a small or predictable dataset (test/attacks/commitment-guess.test.ts).
 */
export function datasetCommitment (data: Uint8Array, salt: Uint8Array): string {
  const h = commitmentHasher(salt)
  h.update(data)
  return h.digest()
}

/** An incremental commitment (datasetCommitment), for data that arrives or is read in parts. */
export function commitmentHasher (salt: Uint8Array): { update: (part: Uint8Array) => void, digest: () => string } {
  if (salt.length !== COMMITMENT_SALT_BYTES) throw new InvalidRequestError(`commitment salt must be ${COMMITMENT_SALT_BYTES} bytes`)
  const h = createHash('sha256').update(salt)
  return { update: (part) => { h.update(part) }, digest: () => '0x' + h.digest('hex') }
}

export interface EncryptedDataset {
  /** The one-time AES-256 data key (wrap it to the task key with wrapDataKey). */
  key: Uint8Array
  /** Encrypted chunks in order; the last one carries the last-chunk flag. */
  chunks: Uint8Array[]
  /** datasetCommitment(plaintext, commitmentSalt). */
  commitment: string
  /** The commitment's salt (given, or fresh). */
  commitmentSalt: Uint8Array
  size: number
}

/** Encrypts a whole dataset held in memory into chunks under a fresh one-time key. */
export function encryptDataset (data: Uint8Array, opts: { chunkSize?: number, key?: Uint8Array, commitmentSalt?: Uint8Array } = {}): EncryptedDataset {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) throw new InvalidRequestError(`chunkSize must be 1..${MAX_CHUNK_SIZE}`)
  const key = opts.key ?? randomBytes(32)
  const commitmentSalt = opts.commitmentSalt ?? randomBytes(COMMITMENT_SALT_BYTES)
  const commitment = datasetCommitment(data, commitmentSalt)
  const chunks: Uint8Array[] = []
  const count = Math.max(1, Math.ceil(data.length / chunkSize))
  for (let i = 0; i < count; i++) {
    chunks.push(encryptChunk(key, commitment, i, i === count - 1, data.subarray(i * chunkSize, (i + 1) * chunkSize)))
  }
  return { key, chunks, commitment, commitmentSalt, size: data.length }
}

/**
 * Streams a dataset into encrypted chunks (for data read from disk or a stream). The commitment
 * must be known beforehand (the seller computed it when it added the dataset). Holds at most one
 * chunk of lookahead, so it knows which chunk is the last.
 */
export async function * encryptChunks (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: { key: Uint8Array, commitment: string, chunkSize?: number }): AsyncGenerator<Uint8Array> {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) throw new InvalidRequestError(`chunkSize must be 1..${MAX_CHUNK_SIZE}`)
  let pending: Uint8Array = new Uint8Array(0)
  let ready: Uint8Array | undefined
  let index = 0
  for await (const part of source) {
    pending = pending.length === 0 ? part : concat(pending, part)
    while (pending.length >= chunkSize) {
      if (ready !== undefined) yield encryptChunk(opts.key, opts.commitment, index++, false, ready)
      ready = pending.subarray(0, chunkSize)
      pending = pending.subarray(chunkSize)
    }
  }
  if (pending.length > 0) {
    if (ready !== undefined) yield encryptChunk(opts.key, opts.commitment, index++, false, ready)
    ready = pending
  }
  yield encryptChunk(opts.key, opts.commitment, index, true, ready ?? new Uint8Array(0))
}

// ---- sealing ----

/** seal key = HKDF-SHA256(platform secret, salt = measurement, info = "SDTE.Seal.v1"). */
export function deriveSealKey (platformSecret: Uint8Array, measurement: string): Uint8Array {
  return hkdf(sha256, platformSecret, getBytes(measurement), toUtf8Bytes(SEAL_INFO), 32)
}

/** Sealed blob: version u8 ‖ iv (12) ‖ AES-256-GCM(seal key, plaintext, AAD = slot name) ‖ tag. */
export function sealBlob (sealKey: Uint8Array, slot: string, plaintext: Uint8Array): Uint8Array {
  const iv = randomBytes(IV_BYTES)
  return concat(Uint8Array.of(SEALED_BLOB_VERSION), iv, gcmSeal(sealKey, iv, plaintext, toUtf8Bytes(slot)))
}

/** Unseals a blob sealed for the same slot by the same enclave build on the same platform. */
export function unsealBlob (sealKey: Uint8Array, slot: string, blob: Uint8Array): Uint8Array {
  if (blob.length < 1 + IV_BYTES + TAG_BYTES || blob[0] !== SEALED_BLOB_VERSION) throw new UnsealError(`sealed blob ${slot} is malformed`)
  const out = gcmOpen(sealKey, blob.subarray(1, 1 + IV_BYTES), blob.subarray(1 + IV_BYTES), toUtf8Bytes(slot))
  if (out === undefined) throw new UnsealError(`sealed blob ${slot} does not unseal in this enclave`)
  return out
}

// ---- seller signatures on the data stream (issue 10, properties 1 and 6) ----

/** The seller's signature over its data-key delivery to a task (dataKeyDigestOf): names the delivering account. */
export function signDataKeyDelivery (sellerKey: string | SigningKey, domain: NetworkDomain, taskId: string, sellerIndex: number, commitment: string, wrappedKey: Uint8Array): string {
  return signDigest(sellerKey, dataKeyDigestOf(domain, taskId, sellerIndex, commitment, keccak256(wrappedKey)))
}

/**
 * A chunk as it travels on the data stream: the seller's signature (chunkDigestOf) ‖ the encrypted chunk. `wrappedKey`
 * is the one of the delivery the chunk is sent in (the one signDataKeyDelivery signed).
 */
export function signChunk (sellerKey: string | SigningKey, domain: NetworkDomain, taskId: string, sellerIndex: number, wrappedKey: Uint8Array, chunk: Uint8Array): Uint8Array {
  return concat(getBytes(signDigest(sellerKey, chunkDigestOf(domain, taskId, sellerIndex, keccak256(wrappedKey), chunkHashOf(chunk)))), chunk)
}

/** Splits a signed chunk frame; a frame too short to hold a signature is refused. */
export function splitSignedChunk (frame: Uint8Array): { signature: string, chunk: Uint8Array } {
  if (frame.length <= SELLER_SIGNATURE_BYTES) throw new ChunkAuthError('chunk frame without a seller signature')
  return { signature: hexlify(frame.subarray(0, SELLER_SIGNATURE_BYTES)), chunk: frame.subarray(SELLER_SIGNATURE_BYTES) }
}

/** The seller's acknowledgement of a delivery receipt (receiptAckDigestOf over the receipt's digest). */
export function signReceiptAck (sellerKey: string | SigningKey, domain: NetworkDomain, r: { tradeId: string, taskId: string, sellerIndex: number, commitment: string, seller: string }): string {
  return signDigest(sellerKey, receiptAckDigestOf(receiptDigestOf(domain, r.tradeId, r.taskId, r.sellerIndex, r.commitment, r.seller)))
}
