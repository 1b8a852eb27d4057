// A dataset's terms, and the one judge of them: a demand the seller might offer for (step 3) and a
// trade DTMC opened with its offer (step 6, Checks) are both judged by `judgePolicy`.
import {
  DEFAULT_OUTPUT_CAP, MAX_CLAMP_ABS, MAX_CSV_DECIMALS, MAX_PRIVATE_COLUMN_INDEX, MAX_PRIVATE_COLUMNS, MAX_RUN_EPSILON
} from '../../../enclave/index.ts'
import { MAX_CLAMPS, MAX_UINT64, type DatasetPolicy as ChainDatasetPolicy } from '../../../contracts/index.ts'
import { appError } from '../../rpc/errors.ts'

/** CISC's MAX_ALLOWED_CODE_HASHES: a longer list would only revert on chain. */
export const MAX_ALLOWED_CODE_HASHES = 16
/** CISC's MAX_ALLOWED_BUYERS. */
export const MAX_ALLOWED_BUYERS = 16
/** CISC holds maxTrades as a uint32. */
export const MAX_TRADES_LIMIT = 2 ** 32 - 1
/** CISC holds expiresAt as a uint40 (unix seconds). */
export const MAX_EXPIRES_AT = 2 ** 40 - 1
/** CISC holds a private offer's budget as a uint64 of micro-epsilon (contracts' EPSILON_UNIT per epsilon). */
export const MAX_EPSILON_BUDGET = MAX_UINT64
/**
 * A private dataset's clamps must be what both the chain and the enclave take (issue 15's two halves), so the
 * bounds are the narrower of the two, each from its home: the column index is a uint16 in CISC.Clamp and at most
 * the enclave's MAX_PRIVATE_COLUMN_INDEX; decimals at most the enclave's MAX_CSV_DECIMALS (CISC takes a uint8);
 * bounds within the enclave's ±MAX_CLAMP_ABS (CISC takes int128, which holds them); at most CISC's MAX_CLAMPS
 * columns (the enclave takes MAX_PRIVATE_COLUMNS). The units are the same on both sides: an integer at the
 * column's decimals (12.5 at decimals 1 is 125), CISC's lower/upper being the enclave's lo/hi.
 */
export const MAX_CLAMP_COLUMN = Math.min(2 ** 16 - 1, MAX_PRIVATE_COLUMN_INDEX)
if (MAX_CLAMPS > MAX_PRIVATE_COLUMNS) throw new Error('CISC.MAX_CLAMPS is above the enclave\'s MAX_PRIVATE_COLUMNS: a listed dataset could not be delivered')
export { MAX_CLAMPS, MAX_CLAMP_ABS, MAX_CSV_DECIMALS, MAX_RUN_EPSILON }
/** A clamp bound as a decimal string: as many digits as MAX_CLAMP_ABS has at most (parseClamps checks the value). */
export const CLAMP_BOUND_PATTERN = `^-?[0-9]{1,${MAX_CLAMP_ABS.toString().length}}$`

/**
 * Which code may run on the data. Deny by default: 'none' (a dataset listed without a policy) allows no
 * code at all; 'allowlist' allows the listed code hashes; 'any' is any code, chosen explicitly; 'private' is
 * any analysis under a differential-privacy budget: the enclave gives it only the private precompiles
 * (clamped by the policy's clamps, noised), and every trade's epsilon is charged to the budget on chain.
 */
export type CodeMode = 'none' | 'allowlist' | 'any' | 'private'
export const CODE_MODES: readonly CodeMode[] = ['allowlist', 'any', 'private']

/** A column bound of a private dataset, as JSON (CISC.Clamp): the values are integers at `decimals` digits of fraction. */
export interface ClampPolicy {
  column: number
  decimals: number
  /** Decimal integer strings (int128). */
  lower: string
  upper: string
}

/**
 * The mode, allowedCodeHashes, outputCap, allowedBuyers, maxTrades and expiresAt are on-chain (CISC
 * enforces them when a trade opens, and counts the trades); the seller judges them too, on every
 * demand and trade. minOutputPrice is on chain as well (DTMC pays it), and the seller offers to, and
 * delivers for, only trades that pay at least that much per output byte, so reading the data out
 * through the result costs at least as much as buying it (the notes' last "bug").
 */
