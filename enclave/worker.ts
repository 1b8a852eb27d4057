// The enclave worker (simulation mode): a worker_threads thread that holds every secret of the
// enclave — the seal key, each task's key pair, the buyer's code and result key, the sellers' data
// keys and plaintext, plaintext results — and talks to the host only through enclave/messages.ts.
// Its persistent state goes out sealed, through "ocalls" to the host's SealedBlobStore.
//
// Store layout: everything under `enclave/<measurement without 0x>/`, so that two builds on one
// machine (an upgrade) keep apart; every blob is sealed to (platform secret, measurement, its key)
// except chunks, which are the seller's AES-GCM ciphertext, authenticated by the sealed data key:
//   index                       { tasks: taskId[] }
//   task/<taskId>               { tradeId, codeHash, privateKey }
//   code/<taskId>               { code, resultPublicKey, gasCap, outputCap, resultSalt, envelopeHash }
//   data/<taskId>/<seller>      { key, commitment, commitmentSalt, size, outputCap, nextChunk, received, complete, invalid?, seller, receipt?, acked, privacy? }
//   chunk/<taskId>/<seller>/<n> the n-th chunk as the seller sent it
//   result/<taskId>             the execute response (signed result info, encrypted result)
import { parentPort, workerData } from 'node:worker_threads'
import type { NetworkDomain } from '../contracts/formats.ts'
// ethers' parts rather than its root, here and in the files this thread imports: the root also loads its providers,
// wallets and ws, which the enclave never uses (about 90 modules fewer at the worker's boot).
import { SigningKey, keccak256 } from 'ethers/crypto'
import { computeAddress } from 'ethers/transaction'
import { getBytes, hexlify } from 'ethers/utils'
import {
  chunkDigestOf, chunkHashOf, codeAuthDigestOf, dataKeyDigestOf, inputHashOf, networkDomainKey, quoteDigestOf, receiptAckDigestOf, receiptDigestOf, recoverDigest,
  reportDataOf, resultDigestOf, resultHashOf, ResultStatus, signDigest, taskIdOf, tradeIdOf
} from '../contracts/formats.ts'
import type { ResultInfo } from '../contracts/formats.ts'
import {
  DEFAULT_GAS_CAP, MAX_CODE_SIZE, MAX_DATASET_SIZE, MAX_ENVELOPE_SIZE, MAX_GAS_CAP,
  MAX_DIAGNOSIS_ERROR, MAX_OUTPUT_CAP, MAX_SELLERS, MAX_TASKS, MAX_TOTAL_INPUT_SIZE, MAX_CHUNK_SIZE, SELLER_SIGNATURE_BYTES
} from './constants.ts'
import {
  CHUNK_HEADER_BYTES, commitmentHasher, decryptChunk, deriveSealKey, encryptDiagnosis, encryptResult, generateKeyPair, openCodeEnvelope,
  readChunkHeader, sealBlob, splitSignedChunk, unsealBlob, unwrapDataKey
} from './crypto.ts'
import {
  CapMismatchError, ChunkAuthError, ChunkNotFromSellerError, ChunkOrderError, CodeAuthorizationError, DataKeyAuthorizationError, ReceiptAckError, CodeHashMismatchError, CommitmentMismatchError, EnclaveError,
  InvalidRequestError, PrivacyMismatchError, TaskStateError, TruncatedDataError, UnknownTaskError, UnsealError, serializeError
} from './errors.ts'
import type { RunOutcome } from './evm.ts'
import { prewarmRunThread, runBudgetOf, runBudgetPolicy, runInThread } from './runs.ts'
import { computeMeasurement } from './measurement.ts'
import { deriveNoiseKey } from './private.ts'
import { privacyTermsFromJson, privacyTermsJson } from './privacy-terms.ts'
import type {
  AckReceiptRequest, AttestRequest, AttestResponse, DataChunkRequest, DeliverCodeRequest, ExecuteRequest, ExecuteResponse, HostMessage, OpenDataRequest,
  PrivacyTerms, Request, RunBudgetPolicy, RunDiagnosis, RunJob, RunPrivacy, SellerDataStatus, TaskSummary, WorkerInit, WorkerMessage
} from './messages.ts'

if (parentPort === null) throw new Error('enclave/worker.ts must run as a worker thread')
const port = parentPort

function send (msg: WorkerMessage, transfer: ArrayBuffer[] = []): void { port.postMessage(msg, transfer) }

// ---- ocalls: the host's store ----

let nextOcall = 1
const pendingOcalls = new Map<number, { resolve: (b: Uint8Array | undefined) => void, reject: (e: Error) => void }>()

function ocall (op: 'get' | 'put' | 'delete', key: string, blob?: Uint8Array): Promise<Uint8Array | undefined> {
  const id = nextOcall++
  return new Promise((resolve, reject) => {
    pendingOcalls.set(id, { resolve, reject })
    send({ kind: 'ocall', id, op, key, blob })
  })
}

// ---- sealed JSON ----

let sealKey: Uint8Array
const enc = new TextEncoder()
const dec = new TextDecoder()

async function putSealed (key: string, value: unknown): Promise<void> {
  await ocall('put', key, sealBlob(sealKey, key, enc.encode(JSON.stringify(value))))
}

async function getSealed<T> (key: string): Promise<T | undefined> {
  const blob = await ocall('get', key)
  if (blob === undefined) return undefined
  return JSON.parse(dec.decode(unsealBlob(sealKey, key, blob))) as T
}

// ---- state ----

