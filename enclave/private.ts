// The private mode (docs/enclave.md "Private mode"): the sellers' privacy terms, the run's noise key, and the
// private precompiles, which compute over all sellers' records (the analysis never sees one) with each record's
// contribution bounded by the seller's clamping range and discrete noise (enclave/noise.ts) added.
//
// Accounting: epsilon-differential privacy for the addition or removal of one record (of any seller), with basic
// sequential composition: each call names the epsilon it spends, and the calls of one run spend at most the run's
// epsilon (a call that would exceed it fails and spends nothing). A call that splits its epsilon over several
// statistics (mean: 2, linear fit: 5) gives each an equal share, again by basic composition. The samplers' work is
// fixed (no timing channel), which makes each statistic (ε + 2^-50, 2^-64)-DP rather than exactly ε-DP: k
// statistics compose to (Σε + k·2^-50, k·2^-64).
//
// Nothing about the data may change what the analysis can observe other than the noisy values: a call fails only
// for its arguments, the sellers' (public) terms, its gas or the budget; a field that does not parse drops its
// record (a 1-stable transformation) instead of failing the call; the gas depends on the input size and the
// arguments only (PRIVATE_PRECOMPILE_GAS).
import { createHmac, hkdfSync } from 'node:crypto'
import type { ExecResult, PrecompileInput } from '@ethereumjs/evm'
import { getBytes } from 'ethers/utils'
import { SdteError } from '../config/errors.ts'
import {
  EPSILON_SCALE, FIXED_POINT_SCALE, MAX_PRIVATE_COLUMN_INDEX, MAX_QUANTILE_CANDIDATES, MAX_RUN_EPSILON,
  NOISE_CALL_TAG, NOISE_KEY_INFO, PRIVACY_SECRET_BYTES, QUANTILE_SCALE
} from './constants.ts'
import type { PrivacyColumn, RunPrivacy } from './messages.ts'
import { DiscreteLaplace, exponentialMechanism, NoiseStream } from './noise.ts'
import {
  encodeIntArray, encodeWords, failed, histogram, MAX_HISTOGRAM_BUCKETS, PrecompileInputError, PrecompileOutOfGasError,
  PRIVATE_PRECOMPILE_ADDRESSES, PRIVATE_PRECOMPILE_GAS, Reader, scanNumber
} from './precompiles.ts'
import type { PrivatePrecompileName } from './precompiles.ts'

const INT256_MAX = (1n << 255n) - 1n
const INT256_MIN = -(1n << 255n)

/**
 * The run's noise key: HKDF-SHA256(ikm = the sellers' secrets in trade order, salt = tradeId, info = NOISE_KEY_INFO).
 * Unpredictable to anyone who lacks one honest seller's secret; the same in every enclave of the trade.
 */
export function deriveNoiseKey (secrets: Uint8Array[], tradeId: string): Uint8Array {
  const ikm = new Uint8Array(secrets.length * PRIVACY_SECRET_BYTES)
  secrets.forEach((s, i) => ikm.set(s, i * PRIVACY_SECRET_BYTES))
  return new Uint8Array(hkdfSync('sha256', ikm, getBytes(tradeId), NOISE_KEY_INFO, 32))
}

/** The noise stream of the run's call number `seq` (0-based, in the order the calls were charged). */
export function callStream (noiseKey: Uint8Array, seq: number): NoiseStream {
  const counter = new Uint8Array(8)
  new DataView(counter.buffer).setBigUint64(0, BigInt(seq))
  return new NoiseStream(new Uint8Array(createHmac('sha256', noiseKey).update(NOISE_CALL_TAG).update(counter).digest()))
}

// ---- the records ----

/** A call that would spend more epsilon than the run has left: it fails like a bad input and spends nothing. */
export class PrivacyBudgetError extends SdteError {
  override name = 'PrivacyBudgetError'
  override code = 'ERR_PRIVACY_BUDGET'
}

const NL = 10
const CR = 13
const COMMA = 44

