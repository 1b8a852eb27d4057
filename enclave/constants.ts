// Every bound of the enclave in one place. The ones that shape execution (hardfork, gas and memory
// pricing, caps, the precompile table) are part of the EVM configuration and therefore of the
// measurement: changing one is a new enclave build, and sealed state of the old build stays sealed.

/** Hardfork of the confined EVM; contracts/tools/compile.ts compiles the analyses for it. */
export const EVM_HARDFORK = 'cancun'

/**
 * Default gas cap of one analysis. 1 Ggas: a 64 MiB CSV through the precompiles costs about
 * 0.2-0.3 Ggas (see docs/enclave.md), while a runaway plain-EVM loop stops after about a minute of CPU.
 */
export const DEFAULT_GAS_CAP = 1_000_000_000n
/** The largest gas cap a buyer may ask for (fits the uint64 of ResultInfo.gasUsed with room). */
export const MAX_GAS_CAP = 2_000_000_000n
/** Default output cap in bytes when neither the buyer nor a seller sets a lower one. */
export const DEFAULT_OUTPUT_CAP = 64n * 1024n
/** The largest output cap in bytes. */
export const MAX_OUTPUT_CAP = 16n * 1024n * 1024n

/**
 * Memory expansion price: the EVM's words * 3 + words^2 / divisor, with the divisor raised from 512
 * to 2^20, so that the few hundred MiB an analysis of a 64 MiB dataset holds in memory (the CSV,
 * its parsed columns) cost about 0.1-0.3 Ggas instead of hundreds of Ggas.
 */
export const MEMORY_QUAD_COEFF_DIV = 1_048_576n
/**
 * Hard bound on the EVM memory of one run, whatever the gas: growing past it halts the run as
 * out of gas. Keeps a worker's memory bounded (1 GiB at 2 Ggas would otherwise be affordable).
 */
export const MAX_EVM_MEMORY = 1024 * 1024 * 1024

/** Largest runtime bytecode a buyer may deliver. */
export const MAX_CODE_SIZE = 256 * 1024
/** Largest single seller dataset, in plaintext bytes. */
export const MAX_DATASET_SIZE = 128 * 1024 * 1024
/** Largest sum of all sellers' datasets of one task. */
export const MAX_TOTAL_INPUT_SIZE = 128 * 1024 * 1024
/** Bytes of the seller's signature (r ‖ s ‖ v) in front of each chunk on the data stream (docs/protocol.md). */
export const SELLER_SIGNATURE_BYTES = 65
/**
 * Default and largest plaintext size of a data chunk. Each chunk costs a signature on the seller, a recovery in the
 * enclave and a store write: 1 MiB chunks make that a few dozen per 64 MiB instead of a thousand (docs/enclave.md).
 */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024
export const MAX_CHUNK_SIZE = 4 * 1024 * 1024
/** Largest number of sellers in one task. */
export const MAX_SELLERS = 64
/** Largest number of live tasks one enclave keeps. */
export const MAX_TASKS = 1024
/** Largest ECIES envelope the enclave opens (code envelope: code plus header). */
export const MAX_ENVELOPE_SIZE = MAX_CODE_SIZE + 4096
/** How long the host waits for the worker to answer one request, other than execute. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000
/**
 * Chunks of one delivery the host posts to the worker ahead of its answers, so the worker decrypts, hashes and
 * stores one while the next ones arrive from the stream (no round trip per chunk). The worker still takes them one
 * at a time, in order. Bounds the chunks held in the worker's queue: at most this × (MAX_CHUNK_SIZE + framing).
 */
export const DATA_CHUNKS_IN_FLIGHT = 4
/**
 * How long the host waits for the answer to one execute request, a backstop only: the enclave ends
 * every run at its budget (below) and answers then. A run happens in its own thread, so a late
 * answer holds up nothing else, and this timeout does not stop the worker.
 */
export const DEFAULT_EXECUTE_TIMEOUT_MS = 30 * 60_000

/**
 * The CPU bound the precompiles' prices are set for (PRECOMPILE_GAS in precompiles.ts,
 * STANDARD_PRECOMPILE_GAS_FACTOR in evm.ts), in CPU milliseconds per million gas on each one's worst
 * known input. The interpreter runs the plain analyses at 60-80 ms/Mgas; 200 keeps a worst-case
 * precompile within a few times of that, so MAX_GAS_CAP bounds one run at minutes of CPU, not hours.
 * Not enforced at run time (the clock is not deterministic): bench/enclave/precompiles.ts measures it.
 */