interface CodeState { code: Uint8Array, resultPublicKey: Uint8Array, gasCap: bigint, outputCap: bigint, resultSalt: string, envelopeHash: string }
interface SellerSlot {
  key: Uint8Array
  commitment: string
  size: number
  outputCap: bigint
  nextChunk: number
  received: number
  complete: boolean
  /** Set only when the seller is at fault: bytes it signed failed GCM, the size or the commitment. */
  invalid?: string
  /** The account that signed the data-key delivery (lowercase): chunks must be signed by it, and only it acknowledges the receipt. */
  seller: string
  /** keccak256 of the wrapped key of the delivery now open: chunk signatures are bound to it (not sealed: set by each openData). */
  wrappedKeyHash?: string
  /** The delivery receipt (receiptDigestOf, signed with the task key) once the data matched its commitment. */
  receipt?: string
  /** Whether the seller acknowledged the receipt: the task runs only when every complete delivery is acknowledged. */
  acked: boolean
  /** The seller's commitment salt (from its wrapped key): commitment = SHA-256(salt ‖ plaintext). */
  commitmentSalt: Uint8Array
  /** Running commitment hash of the plaintext; rebuilt from the stored chunks after a restart. */
  hasher?: ReturnType<typeof commitmentHasher>
  /** The seller's privacy terms, when its wrapped key carried them: the task then runs only in the private mode. */
  privacy?: PrivacyTerms
}
interface Task {
  taskId: string
  tradeId: string
  codeHash: string
  signingKey: SigningKey
  privateKey: Uint8Array
  address: string
  publicKey: string
  /**
   * The deployment (chain id, DTMC) the task was attested for, sealed with it: its quote, the buyer's code
   * authorization and its result signature are all over this domain, so a host cannot move a task to
   * another deployment (the buyer's signature would fail).
   */
  domain: NetworkDomain
  code?: CodeState
  sellers: Map<number, SellerSlot>
  result?: ExecuteResponse
}

const tasks = new Map<string, Task>()
let measurement = ''
let attestationKey: SigningKey
/** The node's account (WorkerInit.operator), in every quote. */
let operator: string
/** Test-only fault switch (WorkerInit.faultWrongResult). */
let faultWrongResult = false
/** The deployment the host started this enclave for (WorkerInit.domain); new tasks take it. */
let domain: NetworkDomain
/** How runs' budgets follow from their gas caps (WorkerInit.runBudget). */
let runBudget: RunBudgetPolicy

let prefix = 'enclave/'
const K = {
  index: () => `${prefix}index`,
  task: (t: string) => `${prefix}task/${t}`,
  code: (t: string) => `${prefix}code/${t}`,
  data: (t: string, s: number) => `${prefix}data/${t}/${s}`,
  chunk: (t: string, s: number, n: number) => `${prefix}chunk/${t}/${s}/${n}`,
  result: (t: string) => `${prefix}result/${t}`
}

// ---- validation ----

const HEX32 = /^0x[0-9a-fA-F]{64}$/
function bytes32 (v: unknown, what: string): string {
  if (typeof v !== 'string' || !HEX32.test(v)) throw new InvalidRequestError(`${what} must be 32 bytes of 0x hex`)
  return v.toLowerCase()
}
function hexParam (v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^0x([0-9a-fA-F]{2}){1,1024}$/.test(v)) throw new InvalidRequestError(`${what} must be 0x hex`)
  return v.toLowerCase()
}
function sellerIndexOf (v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= MAX_SELLERS) throw new InvalidRequestError(`sellerIndex must be an integer 0..${MAX_SELLERS - 1}`)
  return v
}
function bytesParam (v: unknown, what: string, max: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new InvalidRequestError(`${what} must be bytes`)
  if (v.length > max) throw new InvalidRequestError(`${what} is over ${max} bytes`)
  return v
}
function taskOf (taskId: unknown): Task {
  const t = tasks.get(bytes32(taskId, 'taskId'))
  if (t === undefined) throw new UnknownTaskError(`no task ${String(taskId)}`)
  return t
}

// ---- persistence helpers ----

async function saveIndex (): Promise<void> { await putSealed(K.index(), { tasks: [...tasks.keys()] }) }

function slotJson (s: SellerSlot): Record<string, unknown> {
  return {
    key: hexlify(s.key), commitment: s.commitment, commitmentSalt: hexlify(s.commitmentSalt), size: s.size, outputCap: String(s.outputCap), nextChunk: s.nextChunk, received: s.received, complete: s.complete, invalid: s.invalid,
    seller: s.seller, receipt: s.receipt, acked: s.acked, privacy: s.privacy === undefined ? undefined : privacyTermsJson(s.privacy)
  }
}

async function saveSlot (t: Task, index: number, s: SellerSlot): Promise<void> { await putSealed(K.data(t.taskId, index), slotJson(s)) }

function resultJson (r: ExecuteResponse): Record<string, unknown> {
  return {
    ...r,
    resultInfo: { ...r.resultInfo, resultSize: String(r.resultInfo.resultSize) },
    encryptedResult: hexlify(r.encryptedResult),
    encryptedDiagnosis: hexlify(r.encryptedDiagnosis),
    gasCap: String(r.gasCap),
    outputCap: String(r.outputCap)
  }
}

function resultFromJson (j: any): ExecuteResponse {
  return {
    ...j,
    resultInfo: { ...j.resultInfo, resultSize: BigInt(j.resultInfo.resultSize) },
    encryptedResult: getBytes(j.encryptedResult),
    // A result sealed by a build before diagnoses has none.
    encryptedDiagnosis: getBytes(j.encryptedDiagnosis ?? '0x'),
    gasCap: BigInt(j.gasCap),
    outputCap: BigInt(j.outputCap)
  }
}