/**
 * Finds commas for one pass over a text: the first comma at or after a position, searched once for every byte
 * (positions only move forward). Searching afresh from each field would scan to the next comma of the whole text,
 * quadratic on a text without commas (the lesson of csvColumn, test/attacks/precompile-csv-superlinear-parse).
 */
class CommaCursor {
  private next = -1
  private readonly csv: Uint8Array
  constructor (csv: Uint8Array) { this.csv = csv }
  from (pos: number): number {
    if (this.next < pos) { this.next = this.csv.indexOf(COMMA, pos); if (this.next === -1) this.next = this.csv.length }
    return this.next
  }
}

/** Start and end of field `column` of the line [from, lineEnd), or undefined when the line has no such field. */
function fieldOf (commas: CommaCursor, from: number, lineEnd: number, column: number): [number, number] | undefined {
  let f = from
  for (let c = 0; c < column; c++) {
    const comma = commas.from(f)
    if (comma >= lineEnd) return undefined
    f = comma + 1
  }
  const e = commas.from(f)
  return [f, e > lineEnd ? lineEnd : e]
}

/**
 * The values of `columns` of every record of one seller's CSV (csvColumn's rules: \n-ended records, ',' fields,
 * empty lines skipped, the header skipped when the terms say so), each clamped to its column's range. A record
 * whose field in any of `columns` is missing or not a number is dropped: the call never fails for the data.
 */
function sellerRecords (csv: Uint8Array, skipHeader: boolean, columns: PrivacyColumn[], out: Int64List[]): void {
  const n = csv.length
  let pos = 0
  let headerPending = skipHeader
  const row: bigint[] = new Array(columns.length)
  // One cursor per column: each column's lookups move forward through the text, whatever order the columns are in.
  const cursors = columns.map(() => new CommaCursor(csv))
  while (pos < n) {
    let end = csv.indexOf(NL, pos)
    if (end === -1) end = n
    let lineEnd = end
    if (lineEnd > pos && csv[lineEnd - 1] === CR) lineEnd--
    const from = pos
    pos = end + 1
    if (lineEnd === from) continue
    if (headerPending) { headerPending = false; continue }
    let ok = true
    for (let k = 0; k < columns.length && ok; k++) {
      const c = columns[k]
      const field = fieldOf(cursors[k], from, lineEnd, c.column)
      if (field === undefined) { ok = false; break }
      const v = scanNumber(csv, field[0], field[1], c.decimals)
      if (typeof v === 'string') { ok = false; break }
      row[k] = v < c.lo ? c.lo : v > c.hi ? c.hi : v
    }
    if (!ok) continue
    for (let k = 0; k < columns.length; k++) out[k].push(row[k])
  }
}

/**
 * A growing list of int64 values in one buffer (clamped values fit: |v| <= MAX_CLAMP_ABS < 2^63). Up to 64 M
 * records of a 128 MiB input would take gigabytes of heap as bigint[]; as int64 they take 8 bytes each.
 */
class Int64List {
  private buf = new BigInt64Array(1024)
  length = 0
  push (v: bigint): void {
    if (this.length === this.buf.length) {
      const next = new BigInt64Array(this.buf.length * 2)
      next.set(this.buf)
      this.buf = next
    }
    this.buf[this.length++] = v
  }
  values (): BigInt64Array { return this.buf.subarray(0, this.length) }
}

/** The range a column's records lie in across sellers, and the decimals they share. */
interface ColumnDomain { lo: bigint, hi: bigint, decimals: number }

/** One private run: the sellers' records and terms, the budget left, the calls charged so far. */
export class PrivateRun {
  readonly epsilon: bigint
  readonly inputBytes: number
  private readonly noiseKey: Uint8Array
  private readonly inputs: Uint8Array[]
  private readonly sellers: RunPrivacy['sellers']
  private spentEpsilon = 0n
  private calls = 0
  private readonly cache = new Map<string, BigInt64Array[]>()

  constructor (privacy: RunPrivacy, inputs: Uint8Array[]) {
    if (privacy.sellers.length !== inputs.length) throw new RangeError('one set of terms per input')
    this.epsilon = privacy.epsilon
    this.noiseKey = Uint8Array.from(privacy.noiseKey)
    this.inputs = inputs
    this.sellers = privacy.sellers
    this.inputBytes = inputs.reduce((a, i) => a + i.length, 0)
  }