export interface DatasetPolicy {
  mode: CodeMode
  /** Lowercase; non-empty exactly in mode 'allowlist'. */
  allowedCodeHashes: string[]
  outputCap: string
  minOutputPrice: string
  /** Lowercase addresses of the buyers that may trade; empty: any buyer. */
  allowedBuyers: string[]
  /** The most trades on the dataset; 0: no maximum. */
  maxTrades: number
  /** Unix seconds (chain time) from which no trade is accepted; 0: never. */
  expiresAt: number
  /** Mode 'private' only: the epsilon all trades may spend together, micro-epsilon as a decimal string (CISC holds it). */
  epsilonBudget?: string
  /** Mode 'private' only: 1..MAX_CLAMPS column bounds (in CISC's DatasetPrivate event; delivered to the enclave too). */
  clamps?: ClampPolicy[]
}

/** What the policy is judged on: a dataset's price and size, its policy, and what the seller did with it since. */
export interface PricedDataset {
  unitPrice: string
  size: number
  policy: DatasetPolicy
  /** seller_delistDataset was called: no new trade. */
  delisted?: boolean
  /**
   * Trades that hold a place in the dataset's maxTrades, read from CISC (it counts every trade that opens on it and
   * gives back the place of one that ended without the seller's data); absent: 0.
   */
  trades?: number
  /** Mode 'private': micro-epsilon the other trades on the dataset have spent, read from CISC; absent: 0. */
  epsilonSpent?: bigint
}

/** The terms of a demand or a trade that the policy judges. */
export interface TradeTerms {
  codeHash: string
  outputCap: bigint
  outputPrice: bigint
  /** Wei paid for the whole dataset: for a demand, what DTMC would pay, min(unitPrice × size, sellerCap); for a trade, the fee DTMC recorded. */
  dataFee: bigint
  /** The buyer's account: the demand's signer, or the trade's buyer in DTMC. */
  buyer: string
  /** Chain time (unix seconds) when the seller judges. */
  now: number
  /** Micro-epsilon the demand or trade declares; absent: 0 (refused on a private dataset). */
  epsilon?: bigint
}

/** The full price of the data, not a token: the seller is paid unitPrice × size or nothing. */
export function fullPriceOf (ds: PricedDataset): bigint {
  return BigInt(ds.unitPrice) * BigInt(ds.size)
}

/** Why the dataset's policy refuses these terms, or null when it accepts them. */
export function judgePolicy (ds: PricedDataset, terms: TradeTerms): string | null {
  const p = ds.policy
  if (ds.delisted === true) return 'the dataset is delisted'
  if (p.expiresAt !== 0 && terms.now >= p.expiresAt) return `the dataset policy expired at ${p.expiresAt}`
  if (p.maxTrades !== 0 && (ds.trades ?? 0) >= p.maxTrades) return `the dataset has had its ${p.maxTrades} trades`
  // Anything but an explicit 'any' or 'private' or a listed hash is refused: a stored record without a mode included.
  if (p.mode !== 'any' && p.mode !== 'private' && !(p.mode === 'allowlist' && p.allowedCodeHashes.includes(terms.codeHash.toLowerCase()))) {
    return p.mode === 'allowlist' ? 'the code is not allowed by the dataset policy' : 'no analysis is allowed on the dataset (its policy names no code)'
  }
  if (p.mode === 'private') {
    const epsilon = terms.epsilon ?? 0n
    if (epsilon <= 0n) return 'the dataset is private: the trade must declare an epsilon'
    // The enclave runs at most MAX_RUN_EPSILON per run: a larger trade could be charged on chain but never delivered.
    if (epsilon > MAX_RUN_EPSILON) return `the epsilon ${epsilon} is above the most one run takes, ${MAX_RUN_EPSILON} (micro-epsilon)`
    const remaining = BigInt(p.epsilonBudget ?? '0') - (ds.epsilonSpent ?? 0n)
    if (epsilon > remaining) return `the epsilon ${epsilon} exceeds the remaining privacy budget ${remaining < 0n ? 0n : remaining} (micro-epsilon)`
  }
  if (p.allowedBuyers.length > 0 && !p.allowedBuyers.includes(terms.buyer.toLowerCase())) return `the buyer ${terms.buyer} is not allowed by the dataset policy`
  if (terms.outputCap > BigInt(p.outputCap)) return 'the output cap is above the dataset policy'
  if (terms.dataFee < fullPriceOf(ds)) return `the fee ${terms.dataFee} wei is below the price of the data`
  if (terms.outputPrice < BigInt(p.minOutputPrice)) return 'the output price is below the dataset policy'
  return null
}