function newTask (tradeId: string, codeHash: string, privateKey: Uint8Array, taskDomain: NetworkDomain): Task {
  const signingKey = new SigningKey(privateKey)
  const address = computeAddress(signingKey.publicKey).toLowerCase()
  return {
    taskId: taskIdOf(tradeId, codeHash, address),
    tradeId,
    codeHash,
    signingKey,
    privateKey,
    address,
    publicKey: signingKey.compressedPublicKey.toLowerCase(),
    domain: taskDomain,
    sellers: new Map()
  }
}

/**
 * Rebuilds a partly delivered slot from its stored chunks: the running hash, the next chunk index
 * and the byte count (the sealed slot notes progress only now and then; the chunks are the truth).
 */
async function rehash (t: Task, index: number, s: SellerSlot): Promise<void> {
  const h = commitmentHasher(s.commitmentSalt)
  let n = 0
  let received = 0
  for (;;) {
    const chunk = await ocall('get', K.chunk(t.taskId, index, n))
    if (chunk === undefined) break
    const { plaintext, last } = decryptChunk(s.key, s.commitment, chunk)
    if (last || received + plaintext.length > s.size) break
    h.update(plaintext)
    received += plaintext.length
    n++
  }
  s.hasher = h
  s.nextChunk = n
  s.received = received
}

/** Loads every task from sealed state (after a restart). A task that does not unseal is skipped. */
async function loadSealedState (): Promise<void> {
  const index = await getSealed<{ tasks: string[] }>(K.index())
  for (const taskId of index?.tasks ?? []) {
    try {
      const tj = await getSealed<{ tradeId: string, codeHash: string, privateKey: string, chainId: string, dtmc: string }>(K.task(taskId))
      if (tj === undefined) continue
      const t = newTask(tj.tradeId, tj.codeHash, getBytes(tj.privateKey), { chainId: BigInt(tj.chainId), verifyingContract: tj.dtmc })
      if (t.taskId !== taskId) continue
      const cj = await getSealed<{ code: string, resultPublicKey: string, gasCap: string, outputCap: string, resultSalt: string, envelopeHash: string }>(K.code(taskId))
      if (cj !== undefined) t.code = { code: getBytes(cj.code), resultPublicKey: getBytes(cj.resultPublicKey), gasCap: BigInt(cj.gasCap), outputCap: BigInt(cj.outputCap), resultSalt: cj.resultSalt, envelopeHash: cj.envelopeHash }
      for (let i = 0; i < MAX_SELLERS; i++) {
        const sj = await getSealed<any>(K.data(taskId, i))
        if (sj === undefined) continue
        const s: SellerSlot = {
          key: getBytes(sj.key), commitment: sj.commitment, commitmentSalt: getBytes(sj.commitmentSalt), size: sj.size, outputCap: BigInt(sj.outputCap), nextChunk: sj.nextChunk, received: sj.received, complete: sj.complete, invalid: sj.invalid,
          seller: sj.seller, receipt: sj.receipt, acked: sj.acked === true
        }
        if (sj.privacy !== undefined) s.privacy = privacyTermsFromJson(sj.privacy)
        if (!s.complete && s.invalid === undefined) await rehash(t, i, s)
        t.sellers.set(i, s)
      }
      const rj = await getSealed<any>(K.result(taskId))
      if (rj !== undefined) t.result = resultFromJson(rj)
      tasks.set(taskId, t)
    } catch (err) {
      if (!(err instanceof UnsealError)) throw err
      // Sealed by another build or platform, or damaged: this enclave cannot use it.
    }
  }
}

function slotStatus (index: number, s: SellerSlot): SellerDataStatus {
  const st: SellerDataStatus = { sellerIndex: index, commitment: s.commitment, size: s.size, nextChunk: s.nextChunk, received: s.received, complete: s.complete, seller: s.seller, acked: s.acked }
  if (s.invalid !== undefined) st.invalid = s.invalid
  if (s.receipt !== undefined) st.receipt = s.receipt
  if (s.privacy !== undefined) st.private = true
  return st
}

function summary (t: Task): TaskSummary {
  return {
    taskId: t.taskId,
    tradeId: t.tradeId,
    codeHash: t.codeHash,
    enclaveAddress: t.address,
    enclavePublicKey: t.publicKey,
    hasCode: t.code !== undefined,
    sellers: [...t.sellers.entries()].sort((a, b) => a[0] - b[0]).map(([i, s]) => slotStatus(i, s)),
    executed: t.result !== undefined
  }
}

// ---- step 4: attestation ----

async function attest (p: AttestRequest): Promise<AttestResponse> {
  const tradeId = bytes32(p.tradeId, 'tradeId')
  const codeHash = bytes32(p.codeHash, 'codeHash')
  const nonce = bytes32(p.nonce, 'nonce')
  // One task per (trade, code) in this enclave: the seller's attestation (step 7) gets a fresh
  // quote over the same task key the buyer attested.
  const here = networkDomainKey(domain)
  let t = [...tasks.values()].find(x => x.tradeId === tradeId && x.codeHash === codeHash && networkDomainKey(x.domain) === here)
  if (t === undefined) {
    if (tasks.size >= MAX_TASKS) throw new TaskStateError(`enclave holds ${MAX_TASKS} tasks already`)
    t = newTask(tradeId, codeHash, generateKeyPair().privateKey, domain)
    await putSealed(K.task(t.taskId), { tradeId, codeHash, privateKey: hexlify(t.privateKey), chainId: domain.chainId.toString(), dtmc: domain.verifyingContract })
    tasks.set(t.taskId, t)
    try {
      await saveIndex()
    } catch (err) {
      // Not in the sealed index, the task would be lost at the next restart: do not hand it out.
      tasks.delete(t.taskId)
      throw err
    }
  }
  // The run's thread can start loading now, a second or so before the code arrives: its heap limit is the budget of
  // the default gas cap (what most trades keep); the code delivery starts another if the trade's cap differs.
  if (t.code === undefined) prewarmRunThread(runBudgetOf(DEFAULT_GAS_CAP, runBudget))
  const reportData = reportDataOf(t.address, t.taskId, tradeId, codeHash, nonce, operator)
  const signature = signDigest(attestationKey, quoteDigestOf(t.domain, measurement, reportData))
  return {
    quote: { measurement, enclaveAddress: t.address, taskId: t.taskId, nonce, signature },
    enclavePublicKey: t.publicKey,
    taskId: t.taskId
  }
}

