// A dataset's terms, and the one judge of them: a demand the seller might offer for (step 3) and a
// trade DTMC opened with its offer (step 6, Checks) are both judged by `judgePolicy`.
import { DEFAULT_OUTPUT_CAP } from '../../../enclave/index.ts'
import { MAX_UINT64 } from '../../../contracts/index.ts'
import { appError } from '../../rpc/errors.ts'

/** CISC's MAX_ALLOWED_CODE_HASHES: a longer list would only revert on chain. */
export const MAX_ALLOWED_CODE_HASHES = 16

/**
 * allowedCodeHashes and outputCap are on-chain (CISC enforces them when a trade opens);
 * minOutputPrice is the seller's own: it offers to, and delivers for, only trades that pay at
 * least that much per output byte, so reading the data out through the result costs at least
 * as much as buying it (the notes' last "bug").
 */
export interface DatasetPolicy { allowedCodeHashes: string[], outputCap: string, minOutputPrice: string }

/** What the policy is judged on: a dataset's price and size, and its policy. */
export interface PricedDataset { unitPrice: string, size: number, policy: DatasetPolicy }

/** The terms of a demand or a trade that the policy judges. */
export interface TradeTerms {
  codeHash: string
  outputCap: bigint
  outputPrice: bigint
  /** Wei paid for the whole dataset: for a demand, what DTMC would pay, min(unitPrice × size, sellerCap); for a trade, the fee DTMC recorded. */
  dataFee: bigint
}

/** The full price of the data, not a token: the seller is paid unitPrice × size or nothing. */
export function fullPriceOf (ds: PricedDataset): bigint {
  return BigInt(ds.unitPrice) * BigInt(ds.size)
}

/** Why the dataset's policy refuses these terms, or null when it accepts them. */
export function judgePolicy (ds: PricedDataset, terms: TradeTerms): string | null {
  const p = ds.policy
  if (p.allowedCodeHashes.length > 0 && !p.allowedCodeHashes.includes(terms.codeHash.toLowerCase())) return 'the code is not allowed by the dataset policy'
  if (terms.outputCap > BigInt(p.outputCap)) return 'the output cap is above the dataset policy'
  if (terms.dataFee < fullPriceOf(ds)) return `the fee ${terms.dataFee} wei is below the price of the data`
  if (terms.outputPrice < BigInt(p.minOutputPrice)) return 'the output price is below the dataset policy'
  return null
}

/** The policy of seller_addDataset, from its JSON form; defaults: any code, DEFAULT_OUTPUT_CAP, the unit price per output byte. */
export function parsePolicy (raw: Record<string, unknown> | undefined, unitPrice: bigint): DatasetPolicy {
  const policy = { allowedCodeHashes: [] as string[], outputCap: DEFAULT_OUTPUT_CAP.toString(), minOutputPrice: unitPrice.toString() }
  if (raw === undefined) return policy
  for (const k of Object.keys(raw)) {
    if (!['allowedCodeHashes', 'outputCap', 'minOutputPrice'].includes(k)) throw appError('Rejected', `policy: unknown field ${k}`, { param: 'policy' })
  }
  if (raw.minOutputPrice !== undefined) {
    const v = raw.minOutputPrice
    if (typeof v !== 'string' || !/^[0-9]{1,30}$/.test(v)) throw appError('Rejected', 'policy.minOutputPrice must be wei as a decimal string', { param: 'policy' })
    // CISC holds it as a uint64 and DTMC enforces it: a trade on the offer pays at least this per output byte.
    if (BigInt(v) > MAX_UINT64) throw appError('Rejected', `policy.minOutputPrice must be at most ${MAX_UINT64} wei`, { param: 'policy' })
    policy.minOutputPrice = v
  }
  if (raw.allowedCodeHashes !== undefined) {
    const list = raw.allowedCodeHashes
    if (!Array.isArray(list) || list.length > MAX_ALLOWED_CODE_HASHES || !list.every(h => typeof h === 'string' && /^0x[0-9a-fA-F]{64}$/.test(h))) {
      throw appError('Rejected', `policy.allowedCodeHashes must be at most ${MAX_ALLOWED_CODE_HASHES} bytes32 hex strings`, { param: 'policy' })
    }
    policy.allowedCodeHashes = list.map(h => (h as string).toLowerCase())
  }
  if (raw.outputCap !== undefined) {
    const v = raw.outputCap
    if (!((typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0))) {
      throw appError('Rejected', 'policy.outputCap must be a byte count', { param: 'policy' })
    }
    policy.outputCap = String(v)
  }
  return policy
}
