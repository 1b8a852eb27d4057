// The typed message interface between the host and the enclave worker: the only way in or out.
// Requests carry public values, ciphertext (envelopes, chunks) and public parameters; responses
// carry quotes, public keys, signed result info and ciphertext. Nothing secret crosses, except
// at start the simulated platform's own secrets (the attestation root key and the platform
// secret), which stand in for the CPU's fused keys and the quoting enclave.
//
// Bytes travel as Uint8Array (structured clone; chunk buffers are transferred), ids as 0x hex.
import type { NetworkDomain, ResultInfo, Quote } from '../contracts/formats.ts'
import type { SerializedError } from './errors.ts'

export interface WorkerInit {
  /** Simulated attestation service's private key (hex): signs quotes. */
  attestationKey: string
  /** Per-machine 32-byte secret: the seal key is derived from it and the measurement. */
  platformSecret: Uint8Array
  /**
   * The deployment (chain id, DTMC address) this enclave serves. The host chooses it, but cannot lie
   * usefully: quotes are over it (DTMC checks them against its own chain id and address) and the buyer's
   * code authorization is over it too, so a task gets code only for the buyer's deployment.
   */
  domain: NetworkDomain
  /**
   * The node's account, named in every quote (contracts/formats.ts reportDataOf). The host chooses it, but cannot lie
   * usefully: a quote naming another account is valid only for that account's offer and payee, whose fees it is.
   */
  operator: string
  /** Non-empty only to simulate another enclave build (tests): changes the measurement. */
  variant: string
  /**
   * Test-only fault, refused by the daemon outside a devnet: the enclave signs a wrong output (its
   * last byte flipped), as a compromised but still attested enclave would. Not in the measurement,
   * which is the point: only the majority vote stands against such a node.
   */
  faultWrongResult?: boolean
  /** How a run's budget follows from its gas cap (enclave/runs.ts runBudgetOf); the defaults unless the node sets its own. */
  runBudget: RunBudgetPolicy
}

/**
 * A run's budget as a function of its gas cap: wall ms = minWallMs + Mgas × wallMsPerMgas; heap MiB
 * = min(maxHeapMb, heapBaseMb + Mgas × heapMbPerMgas). Decides only whether a run finishes, never
 * what it computes, so it is not in the measurement: a node may give its runs more or less room.
 */
export interface RunBudgetPolicy {
  wallMsPerMgas: number
  minWallMs: number
  heapBaseMb: number
  heapMbPerMgas: number
  maxHeapMb: number
}

/** Enclave worker -> its run thread (enclave/runner.ts): one analysis. Never leaves the enclave. */
export interface RunJob {
  code: Uint8Array
  inputs: Uint8Array[]
  gasCap: bigint
  outputCap: bigint
  /** Present only for a private run: the analysis then gets no input in its call data, only the private precompiles. */
  privacy?: RunPrivacy
}

/** One column a seller opens to private analyses: parsed with `decimals`, each value clamped to [lo, hi] (units × 10^decimals). */
export interface PrivacyColumn { column: number, decimals: number, lo: bigint, hi: bigint }

/**
 * A seller's privacy terms (docs/enclave.md "Private mode"), inside its wrapped data key: so they are encrypted to
 * the task key and covered by the seller's signature over the delivery, and a host can neither strip them (to get
 * an ordinary run of private data) nor swap in a secret of its own (to predict the noise).
 */
export interface PrivacyTerms {
  /** 32 secret bytes, the same for every enclave of one trade (privacySecretOf): the noise is derived from it. */
  secret: Uint8Array
  /** The trade's epsilon in micro-epsilon (1 epsilon = 1,000,000): what the seller saw charged on chain for it. */
  epsilon: bigint
  /** Whether the first non-empty line of the dataset is a header. */
  skipHeader: boolean
  /** The columns private analyses may use, with their clamping ranges. */
  columns: PrivacyColumn[]
}