// ---- step 4: code delivery ----

async function deliverCode (p: DeliverCodeRequest): Promise<{ taskId: string }> {
  const t = taskOf(p.taskId)
  if (t.result !== undefined) throw new TaskStateError('task already executed')
  const envelope = bytesParam(p.envelope, 'envelope', MAX_ENVELOPE_SIZE)
  const envelopeHash = keccak256(envelope)
  // Only the trade's buyer may give the task its code (and so the key the result is encrypted to):
  // the trade id is keccak(buyer, salt), and the buyer signs this envelope for this task.
  let signer: string
  try {
    signer = recoverDigest(codeAuthDigestOf(t.domain, t.taskId, envelopeHash), hexParam(p.signature, 'signature'))
  } catch (err) {
    throw new CodeAuthorizationError(`code delivery signature: ${(err as Error).message}`)
  }
  if (tradeIdOf(signer, bytes32(p.salt, 'salt')) !== t.tradeId) throw new CodeAuthorizationError('the code delivery is not signed by the buyer of this trade')
  if (t.code !== undefined) {
    // The first authorized delivery stands; the same one again is a harmless retry.
    if (t.code.envelopeHash === envelopeHash) return { taskId: t.taskId }
    throw new TaskStateError('code already delivered')
  }
  const opened = openCodeEnvelope(t.privateKey, t.taskId, envelope)
  if (opened.code.length === 0 || opened.code.length > MAX_CODE_SIZE) throw new InvalidRequestError(`code must be 1..${MAX_CODE_SIZE} bytes`)
  if (keccak256(opened.code) !== t.codeHash) throw new CodeHashMismatchError('code does not hash to the task codeHash')
  if (opened.gasCap === 0n || opened.gasCap > MAX_GAS_CAP) throw new InvalidRequestError(`gasCap must be 1..${MAX_GAS_CAP}`)
  if (opened.outputCap > MAX_OUTPUT_CAP) throw new InvalidRequestError(`outputCap must be at most ${MAX_OUTPUT_CAP}`)
  await putSealed(K.code(t.taskId), { code: hexlify(opened.code), resultPublicKey: hexlify(opened.resultPublicKey), gasCap: String(opened.gasCap), outputCap: String(opened.outputCap), resultSalt: opened.resultSalt, envelopeHash })
  t.code = { ...opened, envelopeHash }
  // The run's budget is known from here on: its thread loads while the data arrives.
  prewarmRunThread(runBudgetOf(opened.gasCap, runBudget))
  return { taskId: t.taskId }
}

// ---- step 7: data delivery ----

async function deleteChunks (t: Task, index: number, upTo: number): Promise<void> {
  for (let n = 0; n < upTo; n++) await ocall('delete', K.chunk(t.taskId, index, n))
}

async function openData (p: OpenDataRequest): Promise<SellerDataStatus> {
  const t = taskOf(p.taskId)
  if (t.result !== undefined) throw new TaskStateError('task already executed')
  const index = sellerIndexOf(p.sellerIndex)
  const commitment = bytes32(p.commitment, 'commitment')
  const wrapped = bytesParam(p.wrappedKey, 'wrappedKey', 4096)
  // The account that hands over the data key is the seller this delivery is from: the one whose signatures
  // the chunks must carry and who alone acknowledges the receipt. It comes from the seller's signature, not
  // from the host or the buyer, who cannot sign for the seller's account.
  let seller: string
  try {
    seller = recoverDigest(dataKeyDigestOf(t.domain, t.taskId, index, commitment, keccak256(wrapped)), hexParam(p.sellerSignature, 'sellerSignature')).toLowerCase()
  } catch (err) {
    throw new DataKeyAuthorizationError(`data-key delivery signature: ${(err as Error).message}`)
  }
  const d = unwrapDataKey(t.privateKey, t.taskId, index, wrapped)
  if (d.commitment !== commitment) throw new CommitmentMismatchError('wrapped commitment differs from the announced one')
  if (d.size > MAX_DATASET_SIZE) throw new InvalidRequestError(`dataset over ${MAX_DATASET_SIZE} bytes`)
  const old = t.sellers.get(index)
  // The same delivery again (after a restart of either side): continue where it stopped.
  const sameTerms = JSON.stringify(old?.privacy === undefined ? null : privacyTermsJson(old.privacy)) === JSON.stringify(d.privacy === undefined ? null : privacyTermsJson(d.privacy))
  if (old !== undefined && old.invalid === undefined && hexlify(old.key) === hexlify(d.key) && old.commitment === commitment && hexlify(old.commitmentSalt) === hexlify(d.commitmentSalt) && old.seller === seller && sameTerms) {
    old.wrappedKeyHash = keccak256(wrapped)
    return slotStatus(index, old)
  }
  // A delivery the seller acknowledged is final: the task may already count on it.
  if (old?.acked === true) throw new TaskStateError(`the delivery of seller ${index} is complete and acknowledged`)
  if (old !== undefined) await deleteChunks(t, index, old.nextChunk)
  const s: SellerSlot = { key: d.key, commitment, commitmentSalt: d.commitmentSalt, size: d.size, outputCap: d.outputCap, nextChunk: 0, received: 0, complete: false, seller, acked: false, wrappedKeyHash: keccak256(wrapped), hasher: commitmentHasher(d.commitmentSalt) }
  if (d.privacy !== undefined) s.privacy = d.privacy
  t.sellers.set(index, s)
  await saveSlot(t, index, s)
  return slotStatus(index, s)
}

