// A dataset's terms, and the one judge of them: a demand the seller might offer for (step 3) and a
// trade DTMC opened with its offer (step 6, Checks) are both judged by `judgePolicy`.
import { DEFAULT_OUTPUT_CAP } from '../../../enclave/index.ts'
import { MAX_UINT64, type DatasetPolicy as ChainDatasetPolicy } from '../../../contracts/index.ts'
import { appError } from '../../rpc/errors.ts'

/** CISC's MAX_ALLOWED_CODE_HASHES: a longer list would only revert on chain. */
export const MAX_ALLOWED_CODE_HASHES = 16
/** CISC's MAX_ALLOWED_BUYERS. */
export const MAX_ALLOWED_BUYERS = 16
/** CISC holds maxTrades as a uint32. */
export const MAX_TRADES_LIMIT = 2 ** 32 - 1
/** CISC holds expiresAt as a uint40 (unix seconds). */
export const MAX_EXPIRES_AT = 2 ** 40 - 1

/**
 * Which code may run on the data. Deny by default: 'none' (a dataset listed without a policy) allows no
 * code at all; 'allowlist' allows the listed code hashes; 'any' is any code, chosen explicitly.
 */
export type CodeMode = 'none' | 'allowlist' | 'any'
export const CODE_MODES: readonly CodeMode[] = ['allowlist', 'any']

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
}

/** What the policy is judged on: a dataset's price and size, its policy, and what the seller did with it since. */
export interface PricedDataset {
  unitPrice: string
  size: number
  policy: DatasetPolicy
  /** seller_delistDataset was called: no new trade. */
  delisted?: boolean
  /** Trades the seller accepted on the dataset (what maxTrades bounds). */
  trades?: number
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
  // Anything but an explicit 'any' or a listed hash is refused: a stored record without a mode included.
  if (p.mode !== 'any' && !(p.mode === 'allowlist' && p.allowedCodeHashes.includes(terms.codeHash.toLowerCase()))) {
    return p.mode === 'allowlist' ? 'the code is not allowed by the dataset policy' : 'no analysis is allowed on the dataset (its policy names no code)'
  }
  if (p.allowedBuyers.length > 0 && !p.allowedBuyers.includes(terms.buyer.toLowerCase())) return `the buyer ${terms.buyer} is not allowed by the dataset policy`
  if (terms.outputCap > BigInt(p.outputCap)) return 'the output cap is above the dataset policy'
  if (terms.dataFee < fullPriceOf(ds)) return `the fee ${terms.dataFee} wei is below the price of the data`
  if (terms.outputPrice < BigInt(p.minOutputPrice)) return 'the output price is below the dataset policy'
  return null
}

const POLICY_FIELDS = ['mode', 'allowedCodeHashes', 'outputCap', 'minOutputPrice', 'allowedBuyers', 'maxTrades', 'expiresAt']

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
  return policy
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
    expiresAt: p.expiresAt
  }
}