  get spent (): bigint { return this.spentEpsilon }
  get remaining (): bigint { return this.epsilon - this.spentEpsilon }

  /** The declared domain of `column` over all sellers; fails (public terms only) when a seller did not declare it. */
  domain (column: number): ColumnDomain {
    let d: ColumnDomain | undefined
    for (const s of this.sellers) {
      const c = s.columns.find(x => x.column === column)
      if (c === undefined) throw new PrecompileInputError(`column ${column} is not open to private analyses`)
      if (d === undefined) d = { lo: c.lo, hi: c.hi, decimals: c.decimals }
      else {
        if (c.decimals !== d.decimals) throw new PrecompileInputError(`column ${column} has different decimals across sellers`)
        if (c.lo < d.lo) d.lo = c.lo
        if (c.hi > d.hi) d.hi = c.hi
      }
    }
    if (d === undefined) throw new PrecompileInputError('a private run without sellers')
    return d
  }

  /** The clamped values of `columns` over all sellers' records, in trade order (records missing a field dropped). */
  records (columns: number[]): BigInt64Array[] {
    const key = columns.join(',')
    const hit = this.cache.get(key)
    if (hit !== undefined) return hit
    const lists = columns.map(() => new Int64List())
    this.sellers.forEach((s, i) => {
      sellerRecords(this.inputs[i], s.skipHeader, columns.map(c => s.columns.find(x => x.column === c)!), lists)
    })
    const out = lists.map(l => l.values())
    this.cache.set(key, out)
    return out
  }

  /** Charges `epsilon` (micro) to the run and returns the call's noise stream; over the budget it fails, charging nothing. */
  charge (epsilon: bigint): NoiseStream {
    if (epsilon < 1n) throw new PrecompileInputError('a private call must spend at least 1 micro-epsilon')
    if (this.spentEpsilon + epsilon > this.epsilon) throw new PrivacyBudgetError(`the call asks ${epsilon}, the run has ${this.epsilon - this.spentEpsilon} of ${this.epsilon} micro-epsilon left`)
    this.spentEpsilon += epsilon
    return callStream(this.noiseKey, this.calls++)
  }
}

// ---- the mechanisms (pure given the records and the stream; exported for the tests) ----

const max = (a: bigint, b: bigint): bigint => (a > b ? a : b)
const abs = (a: bigint): bigint => (a < 0n ? -a : a)
/** The discrete Laplace sampler for sensitivity `delta` at `epsilon` micro-epsilon split in `parts` equal shares: scale Δ·parts/ε. */
function laplaceFor (delta: bigint, epsilon: bigint, parts = 1n): DiscreteLaplace {
  const d = max(delta, 1n)
  return DiscreteLaplace.of(d * parts * EPSILON_SCALE, epsilon, d)
}
/** One draw of that noise (its work fixed by Δ, ε and parts: enclave/noise.ts). */
function noise (s: NoiseStream, delta: bigint, epsilon: bigint, parts = 1n): bigint {
  return laplaceFor(delta, epsilon, parts).sample(s)
}
/** An integer midpoint of [lo, hi] and the largest distance of a value of the range from it. */
function center (lo: bigint, hi: bigint): { mid: bigint, half: bigint } {
  const mid = (lo + hi) / 2n
  return { mid, half: max(hi - mid, mid - lo) }
}

/** Noisy count: n + DLap(1/ε). Sensitivity 1. */
export function dpCount (s: NoiseStream, values: ArrayLike<bigint>, epsilon: bigint): bigint {
  return BigInt(values.length) + noise(s, 1n, epsilon)
}

/** Noisy sum of clamped values: Σx + DLap(Δ/ε), Δ = max(|lo|, |hi|) of the column's domain. */
export function dpSum (s: NoiseStream, values: ArrayLike<bigint>, d: ColumnDomain, epsilon: bigint): bigint {
  let sum = 0n
  for (let i = 0; i < values.length; i++) sum += values[i]
  return sum + noise(s, max(abs(d.lo), abs(d.hi)), epsilon)
}