async function refuse (t: Task, index: number, s: SellerSlot, err: EnclaveError): Promise<never> {
  s.invalid = `${err.name}: ${err.message}`
  s.hasher = undefined
  await saveSlot(t, index, s)
  throw err
}

async function dataChunk (p: DataChunkRequest): Promise<SellerDataStatus> {
  const t = taskOf(p.taskId)
  const index = sellerIndexOf(p.sellerIndex)
  const s = t.sellers.get(index)
  if (s === undefined) throw new TaskStateError(`no data delivery open for seller ${index}`)
  if (s.invalid !== undefined) throw new TaskStateError(`delivery of seller ${index} was refused (${s.invalid}); open it again`)
  const frame = bytesParam(p.chunk, 'chunk', SELLER_SIGNATURE_BYTES + MAX_CHUNK_SIZE + CHUNK_HEADER_BYTES + 16)
  // Blame (issue 10, property 6): bytes the seller did not sign were changed after it sent them, by the host
  // or on the way. That is not the seller's fault: the chunk is dropped, the delivery stays where it was (the
  // seller can resume it) and this node gets no result until it passes the seller's bytes on unchanged.
  const { signature, chunk } = splitSignedChunk(frame)
  if (s.wrappedKeyHash === undefined) throw new TaskStateError(`the delivery of seller ${index} must be opened again (after a restart)`)
  let signer: string
  try {
    signer = recoverDigest(chunkDigestOf(t.domain, t.taskId, index, s.wrappedKeyHash, chunkHashOf(chunk)), signature).toLowerCase()
  } catch (err) {
    throw new ChunkNotFromSellerError(`chunk signature: ${(err as Error).message}`)
  }
  if (signer !== s.seller) throw new ChunkNotFromSellerError(`chunk of seller ${index} is not signed by the account that delivered its key`)
  // From here on the bytes are the seller's own: whatever fails about them is the seller's fault.
  let header
  try { header = readChunkHeader(chunk) } catch (err) { return await refuse(t, index, s, err as EnclaveError) }
  if (s.complete || header.index < s.nextChunk) return slotStatus(index, s) // a chunk we already hold
  // A gap: the host dropped chunks (each is signed on its own). Not the seller's fault; it resumes.
  if (header.index > s.nextChunk) throw new ChunkOrderError(`expected chunk ${s.nextChunk}, got ${header.index}`)
  let plain: Uint8Array
  try { plain = decryptChunk(s.key, s.commitment, chunk).plaintext } catch (err) {
    if (err instanceof ChunkAuthError) return await refuse(t, index, s, err)
    throw err
  }
  if (s.received + plain.length > s.size) return await refuse(t, index, s, new CommitmentMismatchError('more data than the declared size'))
  await ocall('put', K.chunk(t.taskId, index, header.index), chunk)
  s.hasher!.update(plain)
  s.received += plain.length
  s.nextChunk++
  if (header.last) {
    const digest = s.hasher!.digest()
    s.hasher = undefined
    if (s.received !== s.size) return await refuse(t, index, s, new CommitmentMismatchError(`data is ${s.received} bytes, ${s.size} declared`))
    if (digest !== s.commitment) return await refuse(t, index, s, new CommitmentMismatchError('data does not match its commitment'))
    s.complete = true
    // The delivery receipt (issue 10, property 1): this enclave verified the seller's whole dataset. The seller
    // claims its data fee with it on DTMC if the trade does not pay it; the task runs only once it is acknowledged.
    s.receipt = signDigest(t.signingKey, receiptDigestOf(t.domain, t.tradeId, t.taskId, index, s.commitment, s.seller))
    await saveSlot(t, index, s)
    // Again here, in case the thread started at code delivery was ended while a long delivery went on.
    if (t.code !== undefined) prewarmRunThread(runBudgetOf(t.code.gasCap, runBudget))
  } else if (s.nextChunk % 64 === 0) {
    // Progress note for `tasks()` after a restart; the chunks themselves are what count.
    await saveSlot(t, index, s)
  }
  return slotStatus(index, s)
}

async function closeData (p: { taskId: string, sellerIndex: number }): Promise<SellerDataStatus> {
  const t = taskOf(p.taskId)
  const index = sellerIndexOf(p.sellerIndex)
  const s = t.sellers.get(index)
  if (s === undefined) throw new TaskStateError(`no data delivery open for seller ${index}`)
  if (s.invalid !== undefined) throw new TaskStateError(`delivery of seller ${index} was refused (${s.invalid})`)
  // The stream ended without the last chunk. The host can cut a stream, so this blames nobody: the
  // delivery stays where it was and continues when the seller delivers again.
  if (!s.complete) throw new TruncatedDataError(`data ended after chunk ${s.nextChunk - 1} without its last chunk`)
  return slotStatus(index, s)
}