/** What a private run's thread gets instead of the sellers' secrets: the derived noise key, the budget, the clamps. */
export interface RunPrivacy {
  /** The run's epsilon budget, micro-epsilon: the private calls' epsilons add up to at most this. */
  epsilon: bigint
  /** HKDF(sellers' secrets in trade order, salt = tradeId, info = NOISE_KEY_INFO): 32 bytes. */
  noiseKey: Uint8Array
  /** Each seller's terms without its secret, in trade order (the same order as RunJob.inputs). */
  sellers: Array<{ skipHeader: boolean, columns: PrivacyColumn[] }>
}

export interface AttestRequest { tradeId: string, codeHash: string, nonce: string }
export interface AttestResponse {
  quote: Quote
  /** The task key's public key, compressed secp256k1 (33 bytes hex): encrypt code and data keys to it. */
  enclavePublicKey: string
  taskId: string
}

/** Step 4: the buyer's code envelope, authorized by the trade's buyer (see codeAuthDigestOf). */
export interface DeliverCodeRequest {
  taskId: string
  envelope: Uint8Array
  /** The salt of the trade id: tradeId = keccak(buyer, salt). */
  salt: string
  /** The buyer's signature over codeAuthDigestOf(taskId, keccak(envelope)) (65 bytes hex). */
  signature: string
}

export interface OpenDataRequest {
  taskId: string
  sellerIndex: number
  commitment: string
  wrappedKey: Uint8Array
  /** The seller account's signature over dataKeyDigestOf(taskId, sellerIndex, commitment, keccak(wrappedKey)) (65 bytes hex). */
  sellerSignature: string
}
/** `chunk` is a signed frame: the seller's signature over chunkDigestOf (65 bytes) ‖ the encrypted chunk (signChunk). */
export interface DataChunkRequest { taskId: string, sellerIndex: number, chunk: Uint8Array }
/** The seller's acknowledgement of its delivery receipt: its account's signature over receiptAckDigestOf(receiptDigest). */
export interface AckReceiptRequest { taskId: string, sellerIndex: number, signature: string }
export interface SellerDataStatus {
  sellerIndex: number
  commitment: string
  size: number
  /** Index of the next chunk the enclave expects (chunks below it are stored). */
  nextChunk: number
  received: number
  complete: boolean
  /** Why the seller's delivery was refused (its own signed bytes failed), if it was; a new delivery starts it over. */
  invalid?: string
  /** The account that signed the data-key delivery. */
  seller: string
  /** The delivery receipt (task key's signature over receiptDigestOf) once complete: hand it to the seller. */
  receipt?: string
  /** Whether the seller acknowledged the receipt (the task runs only then). */
  acked: boolean
  /** Set (true) when the delivery carries privacy terms: the task then runs only in the private mode. */
  private?: true
}

export interface ExecuteRequest {
  taskId: string
  /** How many sellers the trade has; inputs are sellers 0..n-1 in trade order. Default: all delivered. */
  sellerCount?: number
  /**
   * The trade's caps as the host read them on DTMC: when given, each must equal the one the run uses (the buyer's
   * gas cap; the smallest of the buyer's and the sellers' output caps), else the enclave refuses (CapMismatchError).
   * A node's own limits never lower a run: every honest node runs with the same inputs.
   */
  gasCap?: bigint
  outputCap?: bigint
  /**
   * Required exactly when the sellers' deliveries carry privacy terms (a private run), refused otherwise: the
   * trade's epsilon as the host read it on DTMC, in micro-epsilon (bigint or decimal string; 1 epsilon = 1,000,000).
   * It must equal the run's, the smallest of the sellers' terms, else PrivacyMismatchError.
   */
  privacy?: { epsilon: bigint | string }
}
export interface ExecuteResponse {
  resultInfo: ResultInfo
  /** Task key's signature over resultDigestOf(resultInfo) (65 bytes hex). */
  signature: string
  /** The output, ECIES-encrypted to the buyer's one-time result key; empty unless status is Ok. */
  encryptedResult: Uint8Array
  /**
   * Plaintext input size in bytes (all sellers), and the caps the run used: not signed, informative. The gas the
   * run used is not here (nor in resultInfo): it is inside encryptedResult, for the buyer only.
   */
  inputSize: number
  gasCap: bigint
  outputCap: bigint
  /**
   * Why the run stopped, in words that depend on the status and the trade's public terms only (never on the data):
   * 'ok', 'forbidden opcode', 'out of gas', the sellers whose delivery was refused, ... The details (which opcode
   * where, the gas used, the output size) are in encryptedDiagnosis, for the buyer only.
   */
  reason: string
  /** Unless status is Ok: a RunDiagnosis encrypted to the buyer and signed by the task key (crypto.ts encryptDiagnosis). */
  encryptedDiagnosis: Uint8Array
}