const POLICY_FIELDS = ['mode', 'allowedCodeHashes', 'outputCap', 'minOutputPrice', 'allowedBuyers', 'maxTrades', 'expiresAt', 'epsilonBudget', 'clamps']

const rejected = (message: string): Error => appError('Rejected', message, { param: 'policy' })

/** A count in 1..max, given as a JSON number or a decimal string. */
function positiveInteger (v: unknown, field: string, max: number): number {
  const n = typeof v === 'string' && /^[0-9]{1,16}$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > max) throw rejected(`policy.${field} must be an integer in 1..${max}`)
  return n
}

/**
 * The policy of seller_addDataset, from its JSON form. No policy: mode 'none', no analysis allowed.
 * A policy names its mode ('allowlist' with allowedCodeHashes, or 'any'); defaults: DEFAULT_OUTPUT_CAP,
 * the unit price per output byte, any buyer, no maximum of trades, no expiry.
 */
export function parsePolicy (raw: Record<string, unknown> | undefined, unitPrice: bigint): DatasetPolicy {
  const policy: DatasetPolicy = {
    mode: 'none', allowedCodeHashes: [], outputCap: DEFAULT_OUTPUT_CAP.toString(), minOutputPrice: unitPrice.toString(), allowedBuyers: [], maxTrades: 0, expiresAt: 0
  }
  if (raw === undefined) return policy
  for (const k of Object.keys(raw)) {
    if (!POLICY_FIELDS.includes(k)) throw rejected(`policy: unknown field ${k}`)
  }
  if (!CODE_MODES.includes(raw.mode as CodeMode)) throw rejected(`policy.mode must be one of ${CODE_MODES.join(', ')} (without a policy no code may run)`)
  policy.mode = raw.mode as CodeMode
  if (raw.minOutputPrice !== undefined) {
    const v = raw.minOutputPrice
    if (typeof v !== 'string' || !/^[0-9]{1,30}$/.test(v)) throw rejected('policy.minOutputPrice must be wei as a decimal string')
    // CISC holds it as a uint64 and DTMC enforces it: a trade on the offer pays at least this per output byte.
    if (BigInt(v) > MAX_UINT64) throw rejected(`policy.minOutputPrice must be at most ${MAX_UINT64} wei`)
    policy.minOutputPrice = v
  }
  if (policy.mode === 'allowlist') {
    const list = raw.allowedCodeHashes
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ALLOWED_CODE_HASHES || !list.every(h => typeof h === 'string' && /^0x[0-9a-fA-F]{64}$/.test(h))) {
      throw rejected(`policy.allowedCodeHashes must be 1..${MAX_ALLOWED_CODE_HASHES} bytes32 hex strings in mode allowlist`)
    }
    policy.allowedCodeHashes = list.map(h => (h as string).toLowerCase())
  } else if (raw.allowedCodeHashes !== undefined) {
    throw rejected('policy.allowedCodeHashes goes with mode allowlist, not any')
  }
  if (raw.outputCap !== undefined) {
    const v = raw.outputCap
    if (!((typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0))) {
      throw rejected('policy.outputCap must be a byte count')
    }
    policy.outputCap = String(v)
  }
  if (raw.allowedBuyers !== undefined) {
    const list = raw.allowedBuyers
    // Absent means open; an empty list would read as "nobody", which is what delisting is for.
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ALLOWED_BUYERS || !list.every(a => typeof a === 'string' && /^0x[0-9a-fA-F]{40}$/.test(a))) {
      throw rejected(`policy.allowedBuyers must be 1..${MAX_ALLOWED_BUYERS} addresses (leave it out for any buyer)`)
    }
    policy.allowedBuyers = list.map(a => (a as string).toLowerCase())
  }
  if (raw.maxTrades !== undefined) policy.maxTrades = positiveInteger(raw.maxTrades, 'maxTrades', MAX_TRADES_LIMIT)
  if (raw.expiresAt !== undefined) policy.expiresAt = positiveInteger(raw.expiresAt, 'expiresAt', MAX_EXPIRES_AT)
  if (policy.mode === 'private') {
    policy.epsilonBudget = parseEpsilonBudget(raw.epsilonBudget)
    policy.clamps = parseClamps(raw.clamps)
  } else if (raw.epsilonBudget !== undefined || raw.clamps !== undefined) {
    throw rejected('policy.epsilonBudget and policy.clamps go with mode private')
  }
  return policy
}