/** The seller acknowledges its delivery receipt with the account that delivered the data key. */
async function ackReceipt (p: AckReceiptRequest): Promise<SellerDataStatus> {
  const t = taskOf(p.taskId)
  const index = sellerIndexOf(p.sellerIndex)
  const s = t.sellers.get(index)
  if (s?.receipt === undefined) throw new ReceiptAckError(`no delivery receipt for seller ${index}`)
  if (s.acked) return slotStatus(index, s)
  let signer: string
  try {
    signer = recoverDigest(receiptAckDigestOf(receiptDigestOf(t.domain, t.tradeId, t.taskId, index, s.commitment, s.seller)), hexParam(p.signature, 'signature')).toLowerCase()
  } catch (err) {
    throw new ReceiptAckError(`acknowledgement signature: ${(err as Error).message}`)
  }
  if (signer !== s.seller) throw new ReceiptAckError(`the acknowledgement is not signed by the seller that delivered the data of seller ${index}`)
  s.acked = true
  await saveSlot(t, index, s)
  return slotStatus(index, s)
}

// ---- step 8: execution ----

function minCap (...caps: bigint[]): bigint {
  return caps.reduce((a, b) => (b < a ? b : a))
}

interface RunPlan {
  t: Task
  inputHash: string
  gasCap: bigint
  outputCap: bigint
  inputSize: number
  /** Decided without running (an invalid input); otherwise the run's job. */
  decided?: { status: number, reason: string, invalidSellers?: RunDiagnosis['invalidSellers'], inputSize?: number }
  job?: RunJob
}

/** The part of an execute request that reads and checks the task's state: in the request queue. */
async function prepareRun (p: ExecuteRequest): Promise<RunPlan | ExecuteResponse> {
  const t = taskOf(p.taskId)
  if (t.code === undefined) throw new TaskStateError(t.result === undefined ? 'no code delivered' : 'the task\'s code is gone')
  if (p.gasCap !== undefined && (typeof p.gasCap !== 'bigint' || p.gasCap <= 0n)) throw new InvalidRequestError('gasCap must be a positive bigint')
  if (p.outputCap !== undefined && (typeof p.outputCap !== 'bigint' || p.outputCap < 0n)) throw new InvalidRequestError('outputCap must be a non-negative bigint')
  let count = p.sellerCount
  if (count === undefined) count = t.sellers.size
  if (!Number.isInteger(count) || count < 0 || count > MAX_SELLERS) throw new InvalidRequestError(`sellerCount must be 0..${MAX_SELLERS}`)
  const slots: SellerSlot[] = []
  for (let i = 0; i < count; i++) {
    const s = t.sellers.get(i)
    if (s === undefined || (!s.complete && s.invalid === undefined)) throw new TaskStateError(`data of seller ${i} is not complete`)
    // Nothing runs (and nothing reaches the host) before every seller whose data is in holds its receipt:
    // a host that withholds the receipt gets no result (issue 10, property 1).
    if (s.complete && !s.acked) throw new TaskStateError(`seller ${i} has not acknowledged its delivery receipt`)
    slots.push(s)
  }
  const inputHash = inputHashOf(slots.map(s => s.commitment))
  // Every input of the run is the same on every honest node: the gas cap is exactly the buyer's (the trade's, on
  // DTMC), whose GAS opcode reads then agree; a host that asks for another cap (its own smaller maxGas) gets a
  // refusal, never a run that would land its node in another result group.
  const gasCap = t.code.gasCap
  if (p.gasCap !== undefined && p.gasCap !== gasCap) throw new CapMismatchError(`the trade's gas cap is ${gasCap}, not ${p.gasCap}`)
  const outputCap = minCap(t.code.outputCap, ...slots.map(s => s.outputCap), MAX_OUTPUT_CAP)
  if (p.outputCap !== undefined && p.outputCap !== outputCap) throw new CapMismatchError(`the trade's output cap is ${outputCap}, not ${p.outputCap}`)
  const privacy = privateRunOf(t, slots, p.privacy)
  // A repeat gets the sealed run only after the same checks as the first: a host asking with another gas cap or
  // epsilon (the trade opened again with other terms after a reorganisation) gets a refusal, not a result of the
  // first terms to commit under the new ones.
  if (t.result !== undefined) return t.result
  const inputSize = slots.reduce((a, s) => a + s.size, 0)
  const plan: RunPlan = { t, inputHash, gasCap, outputCap, inputSize }
  if (slots.some(s => s.invalid !== undefined)) {
    // Which delivery was refused and why is no secret from the host: it carried the bytes and saw the refusal.
    const invalidSellers = slots.flatMap((s, index) => s.invalid === undefined ? [] : [{ index, account: s.seller, why: s.invalid }])
    plan.decided = { status: ResultStatus.InputInvalid, reason: 'input invalid: ' + invalidSellers.map(x => `seller ${x.index} (${x.account}): ${x.why}`).join('; '), invalidSellers }
  } else if (inputSize > MAX_TOTAL_INPUT_SIZE) {
    plan.decided = { status: ResultStatus.InputInvalid, reason: `input of ${inputSize} bytes over ${MAX_TOTAL_INPUT_SIZE}`, inputSize }
  } else {
    const inputs: Uint8Array[] = []
    for (let i = 0; i < slots.length; i++) inputs.push(await loadPlaintext(t, i, slots[i]))
    plan.job = { code: t.code.code, inputs, gasCap, outputCap }
    if (privacy !== undefined) plan.job.privacy = privacy
  }
  return plan
}