/**
 * Why a run delivered no output, as the enclave tells the buyer (encrypted; docs/enclave.md "Diagnosis"). Numbers
 * that may exceed 2^53 are decimal strings.
 */
export interface RunDiagnosis {
  status: number
  /** Gas the run used, and the trade's gas cap. */
  gasUsed: string
  gasCap: string
  /** The output cap of the run (the smallest of the buyer's and the sellers'). */
  outputCap: string
  /** Forbidden (3): the refused opcode (CALL, SSTORE, STATICCALL to a non-precompile, ...) and its program counter. */
  opcode?: string
  pc?: number
  /** Output over cap (4): the size of the output the run returned. */
  outputSize?: number
  /** Reverted (1), internal (6): what stopped it ('revert', 'invalid opcode', 'stack underflow', ...). */
  error?: string
  /** Input invalid (5): the sellers (trade order) whose delivery the enclave refused, with the account that signed it and why. */
  invalidSellers?: Array<{ index: number, account: string, why: string }>
  /** Input invalid (5): the sum of the inputs, when that is what was over MAX_TOTAL_INPUT_SIZE. */
  inputSize?: number
}

export interface TaskSummary {
  taskId: string
  tradeId: string
  codeHash: string
  enclaveAddress: string
  enclavePublicKey: string
  hasCode: boolean
  sellers: SellerDataStatus[]
  executed: boolean
}

export type Request =
  | { op: 'attest', params: AttestRequest }
  | { op: 'deliverCode', params: DeliverCodeRequest }
  | { op: 'openData', params: OpenDataRequest }
  | { op: 'dataChunk', params: DataChunkRequest }
  | { op: 'closeData', params: { taskId: string, sellerIndex: number } }
  | { op: 'ackReceipt', params: AckReceiptRequest }
  | { op: 'execute', params: ExecuteRequest }
  | { op: 'tasks', params: Record<string, never> }
  | { op: 'dropTask', params: { taskId: string } }

export interface ResponseMap {
  attest: AttestResponse
  deliverCode: { taskId: string }
  openData: SellerDataStatus
  dataChunk: SellerDataStatus
  closeData: SellerDataStatus
  ackReceipt: SellerDataStatus
  execute: ExecuteResponse
  tasks: TaskSummary[]
  dropTask: { taskId: string }
}

/** Host -> worker. */
export type HostMessage =
  | { kind: 'request', id: number, request: Request }
  | { kind: 'ocallResult', id: number, blob?: Uint8Array, error?: string }

/** Worker -> host. */
export type WorkerMessage =
  | { kind: 'ready', measurement: string, attestationRoot: string, tasks: TaskSummary[] }
  | { kind: 'startFailed', error: SerializedError }
  | { kind: 'response', id: number, ok: true, value: unknown }
  | { kind: 'response', id: number, ok: false, error: SerializedError }
  | { kind: 'ocall', id: number, op: 'get' | 'put' | 'delete', key: string, blob?: Uint8Array }