/** Micro-epsilon in 1..MAX_EPSILON_BUDGET, as a JSON integer or a decimal string. */
function parseEpsilonBudget (v: unknown): string {
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v
  if (typeof s !== 'string' || !/^[0-9]{1,20}$/.test(s) || BigInt(s) < 1n || BigInt(s) > MAX_EPSILON_BUDGET) {
    throw rejected(`policy.epsilonBudget must be micro-epsilon (1 epsilon = 1000000) in 1..${MAX_EPSILON_BUDGET} in mode private`)
  }
  return BigInt(s).toString()
}

/** 1..MAX_CLAMPS column bounds, each { column, decimals, lower, upper } with lower ≤ upper and distinct columns. */
function parseClamps (v: unknown): ClampPolicy[] {
  const bad = (why: string): Error => rejected(`policy.clamps: ${why}`)
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_CLAMPS) throw bad(`1..${MAX_CLAMPS} column bounds are required in mode private`)
  const bound = (x: unknown): bigint => {
    const s = typeof x === 'number' && Number.isSafeInteger(x) ? String(x) : x
    if (typeof s !== 'string' || !new RegExp(CLAMP_BOUND_PATTERN).test(s)) throw bad('lower and upper must be integers (decimal strings) at the column\'s decimals')
    const n = BigInt(s)
    if (n < -MAX_CLAMP_ABS || n > MAX_CLAMP_ABS) throw bad(`lower and upper must be within ±${MAX_CLAMP_ABS} (the enclave's bound)`)
    return n
  }
  const seen = new Set<number>()
  return v.map((c: unknown) => {
    if (typeof c !== 'object' || c === null || Array.isArray(c)) throw bad('each must be { column, decimals, lower, upper }')
    const o = c as Record<string, unknown>
    for (const k of Object.keys(o)) if (!['column', 'decimals', 'lower', 'upper'].includes(k)) throw bad(`unknown field ${k}`)
    const { column, decimals } = o
    if (typeof column !== 'number' || !Number.isInteger(column) || column < 0 || column > MAX_CLAMP_COLUMN) throw bad(`column must be an integer in 0..${MAX_CLAMP_COLUMN}`)
    if (seen.has(column)) throw bad(`column ${column} is bounded twice`)
    seen.add(column)
    if (typeof decimals !== 'number' || !Number.isInteger(decimals) || decimals < 0 || decimals > MAX_CSV_DECIMALS) throw bad(`decimals must be an integer in 0..${MAX_CSV_DECIMALS}`)
    const lower = bound(o.lower)
    const upper = bound(o.upper)
    if (lower > upper) throw bad(`column ${column}: lower is above upper`)
    return { column, decimals, lower: lower.toString(), upper: upper.toString() }
  })
}

/** The policy as CISC.listDataset takes it. */
export function chainPolicyOf (p: DatasetPolicy): ChainDatasetPolicy {
  return {
    allowedCodeHashes: p.mode === 'allowlist' ? p.allowedCodeHashes : [],
    anyCode: p.mode === 'any',
    outputCap: BigInt(p.outputCap),
    minOutputPrice: BigInt(p.minOutputPrice),
    allowedBuyers: p.allowedBuyers,
    maxTrades: p.maxTrades,
    expiresAt: p.expiresAt,
    // Only a private policy carries these (an 'any' or 'allowlist' listing's arguments stay as they were).
    ...(p.mode === 'private'
      ? {
          privateMode: true,
          epsilonBudget: BigInt(p.epsilonBudget ?? '0'),
          clamps: (p.clamps ?? []).map(c => ({ column: c.column, decimals: c.decimals, lower: BigInt(c.lower), upper: BigInt(c.upper) }))
        }
      : {})
  }
}