/**
 * Whether the run is private, and its noise key, budget and clamps if so (docs/enclave.md "Private mode"). The
 * sellers decide it: a run is private exactly when their deliveries carry privacy terms, and then all of them must;
 * the host only states the trade's epsilon it read on DTMC, which must be the run's: the smallest of the sellers'.
 */
function privateRunOf (t: Task, slots: SellerSlot[], asked: ExecuteRequest['privacy']): RunPrivacy | undefined {
  const terms = slots.map(s => s.privacy)
  const privateSlots = terms.filter(x => x !== undefined).length
  if (privateSlots === 0) {
    if (asked !== undefined) throw new PrivacyMismatchError('a private run was asked for, but no seller delivered privacy terms')
    return undefined
  }
  if (privateSlots !== slots.length) throw new PrivacyMismatchError(`${privateSlots} of ${slots.length} sellers delivered privacy terms: a private run needs all of them`)
  if (asked === undefined) throw new PrivacyMismatchError('the sellers delivered privacy terms: the data runs only in a private run (execute with privacy.epsilon)')
  let epsilon: bigint
  try {
    if (typeof asked !== 'object' || asked === null || (typeof asked.epsilon !== 'bigint' && typeof asked.epsilon !== 'string')) throw new TypeError('not a bigint or string')
    epsilon = BigInt(asked.epsilon)
  } catch {
    throw new InvalidRequestError('privacy.epsilon must be a bigint or a decimal string of micro-epsilon')
  }
  const run = terms.reduce((a, x) => (x!.epsilon < a ? x!.epsilon : a), terms[0]!.epsilon)
  if (epsilon !== run) throw new PrivacyMismatchError(`the run's epsilon is ${run} micro-epsilon (the sellers' terms), not ${epsilon}`)
  return {
    epsilon: run,
    noiseKey: deriveNoiseKey(terms.map(x => x!.secret), t.tradeId),
    sellers: terms.map(x => ({ skipHeader: x!.skipHeader, columns: x!.columns }))
  }
}

/** What the host hears of a run's end: the status in words, nothing that depends on the data. */
const HOST_REASON: Record<number, string> = {
  [ResultStatus.Ok]: 'ok',
  [ResultStatus.Reverted]: 'reverted',
  [ResultStatus.OutOfGas]: 'out of gas',
  [ResultStatus.Forbidden]: 'forbidden opcode',
  [ResultStatus.OutputOverCap]: 'output over the cap',
  [ResultStatus.InputInvalid]: 'input invalid',
  [ResultStatus.Internal]: 'internal error of the engine'
}

/** Signs and seals the outcome of a run that ended within its budget: in the request queue. */
async function finishRun (plan: RunPlan, outcome: RunOutcome | undefined): Promise<ExecuteResponse> {
  const t = plan.t
  // Dropped while it ran (its trade ended): nothing of it is kept.
  if (tasks.get(t.taskId) !== t) throw new UnknownTaskError(`task ${t.taskId} was dropped during its run`)
  if (t.result !== undefined) return t.result
  const code = t.code!
  let status: number
  let output: Uint8Array = new Uint8Array(0)
  let gasUsed = 0n
  let reason: string
  const diagnosis: RunDiagnosis = { status: 0, gasUsed: '0', gasCap: String(plan.gasCap), outputCap: String(plan.outputCap) }
  if (outcome === undefined) {
    status = plan.decided!.status
    reason = plan.decided!.reason
    if (plan.decided!.invalidSellers !== undefined) diagnosis.invalidSellers = plan.decided!.invalidSellers
    if (plan.decided!.inputSize !== undefined) diagnosis.inputSize = plan.decided!.inputSize
  } else {
    status = outcome.status
    output = outcome.output
    gasUsed = outcome.gasUsed
    // The host hears the status only: the outcome's own reason, opcode, position and sizes depend on the data.
    reason = HOST_REASON[status] ?? `status ${status}`
    diagnosis.gasUsed = String(gasUsed)
    if (outcome.opcode !== undefined) diagnosis.opcode = outcome.opcode
    if (outcome.pc !== undefined) diagnosis.pc = outcome.pc
    if (outcome.outputSize !== undefined) diagnosis.outputSize = outcome.outputSize
    if (status === ResultStatus.Reverted || status === ResultStatus.Internal) diagnosis.error = outcome.reason.slice(0, MAX_DIAGNOSIS_ERROR)
    if (faultWrongResult && status === ResultStatus.Ok && output.length > 0) {
      output = Uint8Array.from(output)
      output[output.length - 1] ^= 0xff
    }
  }
  // The gas used goes into the encrypted result only: on chain it would be a data-dependent channel.
  const { envelope, resultHash } = status === ResultStatus.Ok
    ? encryptResult(code.resultPublicKey, t.taskId, code.resultSalt, output, gasUsed)
    : { envelope: new Uint8Array(0), resultHash: resultHashOf(code.resultSalt, new Uint8Array(0)) }
  const resultInfo: ResultInfo = {
    tradeId: t.tradeId,
    taskId: t.taskId,
    inputHash: plan.inputHash,
    resultHash: resultHash.toLowerCase(),
    resultSize: status === ResultStatus.Ok ? BigInt(output.length) : 0n,
    status
  }
  const signature = signDigest(t.signingKey, resultDigestOf(t.domain, resultInfo))
  diagnosis.status = status
  const encryptedDiagnosis = status === ResultStatus.Ok ? new Uint8Array(0) : encryptDiagnosis(code.resultPublicKey, t.taskId, diagnosis, t.signingKey)
  const result: ExecuteResponse = { resultInfo, signature, encryptedResult: envelope, inputSize: plan.inputSize, gasCap: plan.gasCap, outputCap: plan.outputCap, reason, encryptedDiagnosis }
  await putSealed(K.result(t.taskId), resultJson(result))
  t.result = result
  return result
}