/**
 * Noisy mean (× 10^6) and noisy count, ε/2 each: the sum is taken of values shifted by the range's midpoint m
 * (sensitivity half the range's width instead of its largest magnitude), mean = m + Σ(x − m)~ / n~, kept within
 * [lo, hi]; m when n~ < 1. Everything after the two noisy statistics is post-processing.
 */
export function dpMean (s: NoiseStream, values: ArrayLike<bigint>, d: ColumnDomain, epsilon: bigint): { mean: bigint, count: bigint } {
  const { mid, half } = center(d.lo, d.hi)
  let shifted = 0n
  for (let i = 0; i < values.length; i++) shifted += values[i] - mid
  const count = BigInt(values.length) + noise(s, 1n, epsilon, 2n)
  const sum = shifted + noise(s, half, epsilon, 2n)
  let mean = mid * FIXED_POINT_SCALE
  if (count >= 1n) mean += (sum * FIXED_POINT_SCALE) / count
  const lo = d.lo * FIXED_POINT_SCALE
  const hi = d.hi * FIXED_POINT_SCALE
  return { mean: mean < lo ? lo : mean > hi ? hi : mean, count }
}

/** Noisy histogram (the histogram precompile's buckets) + DLap(1/ε) on each count: one record moves one count by one, L1 sensitivity 1. */
export function dpHistogram (s: NoiseStream, values: ArrayLike<bigint>, lo: bigint, width: bigint, buckets: number, epsilon: bigint): bigint[] {
  const dlap = laplaceFor(1n, epsilon)
  return histogram(values, lo, width, buckets).map(c => c + dlap.sample(s))
}

function countBelow (sorted: BigInt64Array, c: bigint): number {
  let a = 0; let b = sorted.length
  while (a < b) { const m = (a + b) >>> 1; if (sorted[m] < c) a = m + 1; else b = m }
  return a
}

/**
 * Private quantile by the exponential mechanism over the candidates lo + j·width (j < count), as OpenDP's
 * make_quantile_score_candidates + noisy max (Smith 2011): with α = q / 10^6, candidate c scores
 * |(10^6 − q)·#{x < c} − q·#{x > c}| (0 at the exact quantile), which one added or removed record changes by at
 * most Δ = max(q, 10^6 − q); the mechanism picks c with probability ∝ exp(−ε·score / (2Δ)) (noise.ts
 * exponentialMechanism: every candidate weighed, one draw, a fixed amount of work), and returns it.
 */
export function dpQuantile (s: NoiseStream, values: ArrayLike<bigint>, q: bigint, lo: bigint, width: bigint, count: number, epsilon: bigint): bigint {
  const sorted = BigInt64Array.from(values).sort()
  const n = BigInt(sorted.length)
  const scores: bigint[] = []
  for (let j = 0; j < count; j++) {
    const c = lo + BigInt(j) * width
    const below = BigInt(countBelow(sorted, c))
    const above = n - BigInt(countBelow(sorted, c + 1n))
    scores.push(abs((QUANTILE_SCALE - q) * below - q * above))
  }
  const delta = max(q, QUANTILE_SCALE - q)
  return lo + BigInt(exponentialMechanism(s, scores, epsilon, 2n * delta * EPSILON_SCALE, delta)) * width
}

/**
 * Private least squares y = slope·x + intercept (× 10^6, as the linearFit precompile) from noisy sufficient
 * statistics of the centred, clamped pairs (x' = x − mx, y' = y − my), ε/5 each: n (Δ 1), Σx' (Δ hx), Σy' (Δ hy),
 * Σx'² (Δ hx²), Σx'y' (Δ hx·hy), hx and hy the half-widths of the ranges. Slope and intercept follow by
 * post-processing; both 0 when n~ < 2 or the noisy variance of x is not positive.
 */