export const MAX_CPU_MS_PER_MGAS = 200

/**
 * Budget of one run (docs/enclave.md "Run budget"). Each analysis runs in its own thread (enclave/
 * runs.ts), killed when it outlives its time budget or outgrows its heap budget, both derived from
 * the run's gas cap. A killed run signs nothing: the node submits no result for it (an honest node
 * with more CPU would have signed one, and a signed "over budget" would split the honest majority).
 *
 * Time: MAX_CPU_MS_PER_MGAS per million gas, times RUN_WALL_SLACK because the budget is wall time
 * (the clock of a thread that shares the machine's cores with the daemon and other runs; Node has
 * no CPU clock per thread), plus MIN_RUN_WALL_MS for the start of the thread and the EVM and the
 * copy of up to MAX_TOTAL_INPUT_SIZE of input into the call data, which gas does not price.
 */
export const RUN_WALL_SLACK = 2
export const MIN_RUN_WALL_MS = 30_000
/**
 * Heap (V8 old generation) of a run's thread: RUN_HEAP_BASE_MB for the EVM and its inputs' JS
 * objects, plus RUN_HEAP_MB_PER_MGAS for every million gas (precompile work holds values as bigints,
 * paid per item), at most MAX_RUN_HEAP_MB. The EVM's memory is a byte buffer outside the V8 heap,
 * bounded by MAX_EVM_MEMORY and its gas.
 */
export const RUN_HEAP_BASE_MB = 512
export const RUN_HEAP_MB_PER_MGAS = 1
export const MAX_RUN_HEAP_MB = 2048
/**
 * The smallest heap a run's thread gets, whatever the policy says: V8 needs a few MiB to start an
 * isolate, and one that fails there takes the whole process down, not just its thread (measured:
 * 1 MiB aborts the process, 4 MiB ends the thread with ERR_WORKER_OUT_OF_MEMORY).
 */
export const MIN_RUN_HEAP_MB = 8
/**
 * Runs one enclave has in progress at a time; later execute requests wait for a free slot (their
 * budget starts when they start). Bounds the node's memory at this many runs' worth, whatever
 * number of trades strangers open with it.
 */
export const MAX_CONCURRENT_RUNS = 2
/**
 * Run threads an enclave keeps started ahead of a run (enclave/runs.ts, "warm" threads: the thread and
 * the EVM's modules loaded, no job yet, each used for one run only), at most one per run slot. Starting
 * one costs about 0.4-1 s (a new V8 isolate loading @ethereumjs/evm), which a small trade would
 * otherwise wait for on its critical path.
 */
export const MAX_WARM_RUN_THREADS = MAX_CONCURRENT_RUNS
/**
 * A warm thread nobody took within this long is ended: an idle node keeps no thread (each holds tens of
 * MiB) after its trades are over.
 */
export const WARM_RUN_THREAD_IDLE_MS = 30_000

/** Diagnosis of a run without output (crypto.ts encryptDiagnosis). */
/**
 * A diagnosis plaintext is padded to a multiple of this: every diagnosis whose fields depend on the data (all but
 * the refused sellers' list, which the host knows) fits one block (RunDiagnosis.error is cut to MAX_DIAGNOSIS_ERROR).
 */
export const DIAGNOSIS_PAD_BYTES = 1024
/** Characters of an engine's error message a diagnosis keeps. */
export const MAX_DIAGNOSIS_ERROR = 200
/** Largest diagnosis plaintext the buyer opens (a few hundred bytes in practice; 64 sellers' refusals at most). */
export const MAX_DIAGNOSIS_SIZE = 64 * 1024

/** Fixed-point scale of the analytics precompiles' derived values (mean, variance, slope). */
export const FIXED_POINT_DECIMALS = 6
export const FIXED_POINT_SCALE = 10n ** BigInt(FIXED_POINT_DECIMALS)

/**
 * Private mode (docs/enclave.md "Private mode"). Epsilon travels as an integer count of micro-epsilon:
 * 1 epsilon = EPSILON_SCALE units, so budgets add up exactly on every node and on chain.
 */