/** Runs in progress, by task: a repeated execute request waits for the same run instead of starting another. */
const runs = new Map<string, Promise<ExecuteResponse>>()

/**
 * Step 8: checks and loading in the request queue, the run in its own thread outside it (so the
 * worker answers other requests meanwhile), signing and sealing in the queue again. A run killed
 * at its budget signs and seals nothing and rejects with RunOverBudgetError; the task may run again.
 */
async function execute (p: ExecuteRequest): Promise<ExecuteResponse> {
  const inProgress = runs.get(String(p?.taskId).toLowerCase())
  if (inProgress !== undefined) return await inProgress
  const plan = await inQueue(async () => await prepareRun(p))
  if (!('t' in plan)) return plan
  const t = plan.t
  // Another request for the task prepared meanwhile and started first: wait for its run.
  const current = runs.get(t.taskId)
  if (current !== undefined) return await current
  const run = (async () => {
    const outcome = plan.job === undefined ? undefined : await runInThread(plan.job, runBudgetOf(plan.gasCap, runBudget))
    return await inQueue(async () => await finishRun(plan, outcome))
  })()
  runs.set(t.taskId, run)
  try {
    return await run
  } finally {
    runs.delete(t.taskId)
  }
}

async function loadPlaintext (t: Task, index: number, s: SellerSlot): Promise<Uint8Array> {
  const out = new Uint8Array(s.size)
  let at = 0
  for (let n = 0; n < s.nextChunk; n++) {
    const chunk = await ocall('get', K.chunk(t.taskId, index, n))
    if (chunk === undefined) throw new UnsealError(`chunk ${n} of seller ${index} is missing from the store`)
    const { plaintext } = decryptChunk(s.key, s.commitment, chunk)
    if (at + plaintext.length > out.length) throw new UnsealError(`stored data of seller ${index} is longer than declared`)
    out.set(plaintext, at)
    at += plaintext.length
  }
  if (at !== s.size) throw new UnsealError(`stored data of seller ${index} is shorter than declared`)
  return out
}

async function dropTask (p: { taskId: string }): Promise<{ taskId: string }> {
  const t = taskOf(p.taskId)
  for (const [i, s] of t.sellers) {
    await deleteChunks(t, i, s.nextChunk)
    await ocall('delete', K.data(t.taskId, i))
  }
  await ocall('delete', K.code(t.taskId))
  await ocall('delete', K.result(t.taskId))
  await ocall('delete', K.task(t.taskId))
  tasks.delete(t.taskId)
  await saveIndex()
  return { taskId: t.taskId }
}

// ---- dispatch ----

async function handle (r: Request): Promise<unknown> {
  switch (r.op) {
    case 'attest': return await attest(r.params)
    case 'deliverCode': return await deliverCode(r.params)
    case 'openData': return await openData(r.params)
    case 'dataChunk': return await dataChunk(r.params)
    case 'closeData': return await closeData(r.params)
    case 'ackReceipt': return await ackReceipt(r.params)
    case 'tasks': return [...tasks.values()].map(summary)
    case 'dropTask': return await dropTask(r.params)
    default: throw new InvalidRequestError(`unknown request ${(r as { op: string }).op}`)
  }
}

// Requests run one at a time, in arrival order: each sees the state the previous one left sealed.
// An execute request takes its turn twice (to prepare, then to sign and seal) and runs in between,
// outside the queue, in its own thread (enclave/runs.ts).
let queue: Promise<unknown> = Promise.resolve()

function inQueue<T> (fn: () => Promise<T>): Promise<T> {
  const done = queue.then(fn)
  queue = done.catch(() => {})
  return done
}

port.on('message', (msg: HostMessage) => {
  if (msg.kind === 'ocallResult') {
    const p = pendingOcalls.get(msg.id)
    if (p === undefined) return
    pendingOcalls.delete(msg.id)
    if (msg.error !== undefined) p.reject(new EnclaveError(`store: ${msg.error}`))
    else p.resolve(msg.blob)
    return
  }
  if (msg.kind === 'request') {
    const request = msg.request
    const answer = request.op === 'execute' ? execute(request.params) : inQueue(async () => await handle(request))
    answer.then(
      (value) => { send({ kind: 'response', id: msg.id, ok: true, value }) },
      (err: unknown) => { send({ kind: 'response', id: msg.id, ok: false, error: serializeError(err) }) }
    )
  }
})

async function start (): Promise<void> {
  const init = workerData as WorkerInit
  try {
    attestationKey = new SigningKey(init.attestationKey)
    operator = init.operator
    if (!(init.platformSecret instanceof Uint8Array) || init.platformSecret.length !== 32) throw new InvalidRequestError('platformSecret must be 32 bytes')
    measurement = computeMeasurement(init.variant)
    faultWrongResult = init.faultWrongResult === true
    domain = { chainId: init.domain.chainId, verifyingContract: init.domain.verifyingContract }
    networkDomainKey(domain) // throws on a malformed domain
    runBudget = runBudgetPolicy(init.runBudget)
    prefix = `enclave/${measurement.slice(2)}/`
    sealKey = deriveSealKey(init.platformSecret, measurement)
    await loadSealedState()
    send({ kind: 'ready', measurement, attestationRoot: computeAddress(attestationKey.publicKey), tasks: [...tasks.values()].map(summary) })
  } catch (err) {
    send({ kind: 'startFailed', error: serializeError(err) })
  }
}

void start()