export function dpLinearFit (s: NoiseStream, xs: ArrayLike<bigint>, ys: ArrayLike<bigint>, dx: ColumnDomain, dy: ColumnDomain, epsilon: bigint): { count: bigint, slope: bigint, intercept: bigint } {
  const cx = center(dx.lo, dx.hi)
  const cy = center(dy.lo, dy.hi)
  let sx = 0n; let sy = 0n; let sxx = 0n; let sxy = 0n
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] - cx.mid; const y = ys[i] - cy.mid
    sx += x; sy += y; sxx += x * x; sxy += x * y
  }
  const n = BigInt(xs.length) + noise(s, 1n, epsilon, 5n)
  sx += noise(s, cx.half, epsilon, 5n)
  sy += noise(s, cy.half, epsilon, 5n)
  sxx += noise(s, cx.half * cx.half, epsilon, 5n)
  sxy += noise(s, cx.half * cy.half, epsilon, 5n)
  const den = n * sxx - sx * sx
  if (n < 2n || den <= 0n) return { count: n, slope: 0n, intercept: 0n }
  const slope = ((n * sxy - sx * sy) * FIXED_POINT_SCALE) / den
  const shiftedIntercept = (sy * FIXED_POINT_SCALE - slope * sx) / n
  // A tiny noisy variance can make both huge; saturating them (post-processing) keeps the call from failing
  // for the data (a result out of int256 would fail it).
  return { count: n, slope: saturate(slope), intercept: saturate(shiftedIntercept + cy.mid * FIXED_POINT_SCALE - slope * cx.mid) }
}

const saturate = (v: bigint): bigint => (v > INT256_MAX ? INT256_MAX : v < INT256_MIN ? INT256_MIN : v)

// ---- the precompiles ----

/** The gas of a private call: the input size and the call's arguments only, never the records. */
export function privatePriceOf (name: PrivatePrecompileName, inputBytes: number, items: number): bigint {
  const p = PRIVATE_PRECOMPILE_GAS[name]
  return p.base + p.perByte * BigInt(inputBytes) + p.perItem * BigInt(items)
}

function pay (gas: bigint, gasLimit: bigint): void {
  if (gas > gasLimit) throw new PrecompileOutOfGasError(`needs ${gas} gas, has ${gasLimit}`)
}

function epsilonArg (r: Reader, at: number): bigint {
  const e = r.int(at)
  if (e < 1n || e > MAX_RUN_EPSILON) throw new PrecompileInputError(`epsilon must be 1..${MAX_RUN_EPSILON} micro-epsilon`)
  return e
}

function columnArg (r: Reader, at: number): number { return r.uint(at, MAX_PRIVATE_COLUMN_INDEX) }

type PrivateImplementation = (r: Reader, gasLimit: bigint, run: PrivateRun) => { returnValue: Uint8Array, gas: bigint }