export const EPSILON_SCALE = 1_000_000n
/** The largest epsilon of one run, in micro-epsilon (1000 epsilon: beyond it the noise protects nothing anyway). */
export const MAX_RUN_EPSILON = 1000n * EPSILON_SCALE
/** Bytes of the seller's privacy secret (the noise key is derived from all sellers' secrets and the trade id). */
export const PRIVACY_SECRET_BYTES = 32
/** Most columns a seller's privacy terms may declare. */
export const MAX_PRIVATE_COLUMNS = 256
/** Largest column index a privacy term may name (as csvColumn's bound on `column`). */
export const MAX_PRIVATE_COLUMN_INDEX = 1 << 20
/**
 * Largest absolute clamp bound, in the column's units (value × 10^decimals): clamped values fit an int64, and the
 * linear fit's sums of products over MAX_TOTAL_INPUT_SIZE records stay far inside int256.
 */
export const MAX_CLAMP_ABS = 10n ** 18n
/** Most candidates of one private quantile (the exponential mechanism computes every candidate's weight). */
export const MAX_QUANTILE_CANDIDATES = 4096
/**
 * The private mode's samplers (enclave/noise.ts) do a fixed amount of work, so they cannot be exact (an exact
 * sampler of a non-dyadic probability needs unbounded randomness). They are exact up to this: each statistic is
 * (ε + 2^-50, δ)-DP with δ ≤ 2^-NOISE_DELTA_BITS instead of ε-DP (docs/enclave.md "The noise").
 */
export const NOISE_DELTA_BITS = 64
/**
 * Where the samplers cut a tail, in nats beyond the shift they hide: e^-46 < 2^-65 = 2^-(NOISE_DELTA_BITS + 1)
 * (65 · ln 2 = 45.06), the mass they may drop.
 */
export const NOISE_TAIL_NATS = 46n
/**
 * Largest epsilon one noise draw may hide (ε of one statistic, in whole epsilon): its cost grows with it (a
 * probability near e^-ε must be drawn to 2^-64 of itself). One run's MAX_RUN_EPSILON bounds every call.
 */
export const MAX_NOISE_EPSILON = MAX_RUN_EPSILON / EPSILON_SCALE
/** Fixed-point bits (beyond the range reduction's) of the samplers' integer e^x: relative error below 2^-70. */
export const NOISE_EXP_BITS = 80
/** Quantiles are given in parts per million: 500000 is the median. */
export const QUANTILE_SCALE = 1_000_000n

/** Domain labels: each ECIES envelope and each AES-GCM chunk is bound to what it is for. */
export const ECIES_INFO = 'SDTE.ECIES.v1'
export const CODE_ENVELOPE_TAG = 'SDTE.CodeEnvelope.v1'
export const DATA_KEY_ENVELOPE_TAG = 'SDTE.DataKeyEnvelope.v2'
export const RESULT_ENVELOPE_TAG = 'SDTE.ResultEnvelope.v1'
export const DIAGNOSIS_ENVELOPE_TAG = 'SDTE.DiagnosisEnvelope.v1'
export const DIAGNOSIS_TAG = 'SDTE.Diagnosis.v1'
export const DATA_CHUNK_TAG = 'SDTE.DataChunk.v1'
export const SEAL_INFO = 'SDTE.Seal.v1'
export const MEASUREMENT_TAG = 'SDTE.Measurement.v1'
/** HKDF info of a private run's noise key (from the sellers' privacy secrets and the trade id). */
export const NOISE_KEY_INFO = 'SDTE.DP.NoiseKey.v1'
/** HMAC label of one private call's noise stream key (from the run's noise key and the call's sequence number). */
export const NOISE_CALL_TAG = 'SDTE.DP.Call.v1'
/** HMAC label of a seller's per-trade privacy secret derived from its own master secret (privacySecretOf). */
export const PRIVACY_SECRET_TAG = 'SDTE.DP.Secret.v1'

/** Envelope and chunk format versions (first byte on the wire). */
export const ENVELOPE_VERSION = 1
export const SEALED_BLOB_VERSION = 1

/** Most decimals a CSV column may be parsed with (the analytics precompiles, and a private column's terms). */
export const MAX_CSV_DECIMALS = 18

/** Bytes of a dataset's commitment salt (crypto.ts datasetCommitment): the seller's secret, carried in the wrapped data key. */
export const COMMITMENT_SALT_BYTES = 32