// Each reads and checks its arguments, pays, charges the budget, and only then reads records.
const PRIVATE_IMPLEMENTATIONS: Record<PrivatePrecompileName, PrivateImplementation> = {
  privateCount: (r, gasLimit, run) => {
    const column = columnArg(r, 0)
    const epsilon = epsilonArg(r, 32)
    run.domain(column)
    const gas = privatePriceOf('privateCount', run.inputBytes, 0)
    pay(gas, gasLimit)
    const s = run.charge(epsilon)
    return { returnValue: encodeWords([dpCount(s, run.records([column])[0], epsilon)]), gas }
  },
  privateSum: (r, gasLimit, run) => {
    const column = columnArg(r, 0)
    const epsilon = epsilonArg(r, 32)
    const d = run.domain(column)
    const gas = privatePriceOf('privateSum', run.inputBytes, 0)
    pay(gas, gasLimit)
    const s = run.charge(epsilon)
    return { returnValue: encodeWords([dpSum(s, run.records([column])[0], d, epsilon)]), gas }
  },
  privateMean: (r, gasLimit, run) => {
    const column = columnArg(r, 0)
    const epsilon = epsilonArg(r, 32)
    const d = run.domain(column)
    const gas = privatePriceOf('privateMean', run.inputBytes, 0)
    pay(gas, gasLimit)
    const s = run.charge(epsilon)
    const m = dpMean(s, run.records([column])[0], d, epsilon)
    return { returnValue: encodeWords([m.mean, m.count]), gas }
  },
  privateHistogram: (r, gasLimit, run) => {
    const column = columnArg(r, 0)
    const lo = r.int(32)
    const width = r.int(64)
    const buckets = r.uint(96, MAX_HISTOGRAM_BUCKETS)
    const epsilon = epsilonArg(r, 128)
    if (width <= 0n) throw new PrecompileInputError('histogram width must be positive')
    if (buckets < 1) throw new PrecompileInputError('bucket count out of range')
    run.domain(column)
    const gas = privatePriceOf('privateHistogram', run.inputBytes, buckets)
    pay(gas, gasLimit)
    const s = run.charge(epsilon)
    return { returnValue: encodeIntArray(dpHistogram(s, run.records([column])[0], lo, width, buckets, epsilon)), gas }
  },
  privateQuantile: (r, gasLimit, run) => {
    const column = columnArg(r, 0)
    const q = r.int(32)
    const lo = r.int(64)
    const width = r.int(96)
    const count = r.uint(128, MAX_QUANTILE_CANDIDATES)
    const epsilon = epsilonArg(r, 160)
    if (q < 0n || q > QUANTILE_SCALE) throw new PrecompileInputError(`quantile must be 0..${QUANTILE_SCALE} (parts per million)`)
    if (width <= 0n || count < 1) throw new PrecompileInputError('candidates need a positive width and count')
    const last = lo + BigInt(count - 1) * width
    if (last > INT256_MAX || last < INT256_MIN) throw new PrecompileInputError('candidates out of int256 range')
    run.domain(column)
    const gas = privatePriceOf('privateQuantile', run.inputBytes, count)
    pay(gas, gasLimit)
    const s = run.charge(epsilon)
    return { returnValue: encodeWords([dpQuantile(s, run.records([column])[0], q, lo, width, count, epsilon)]), gas }
  },
  privateLinearFit: (r, gasLimit, run) => {
    const xColumn = columnArg(r, 0)
    const yColumn = columnArg(r, 32)
    const epsilon = epsilonArg(r, 64)
    if (xColumn === yColumn) throw new PrecompileInputError('x and y must be different columns')
    const dx = run.domain(xColumn)
    const dy = run.domain(yColumn)
    const gas = privatePriceOf('privateLinearFit', run.inputBytes, 0)
    pay(gas, gasLimit)
    const s = run.charge(epsilon)
    const [xs, ys] = run.records([xColumn, yColumn])
    const f = dpLinearFit(s, xs, ys, dx, dy, epsilon)
    return { returnValue: encodeWords([f.count, f.slope, f.intercept]), gas }
  }
}

/** Wraps one private function as an @ethereumjs/evm precompile bound to the run. A failure consumes the gas passed. */
export function makePrivatePrecompile (name: PrivatePrecompileName, run: PrivateRun): (input: PrecompileInput) => ExecResult {
  const impl = PRIVATE_IMPLEMENTATIONS[name]
  return (input: PrecompileInput): ExecResult => {
    try {
      const result = impl(new Reader(input.data), input.gasLimit, run)
      return { returnValue: result.returnValue, executionGasUsed: result.gas }
    } catch (err) {
      if (err instanceof PrecompileInputError || err instanceof PrecompileOutOfGasError || err instanceof PrivacyBudgetError || err instanceof RangeError) {
        return failed(input.gasLimit)
      }
      throw err
    }
  }
}

/** The private precompile table as data: part of the EVM configuration, hence of the measurement. */
export function privatePrecompileTable (): Array<{ name: PrivatePrecompileName, address: string, gas: { base: string, perByte: string, perItem: string } }> {
  return (Object.keys(PRIVATE_PRECOMPILE_ADDRESSES) as PrivatePrecompileName[]).map(name => ({
    name,
    address: PRIVATE_PRECOMPILE_ADDRESSES[name],
    gas: { base: String(PRIVATE_PRECOMPILE_GAS[name].base), perByte: String(PRIVATE_PRECOMPILE_GAS[name].perByte), perItem: String(PRIVATE_PRECOMPILE_GAS[name].perItem) }
  }))
}
