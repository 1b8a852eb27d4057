// The analytics precompiles of the confined EVM: the heavy loops of data analysis (parse a numeric
// CSV column, sum / mean / variance / min / max, sort, histogram, range count, least-squares line),
// run natively and priced in gas per input byte or element. Deterministic: integer arithmetic only,
// every rounding rule fixed below. Each takes `abi.encode(...)` of its arguments as call data and
// returns `abi.encode(...)` of its results, so Solidity calls them with
// `address(0x0a00).staticcall(abi.encode(...))` and `abi.decode(ret, (...))`.
//
// Fixed point: derived values (mean, variance, slope, intercept) are scaled by 10^6
// (FIXED_POINT_SCALE) relative to the unit of the input values; division truncates toward zero
// (Solidity's signed division). A CSV column is parsed with `decimals` digits of fraction
// (value = round-toward-zero(x * 10^decimals)), so 12.5 with decimals = 2 is 1250.
//
// A failing call (malformed input, a value outside int256, too many buckets, too little gas for
// what its arguments ask: checked before the work, see PRECOMPILE_GAS) consumes all the gas
// passed to it and returns nothing, like the standard precompiles; the contract's staticcall
// returns false.
import { SdteError } from '../config/errors.ts'
import type { EVMError, ExecResult, PrecompileInput } from '@ethereumjs/evm'
import { FIXED_POINT_SCALE, MAX_CSV_DECIMALS, MAX_EVM_MEMORY } from './constants.ts'

export const PRECOMPILE_ADDRESSES = {
  csvColumn: '0x0000000000000000000000000000000000000a00',
  stats: '0x0000000000000000000000000000000000000a01',
  sort: '0x0000000000000000000000000000000000000a02',
  histogram: '0x0000000000000000000000000000000000000a03',
  countInRange: '0x0000000000000000000000000000000000000a04',
  linearFit: '0x0000000000000000000000000000000000000a05',
  // Fused: parse column(s) of CSV texts and compute in one pass, no int256 column through EVM memory
  // (0x0a06..0x0a0f are the private precompiles' range).
  csvStats: '0x0000000000000000000000000000000000000a10',
  csvHistogram: '0x0000000000000000000000000000000000000a11',
  csvCountInRange: '0x0000000000000000000000000000000000000a12',
  csvLinearFit: '0x0000000000000000000000000000000000000a13',
  csvQuantile: '0x0000000000000000000000000000000000000a14'
} as const
export type PrecompileName = keyof typeof PRECOMPILE_ADDRESSES

/**
 * The private precompiles (enclave/private.ts), present only in a private run (docs/enclave.md "Private mode"):
 * they read all sellers' records themselves, clamp them to the sellers' declared ranges and add noise. In an
 * ordinary run a STATICCALL to them is refused (status Forbidden), as to any address not in the table.
 */
export const PRIVATE_PRECOMPILE_ADDRESSES = {
  privateCount: '0x0000000000000000000000000000000000000a06',
  privateSum: '0x0000000000000000000000000000000000000a07',
  privateMean: '0x0000000000000000000000000000000000000a08',
  privateHistogram: '0x0000000000000000000000000000000000000a09',
  privateQuantile: '0x0000000000000000000000000000000000000a0a',
  privateLinearFit: '0x0000000000000000000000000000000000000a0b'
} as const
export type PrivatePrecompileName = keyof typeof PRIVATE_PRECOMPILE_ADDRESSES

/**
 * Gas prices. `base` per call, `perByte` per byte of call data, `perItem` per record/element
 * (for sort: per element times ceil(log2(n + 1)), the n log n comparisons of a sort; for histogram
 * the buckets count as items too). Chosen from bench/enclave/precompiles.ts so that, on the worst
 * input known for each (values that need all 256 bits, records of two bytes, the widest numbers),
 * a precompile costs the node at most MAX_CPU_MS_PER_MGAS (constants.ts) of CPU: gas stays a fair measure of the
 * node's work, which is what nodes are paid for.
 *
 * Every price is charged before the work it pays for (`makePrecompile`): the array precompiles
 * read only the ABI heads (offsets, lengths, scalar arguments) and compare `priceOf(...)` with the
 * gas limit before they read an element; csvColumn checks `base + perByte × bytes` before it scans
 * and stops at the first record the remaining gas does not pay for. An underfunded call fails
 * having done work proportional to nothing but its ABI head.
 */
export const PRECOMPILE_GAS = {
  csvColumn: { base: 200n, perByte: 1n, perItem: 8n },
  stats: { base: 200n, perByte: 0n, perItem: 6n },
  sort: { base: 200n, perByte: 0n, perItem: 4n },
  histogram: { base: 200n, perByte: 0n, perItem: 8n },
  countInRange: { base: 200n, perByte: 0n, perItem: 6n },
  linearFit: { base: 200n, perByte: 0n, perItem: 8n },
  // The fused ones: csvColumn's scan and record prices plus the computation's per element (two columns
  // parsed for csvLinearFit; sort's n log n for csvQuantile), so that their slow path (a value beyond the
  // fast one's ±2^52: csvColumn's parse and the bigint functions, after the fast parse gave up) stays paid.
  csvStats: { base: 200n, perByte: 1n, perItem: 14n },
  csvHistogram: { base: 200n, perByte: 1n, perItem: 16n },
  csvCountInRange: { base: 200n, perByte: 1n, perItem: 14n },
  csvLinearFit: { base: 200n, perByte: 1n, perItem: 24n },
  csvQuantile: { base: 200n, perByte: 1n, perItem: 4n }
} as const satisfies Record<PrecompileName, { base: bigint, perByte: bigint, perItem: bigint }>

/**
 * Gas of the private precompiles: `base + perByte × all sellers' input bytes + perItem × buckets or candidates`.
 * Never the number of records, nor anything else of the data: an analysis reads its remaining gas (GAS) and the
 * buyer the gas used, so a price that followed the records would leak their count exactly. The input size is
 * public (each seller's size is in its listing and its delivery). Per byte: each call parses the CSV once (about
 * csvColumn's 1 a byte plus 8 a record of two bytes or more), then clamps and sums (count, sum, mean, histogram)
 * or sorts and scores (quantile) or squares (linear fit, two columns).
 */
export const PRIVATE_PRECOMPILE_GAS = {
  privateCount: { base: 2000n, perByte: 8n, perItem: 0n },
  privateSum: { base: 2000n, perByte: 8n, perItem: 0n },
  privateMean: { base: 2000n, perByte: 8n, perItem: 0n },
  privateHistogram: { base: 2000n, perByte: 8n, perItem: 200n },
  privateQuantile: { base: 2000n, perByte: 16n, perItem: 2000n },
  privateLinearFit: { base: 2000n, perByte: 16n, perItem: 0n }
} as const satisfies Record<PrivatePrecompileName, { base: bigint, perByte: bigint, perItem: bigint }>

/** Most buckets a histogram call may ask for. */
export const MAX_HISTOGRAM_BUCKETS = 4096
/**
 * Most records one csvColumn call returns: its output (32 bytes a record) must fit in half the EVM's
 * memory bound, or a CSV of tiny records would make the precompile allocate gigabytes that the
 * contract could never copy into its memory anyway.
 */
export const MAX_CSV_RECORDS = Math.floor(MAX_EVM_MEMORY / 2 / 32)

const INT256_MAX = (1n << 255n) - 1n
const INT256_MIN = -(1n << 255n)
const UINT256_MAX = (1n << 256n) - 1n

/** A precompile input the function refuses; the call fails and consumes its gas. */
export class PrecompileInputError extends SdteError {
  override name = 'PrecompileInputError'
  override code = 'ERR_PRECOMPILE_INPUT'
}

/** The gas given to a precompile does not pay for the work its arguments ask; the call fails and consumes its gas. */
export class PrecompileOutOfGasError extends SdteError {
  override name = 'PrecompileOutOfGasError'
  override code = 'ERR_PRECOMPILE_OUT_OF_GAS'
}

// ---- ABI helpers (strict: the offsets must be canonical and in bounds) ----

export class Reader {
  readonly view: DataView
  readonly bytes: Uint8Array
  constructor (bytes: Uint8Array) { this.bytes = bytes; this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) }
  /** Word at byte offset as a small non-negative integer (offsets, lengths, counts). */
  uint (at: number, max = 0xffffffff): number {
    if (at + 32 > this.bytes.length) throw new PrecompileInputError('input too short')
    for (let i = at; i < at + 24; i++) if (this.bytes[i] !== 0) throw new PrecompileInputError('integer out of range')
    const v = this.view.getBigUint64(at + 24)
    if (v > BigInt(max)) throw new PrecompileInputError('integer out of range')
    return Number(v)
  }
  int (at: number): bigint {
    if (at + 32 > this.bytes.length) throw new PrecompileInputError('input too short')
    return readInt256(this.bytes, this.view, at)
  }
  bytesAt (headAt: number): Uint8Array {
    const off = this.uint(headAt)
    const len = this.uint(off)
    if (off + 32 + len > this.bytes.length) throw new PrecompileInputError('bytes out of bounds')
    return this.bytes.subarray(off + 32, off + 32 + len)
  }
  /** The bytes[] whose head is at `headAt`, every element checked in bounds (reads the heads, not the bytes). */
  bytesArrayAt (headAt: number): Uint8Array[] {
    const off = this.uint(headAt)
    const len = this.uint(off)
    const base = off + 32
    if (base + len * 32 > this.bytes.length) throw new PrecompileInputError('array out of bounds')
    const out: Uint8Array[] = []
    for (let i = 0; i < len; i++) {
      const at = base + this.uint(base + 32 * i)
      const size = this.uint(at)
      if (at + 32 + size > this.bytes.length) throw new PrecompileInputError('bytes out of bounds')
      out.push(this.bytes.subarray(at + 32, at + 32 + size))
    }
    return out
  }
  /** Length of the int256[] whose head is at `headAt`, checked in bounds; reads no element. */
  arrayLength (headAt: number): number {
    const off = this.uint(headAt)
    const len = this.uint(off)
    if (off + 32 + len * 32 > this.bytes.length) throw new PrecompileInputError('array out of bounds')
    return len
  }
  intArrayAt (headAt: number): Column {
    const len = this.arrayLength(headAt)
    return readColumn(this.bytes, this.view, this.uint(headAt) + 32, len)
  }
}

function readInt256 (bytes: Uint8Array, view: DataView, at: number): bigint {
  const fill = bytes[at] === 0xff ? 0xff : 0
  let small = bytes[at] === 0 || bytes[at] === 0xff
  if (small) for (let i = at + 1; i < at + 24; i++) if (bytes[i] !== fill) { small = false; break }
  if (small && ((bytes[at + 24] & 0x80) !== 0) === (fill === 0xff)) return view.getBigInt64(at + 24)
  let v = 0n
  for (let i = at; i < at + 32; i += 8) v = (v << 64n) | view.getBigUint64(i)
  return v > INT256_MAX ? v - (1n << 256n) : v
}

/** A column of int256 values: int64 values in a BigInt64Array (the common case), others as bigint[]. */
export type Column = BigInt64Array | bigint[]

function readColumn (bytes: Uint8Array, view: DataView, start: number, len: number): Column {
  const small = new BigInt64Array(len)
  for (let i = 0; i < len; i++) {
    const v = readInt256(bytes, view, start + i * 32)
    if (v !== BigInt.asIntN(64, v)) {
      const big: bigint[] = Array.from(small.subarray(0, i))
      for (let j = i; j < len; j++) big.push(readInt256(bytes, view, start + j * 32))
      return big
    }
    small[i] = v
  }
  return small
}

class Writer {
  readonly bytes: Uint8Array
  readonly view: DataView
  constructor (size: number) { this.bytes = new Uint8Array(size); this.view = new DataView(this.bytes.buffer) }
  int (at: number, v: bigint): void {
    if (v > INT256_MAX || v < INT256_MIN) throw new PrecompileInputError('result out of int256 range')
    if (v === BigInt.asIntN(64, v)) {
      if (v < 0n) this.bytes.fill(0xff, at, at + 24)
      this.view.setBigInt64(at + 24, v)
      return
    }
    let u = v < 0n ? v + (1n << 256n) : v
    for (let i = at + 24; i >= at; i -= 8) { this.view.setBigUint64(i, BigInt.asUintN(64, u)); u >>= 64n }
  }
  uint (at: number, v: bigint): void {
    if (v < 0n || v > UINT256_MAX) throw new PrecompileInputError('result out of uint256 range')
    let u = v
    for (let i = at + 24; i >= at; i -= 8) { this.view.setBigUint64(i, BigInt.asUintN(64, u)); u >>= 64n }
  }
}

/** abi.encode(int256[] values) (or uint256[] when all values are non-negative). */
export function encodeIntArray (values: ArrayLike<bigint>): Uint8Array {
  const w = new Writer(64 + values.length * 32)
  w.uint(0, 32n)
  w.uint(32, BigInt(values.length))
  for (let i = 0; i < values.length; i++) w.int(64 + i * 32, values[i])
  return w.bytes
}

export function encodeWords (values: bigint[]): Uint8Array {
  const w = new Writer(values.length * 32)
  values.forEach((v, i) => w.int(i * 32, v))
  return w.bytes
}

// ---- the functions themselves (pure; also used by tests and the benchmark's baseline) ----

const NL = 10
const CR = 13
const COMMA = 44
const SPACE = 32
const TAB = 9
const MINUS = 45
const PLUS = 43
const DOT = 46
const ZERO = 48

/**
 * Most significant digits a CSV number may have: int256 holds 77 (2^255 ≈ 5.8 × 10^76), so a longer
 * one is out of range, and refusing it at that digit keeps a megabyte-long field from costing
 * quadratic bigint arithmetic before the range check.
 */
export const MAX_CSV_NUMBER_DIGITS = 77

/**
 * Parses column `column` (0-based) of CSV-like text: records end with \n (a \r before it is
 * dropped), fields are split by ',', no quoting; empty lines are skipped; with `skipHeader` the
 * first non-empty line is skipped. A field is [spaces] [+|-] digits [. digits] [spaces]; fraction
 * digits beyond `decimals` are truncated. Any other field, or a record without that column, fails.
 * More than `maxRecords` records (what the caller's gas pays for) fails with PrecompileOutOfGasError
 * at the first record past it; more than MAX_CSV_RECORDS with PrecompileInputError.
 * Linear in the text: every byte is looked at a bounded number of times.
 */
export function parseCsvColumn (csv: Uint8Array, column: number, decimals: number, skipHeader: boolean, maxRecords = MAX_CSV_RECORDS): bigint[] {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_CSV_DECIMALS) throw new PrecompileInputError('decimals out of range')
  const out: bigint[] = []
  const n = csv.length
  let pos = 0
  let headerPending = skipHeader
  // The first comma at or after the last place searched (n when there is none): positions only move
  // forward, so each byte is scanned for a comma once, whatever the lines look like. (Searching
  // from each field afresh scans to the next comma of the whole text: quadratic without commas.)
  let nextComma = -1
  const commaFrom = (from: number): number => {
    if (nextComma < from) { nextComma = csv.indexOf(COMMA, from); if (nextComma === -1) nextComma = n }
    return nextComma
  }
  while (pos < n) {
    let end = csv.indexOf(NL, pos)
    if (end === -1) end = n
    let lineEnd = end
    if (lineEnd > pos && csv[lineEnd - 1] === CR) lineEnd--
    if (lineEnd === pos) { pos = end + 1; continue }
    if (headerPending) { headerPending = false; pos = end + 1; continue }
    if (out.length >= MAX_CSV_RECORDS) throw new PrecompileInputError(`more than ${MAX_CSV_RECORDS} records`)
    if (out.length >= maxRecords) throw new PrecompileOutOfGasError(`more than the ${maxRecords} records the gas pays for`)
    // find the field
    let f = pos
    for (let c = 0; c < column; c++) {
      const comma = commaFrom(f)
      if (comma >= lineEnd) throw new PrecompileInputError(`record has no column ${column}`)
      f = comma + 1
    }
    let fe = commaFrom(f)
    if (fe > lineEnd) fe = lineEnd
    out.push(parseNumber(csv, f, fe, decimals))
    pos = end + 1
  }
  return out
}

const CHUNK_DIGITS = 15
const CHUNK_SCALE = 10n ** BigInt(CHUNK_DIGITS)

function parseNumber (b: Uint8Array, start: number, end: number, decimals: number): bigint {
  const v = scanNumber(b, start, end, decimals)
  if (typeof v === 'string') throw new PrecompileInputError(v)
  return v
}

/**
 * The number in b[start, end) with `decimals` digits of fraction, or why it is none (a message): the private
 * precompiles drop such a record, and an exception per bad field would cost them more than the field's gas.
 */
export function scanNumber (b: Uint8Array, start: number, end: number, decimals: number): bigint | string {
  while (start < end && (b[start] === SPACE || b[start] === TAB)) start++
  while (end > start && (b[end - 1] === SPACE || b[end - 1] === TAB)) end--
  let neg = false
  if (start < end && (b[start] === MINUS || b[start] === PLUS)) { neg = b[start] === MINUS; start++ }
  let digits = 0
  let fracDigits = 0
  let significant = 0
  let inFrac = false
  // Digits accumulate 15 at a time in a double (exact), then into a bigint: linear in the digits,
  // which MAX_CSV_NUMBER_DIGITS bounds.
  let chunk = 0
  let chunkDigits = 0
  let big = 0n
  for (let i = start; i < end; i++) {
    const c = b[i]
    if (c === DOT && !inFrac) { inFrac = true; continue }
    const d = c - ZERO
    if (d < 0 || d > 9) return 'field is not a number'
    digits++
    if (inFrac) { if (fracDigits >= decimals) continue; fracDigits++ }
    if (significant === 0 && d === 0) continue // leading zeros add nothing
    if (++significant > MAX_CSV_NUMBER_DIGITS) return 'number out of int256 range'
    chunk = chunk * 10 + d
    if (++chunkDigits === CHUNK_DIGITS) { big = big * CHUNK_SCALE + BigInt(chunk); chunk = 0; chunkDigits = 0 }
  }
  if (digits === 0) return 'field is not a number'
  let v = big === 0n ? BigInt(chunk) : big * 10n ** BigInt(chunkDigits) + BigInt(chunk)
  if (fracDigits < decimals) v *= 10n ** BigInt(decimals - fracDigits)
  if (neg) v = -v
  if (v > INT256_MAX || v < INT256_MIN) return 'number out of int256 range'
  return v
}

export interface Stats { count: bigint, sum: bigint, min: bigint, max: bigint, mean: bigint, variance: bigint }

/**
 * count, sum, min, max; mean = trunc(sum * 10^6 / count);
 * variance (population) = (count * Σx² - (Σx)²) * 10^6 / count², truncated. All zero when empty.
 */
export function computeStats (values: ArrayLike<bigint>): Stats {
  const n = values.length
  if (n === 0) return { count: 0n, sum: 0n, min: 0n, max: 0n, mean: 0n, variance: 0n }
  let sum = 0n
  let sumSq = 0n
  let min = values[0]
  let max = values[0]
  for (let i = 0; i < n; i++) {
    const v = values[i]
    sum += v
    sumSq += v * v
    if (v < min) min = v
    if (v > max) max = v
  }
  return statsOf(BigInt(n), sum, sumSq, min, max)
}

/** The Stats of `count` (> 0) values from their sum, sum of squares, min and max. */
function statsOf (count: bigint, sum: bigint, sumSq: bigint, min: bigint, max: bigint): Stats {
  return { count, sum, min, max, mean: (sum * FIXED_POINT_SCALE) / count, variance: ((count * sumSq - sum * sum) * FIXED_POINT_SCALE) / (count * count) }
}

/** Ascending. int64 columns sort natively (BigInt64Array's numeric sort); wider ones by comparison. */
export function sortValues (values: Column): ArrayLike<bigint> {
  if (values instanceof BigInt64Array) return values.slice().sort()
  return values.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

/** counts[i] = #{x : lo + i*width <= x < lo + (i+1)*width}; values below lo count in bucket 0, values above in the last. */
export function histogram (values: ArrayLike<bigint>, lo: bigint, width: bigint, buckets: number): bigint[] {
  if (width <= 0n) throw new PrecompileInputError('histogram width must be positive')
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_HISTOGRAM_BUCKETS) throw new PrecompileInputError('bucket count out of range')
  const counts = new Array<number>(buckets).fill(0)
  const last = BigInt(buckets - 1)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    let b = v < lo ? 0n : (v - lo) / width
    if (b > last) b = last
    counts[Number(b)]++
  }
  return counts.map(BigInt)
}

/** #{x : lo <= x <= hi}. */
export function countInRange (values: ArrayLike<bigint>, lo: bigint, hi: bigint): bigint {
  let c = 0
  for (let i = 0; i < values.length; i++) { const v = values[i]; if (v >= lo && v <= hi) c++ }
  return BigInt(c)
}

export interface LinearFit { count: bigint, slope: bigint, intercept: bigint }

/**
 * Least squares y = slope·x + intercept over pairs (xs[i], ys[i]), both scaled by 10^6:
 * slope = trunc((nΣxy − ΣxΣy)·10^6 / (nΣx² − (Σx)²)), intercept = trunc((Σy·10^6 − slope·Σx) / n).
 * When n < 2 or all x are equal the fit is undefined: slope = intercept = 0.
 */
export function linearFit (xs: ArrayLike<bigint>, ys: ArrayLike<bigint>): LinearFit {
  if (xs.length !== ys.length) throw new PrecompileInputError('x and y columns differ in length')
  const n = BigInt(xs.length)
  let sx = 0n; let sy = 0n; let sxx = 0n; let sxy = 0n
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]; const y = ys[i]
    sx += x; sy += y; sxx += x * x; sxy += x * y
  }
  return fitOf(n, sx, sy, sxx, sxy)
}

/** The least-squares fit of n pairs from their sums Σx, Σy, Σx², Σxy. */
function fitOf (n: bigint, sx: bigint, sy: bigint, sxx: bigint, sxy: bigint): LinearFit {
  const den = n * sxx - sx * sx
  if (n < 2n || den === 0n) return { count: n, slope: 0n, intercept: 0n }
  const slope = ((n * sxy - sx * sy) * FIXED_POINT_SCALE) / den
  const intercept = (sy * FIXED_POINT_SCALE - slope * sx) / n
  return { count: n, slope, intercept }
}

// ---- the fused precompiles: parse and compute in one pass ----
//
// Why hand-written: the column (or two) is parsed from the CSV bytes straight into doubles and reduced as it
// comes, with no bigint per record and no int256 array through EVM memory (32 bytes a value, written by
// csvColumn, copied by the contract, decoded by the next precompile): that traffic was most of the time of
// the precompile builds against DuckDB (issue 13). The rules are csvColumn's, byte for byte; results are exact.
//
// Fast path: every value an integer of magnitude at most FAST_MAX (2^52), so a double holds it exactly, and
// so does the sum of two; a running sum is kept in a double while it stays within FAST_MAX and moved into a
// bigint when it passes it ("the exact-sum rule"), squares and products are taken in doubles only below 2^26
// (then < 2^52), else in bigints.
// A value beyond FAST_MAX makes the fast parse give up (FastRangeExceeded) and the call is computed again
// on the slow path: csvColumn's parser and the bigint functions above. Both paths give the same result.

/** Largest magnitude of a value on the fast path: |a| ≤ 2^52 and |b| ≤ 2^52 make a + b exact in a double. */
const FAST_MAX = 2 ** 52
/** Below it a square or a product of two values is under 2^52, exact in a double. */
const FAST_PRODUCT_MAX = 2 ** 26
/** A fast-path number takes another digit only below it: 9·10^14 · 10 + 9 < 2^53, exact. */
const FAST_ACCUMULATE_MAX = 9e14
/** Values passed to a sink at a time. */
const FAST_CHUNK = 4096
/** Below it, FAST_CHUNK squares or products sum to less than 2^52: 4096 · (2^20)² = 2^52. */
const FAST_CHUNK_SMALL = 2 ** 20
const POW10 = Array.from({ length: MAX_CSV_DECIMALS + 1 }, (_, i) => 10 ** i) // exact: 10^22 is the last exact power

/** Thrown by the fast parse at a value it cannot hold exactly; the caller computes again on the slow path. */
class FastRangeExceeded extends Error {}

/** Receives a chunk of parsed values: cols[i][0..n) is column columns[i] of the next n records. */
type Sink = (cols: Float64Array[], n: number) => void

/**
 * slot[f] = the index in `distinct` of field f, or -1 when field f is not wanted, for every field a record of `csvs`
 * can reach: no more entries than the texts have bytes (a field after the first needs a comma), however large a
 * column index the call names (up to 2^20: a table of 4 MiB that only the scan's flat price paid for, a review found).
 * A wanted column past the table can be in no record: reaching it fails as "record has no column".
 */
export function fieldSlots (distinct: number[], csvs: Uint8Array[]): Int32Array {
  const longest = csvs.reduce((most, csv) => Math.max(most, csv.length), 0)
  const slot = new Int32Array(Math.min(Math.max(...distinct), longest) + 1).fill(-1)
  distinct.forEach((c, i) => { if (c < slot.length) slot[c] = i })
  return slot
}

/**
 * Parses columns `columns` of every text in `csvs` (csvColumn's rules, each text's header skipped with
 * `skipHeader`) on the fast path, handing the values to `sink` FAST_CHUNK records at a time. Returns the
 * record count. Throws PrecompileInputError where csvColumn would, PrecompileOutOfGasError past
 * `maxRecords` records in all, and FastRangeExceeded at a value beyond ±FAST_MAX (or of more than
 * more digits than a double holds exactly: past FAST_ACCUMULATE_MAX). Linear: each byte is looked at once, the bytes after a record's last
 * wanted field by indexOf.
 */
export function scanCsvFast (csvs: Uint8Array[], columns: number[], decimals: number, skipHeader: boolean, maxRecords: number, sink: Sink): number {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_CSV_DECIMALS) throw new PrecompileInputError('decimals out of range')
  const last = Math.max(...columns)
  // One buffer per distinct column; slot[f] = the buffer of field f, or -1 when f is not wanted.
  const distinct = [...new Set(columns)]
  const buffers = distinct.map(() => new Float64Array(FAST_CHUNK))
  const slot = fieldSlots(distinct, csvs)
  const bufs = columns.map(c => buffers[slot[c]]) // what the sink sees: one per asked column, in order
  let fill = 0
  let records = 0
  for (const csv of csvs) {
    const n = csv.length
    let pos = 0
    let headerPending = skipHeader
    while (pos < n) {
      let c = csv[pos]
      // an empty line, or one of a lone \r: not a record
      if (c === NL) { pos++; continue }
      if (c === CR && (pos + 1 === n || csv[pos + 1] === NL)) { pos += 2; continue }
      if (headerPending) {
        headerPending = false
        const e = csv.indexOf(NL, pos)
        pos = e === -1 ? n : e + 1
        continue
      }
      if (records >= MAX_CSV_RECORDS) throw new PrecompileInputError(`more than ${MAX_CSV_RECORDS} records`)
      if (records >= maxRecords) throw new PrecompileOutOfGasError(`more than the ${maxRecords} records the gas pays for`)
      let field = 0
      for (;;) {
        const into = slot[field]
        if (into < 0) {
          // skip this field: to the next comma of the line
          for (;;) {
            if (pos >= n) throw new PrecompileInputError(`record has no column ${last}`)
            c = csv[pos++]
            if (c === COMMA) break
            if (c === NL) throw new PrecompileInputError(`record has no column ${last}`)
          }
          field++
          continue
        }
        // the number: [spaces] [+|-] digits [. digits] [spaces], then ',' or the line's end
        while (pos < n && ((c = csv[pos]) === SPACE || c === TAB)) pos++
        let neg = false
        if (pos < n && ((c = csv[pos]) === MINUS || c === PLUS)) { neg = c === MINUS; pos++ }
        let v = 0
        let fracDigits = 0
        const intStart = pos
        for (; pos < n; pos++) { // the integer part
          const d = csv[pos] - ZERO
          if (d < 0 || d > 9) break
          if (v >= FAST_ACCUMULATE_MAX) throw new FastRangeExceeded()
          v = v * 10 + d
        }
        let digits = pos - intStart
        if (pos < n && csv[pos] === DOT) {
          const fracStart = ++pos
          for (; pos < n; pos++) { // the fraction: digits beyond `decimals` are read and dropped
            const d = csv[pos] - ZERO
            if (d < 0 || d > 9) break
            if (fracDigits >= decimals) continue
            fracDigits++
            if (v >= FAST_ACCUMULATE_MAX) throw new FastRangeExceeded()
            v = v * 10 + d
          }
          digits += pos - fracStart
        }
        while (pos < n && ((c = csv[pos]) === SPACE || c === TAB)) pos++
        if (pos < n && csv[pos] === CR && (pos + 1 === n || csv[pos + 1] === NL)) pos++
        const atEnd = pos >= n || csv[pos] === NL
        if (digits === 0 || !(atEnd || csv[pos] === COMMA)) throw new PrecompileInputError('field is not a number')
        if (fracDigits < decimals) v *= POW10[decimals - fracDigits] // exact, or over FAST_MAX and refused
        if (v > FAST_MAX) throw new FastRangeExceeded()
        if (neg && v !== 0) v = -v
        buffers[into][fill] = v
        if (field === last) {
          // the rest of the line (a loop: a few bytes as a rule, where calling indexOf costs more)
          if (!atEnd) while (pos < n && csv[pos] !== NL) pos++
          pos++
          break
        }
        if (atEnd) throw new PrecompileInputError(`record has no column ${last}`)
        pos++ // the comma
        field++
      }
      records++
      if (++fill === FAST_CHUNK) { sink(bufs, fill); fill = 0 }
    }
  }
  if (fill > 0) sink(bufs, fill)
  return records
}

/** The slow path's input: column `column` of every text, concatenated (csvColumn's parser). */
function slowColumn (csvs: Uint8Array[], column: number, decimals: number, skipHeader: boolean, maxRecords: number): bigint[] {
  const out: bigint[] = []
  for (const csv of csvs) {
    const part = parseCsvColumn(csv, column, decimals, skipHeader, maxRecords - out.length)
    for (const v of part) out.push(v)
  }
  return out
}

/** A call's CSV arguments: the texts, the column(s), `decimals` and the header flag. */
export interface CsvArgs { csvs: Uint8Array[], decimals: number, skipHeader: boolean, maxRecords: number }

/** The statistics of `stats` over column `column`. */
export function csvStats (a: CsvArgs, column: number): Stats {
  let count = 0
  let sum = 0n
  let sumSq = 0n
  let min = Infinity
  let max = -Infinity
  try {
    scanCsvFast(a.csvs, [column], a.decimals, a.skipHeader, a.maxRecords, (cols, n) => {
      const xs = cols[0]
      // the exact-sum rule in locals (moved into the bigints at the chunk's end): the hot loop of csvStats
      let s1 = 0
      let s2 = 0
      let lo = min
      let hi = max
      // Values under 2^20 (the common case): the chunk's sums stay under 2^52, exact without checks.
      let small = true
      for (let i = 0; i < n; i++) { const v = xs[i]; if (v >= FAST_CHUNK_SMALL || v <= -FAST_CHUNK_SMALL) { small = false; break } }
      if (small) {
        for (let i = 0; i < n; i++) {
          const v = xs[i]
          s1 += v
          s2 += v * v
          if (v < lo) lo = v
          if (v > hi) hi = v
        }
        sum += BigInt(s1)
        sumSq += BigInt(s2)
        min = lo
        max = hi
        count += n
        return
      }
      for (let i = 0; i < n; i++) {
        const v = xs[i]
        s1 += v
        if (s1 > FAST_MAX || s1 < -FAST_MAX) { sum += BigInt(s1); s1 = 0 }
        if (v < FAST_PRODUCT_MAX && v > -FAST_PRODUCT_MAX) {
          s2 += v * v
          if (s2 > FAST_MAX) { sumSq += BigInt(s2); s2 = 0 }
        } else sumSq += BigInt(v) * BigInt(v)
        if (v < lo) lo = v
        if (v > hi) hi = v
      }
      sum += BigInt(s1)
      sumSq += BigInt(s2)
      min = lo
      max = hi
      count += n
    })
  } catch (err) {
    if (err instanceof FastRangeExceeded) return computeStats(slowColumn(a.csvs, column, a.decimals, a.skipHeader, a.maxRecords))
    throw err
  }
  if (count === 0) return computeStats([])
  return statsOf(BigInt(count), sum, sumSq, BigInt(min), BigInt(max))
}

/** `histogram` of column `column`. */
export function csvHistogram (a: CsvArgs, column: number, lo: bigint, width: bigint, buckets: number): { count: number, counts: bigint[] } {
  if (width <= 0n) throw new PrecompileInputError('histogram width must be positive')
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_HISTOGRAM_BUCKETS) throw new PrecompileInputError('bucket count out of range')
  const slow = (): { count: number, counts: bigint[] } => {
    const values = slowColumn(a.csvs, column, a.decimals, a.skipHeader, a.maxRecords)
    return { count: values.length, counts: histogram(values, lo, width, buckets) }
  }
  // lo and width within ±FAST_MAX: v − lo is exact, and floor((v − lo) / width) of two integers under 2^53 is
  // exact in doubles (the quotient's rounding error is under 1/width, its distance to the next integer at least that).
  if (lo > BIG_FAST_MAX || lo < -BIG_FAST_MAX || width > BIG_FAST_MAX) return slow()
  const counts = new Float64Array(buckets)
  const loN = Number(lo)
  const widthN = Number(width)
  const lastBucket = buckets - 1
  let count = 0
  try {
    scanCsvFast(a.csvs, [column], a.decimals, a.skipHeader, a.maxRecords, (cols, n) => {
      const xs = cols[0]
      for (let i = 0; i < n; i++) {
        const d = xs[i] - loN
        if (d < 0) { counts[0]++; continue }
        const b = d < FAST_MAX ? Math.floor(d / widthN) : Number((BigInt(xs[i]) - lo) / width)
        counts[b > lastBucket ? lastBucket : b]++
      }
      count += n
    })
  } catch (err) {
    if (err instanceof FastRangeExceeded) return slow()
    throw err
  }
  return { count, counts: Array.from(counts, BigInt) }
}

const BIG_FAST_MAX = BigInt(FAST_MAX)

/** `countInRange` of column `column`, and the records counted in all. */
export function csvCountInRange (a: CsvArgs, column: number, lo: bigint, hi: bigint): { count: number, inRange: bigint } {
  // Values are exact doubles within ±2^52, so comparing them with the nearest doubles of lo and hi is exact.
  const loN = Number(lo)
  const hiN = Number(hi)
  let inRange = 0
  let count = 0
  try {
    scanCsvFast(a.csvs, [column], a.decimals, a.skipHeader, a.maxRecords, (cols, n) => {
      const xs = cols[0]
      let c = 0
      for (let i = 0; i < n; i++) { const v = xs[i]; if (v >= loN && v <= hiN) c++ }
      inRange += c
      count += n
    })
  } catch (err) {
    if (err instanceof FastRangeExceeded) {
      const values = slowColumn(a.csvs, column, a.decimals, a.skipHeader, a.maxRecords)
      return { count: values.length, inRange: countInRange(values, lo, hi) }
    }
    throw err
  }
  return { count, inRange: BigInt(inRange) }
}

/** `linearFit` of column `yColumn` on column `xColumn`. */
export function csvLinearFit (a: CsvArgs, xColumn: number, yColumn: number): LinearFit {
  let count = 0
  let sx = 0n
  let sy = 0n
  let sxx = 0n
  let sxy = 0n
  try {
    scanCsvFast(a.csvs, [xColumn, yColumn], a.decimals, a.skipHeader, a.maxRecords, (cols, n) => {
      const xs = cols[0]
      const ys = cols[1]
      // the exact-sum rule in locals (moved into the bigints at the chunk's end): the hot loop of csvLinearFit
      let x1 = 0
      let y1 = 0
      let xx = 0
      let xy = 0
      // Values under 2^20 (the common case): a chunk's sums stay under 2^12 · 2^40 = 2^52, exact without checks.
      let small = true
      for (let i = 0; i < n; i++) {
        const x = xs[i]
        const y = ys[i]
        if (x >= FAST_CHUNK_SMALL || x <= -FAST_CHUNK_SMALL || y >= FAST_CHUNK_SMALL || y <= -FAST_CHUNK_SMALL) { small = false; break }
      }
      if (small) {
        for (let i = 0; i < n; i++) {
          const x = xs[i]
          const y = ys[i]
          x1 += x
          y1 += y
          xx += x * x
          xy += x * y
        }
        sx += BigInt(x1)
        sy += BigInt(y1)
        sxx += BigInt(xx)
        sxy += BigInt(xy)
        count += n
        return
      }
      for (let i = 0; i < n; i++) {
        const x = xs[i]
        const y = ys[i]
        x1 += x
        if (x1 > FAST_MAX || x1 < -FAST_MAX) { sx += BigInt(x1); x1 = 0 }
        y1 += y
        if (y1 > FAST_MAX || y1 < -FAST_MAX) { sy += BigInt(y1); y1 = 0 }
        if (x < FAST_PRODUCT_MAX && x > -FAST_PRODUCT_MAX && y < FAST_PRODUCT_MAX && y > -FAST_PRODUCT_MAX) {
          xx += x * x
          if (xx > FAST_MAX) { sxx += BigInt(xx); xx = 0 }
          xy += x * y
          if (xy > FAST_MAX || xy < -FAST_MAX) { sxy += BigInt(xy); xy = 0 }
        } else {
          sxx += BigInt(x) * BigInt(x)
          sxy += BigInt(x) * BigInt(y)
        }
      }
      sx += BigInt(x1)
      sy += BigInt(y1)
      sxx += BigInt(xx)
      sxy += BigInt(xy)
      count += n
    })
  } catch (err) {
    if (err instanceof FastRangeExceeded) {
      // csvColumn's parse of each column, as csvLinearFit's slow path; the gas of two columns' records is in its price.
      const xs = slowColumn(a.csvs, xColumn, a.decimals, a.skipHeader, a.maxRecords)
      const ys = slowColumn(a.csvs, yColumn, a.decimals, a.skipHeader, a.maxRecords)
      return linearFit(xs, ys)
    }
    throw err
  }
  return fitOf(BigInt(count), sx, sy, sxx, sxy)
}

export interface Quantile { count: bigint, lower: bigint, upper: bigint }

/**
 * The order statistics around rank r = (n − 1)·num/den of column `column` (0-based, ascending): lower =
 * sorted[floor r], upper = sorted[ceil r]; all zero when there is no record. `payFor(n)` is called with the
 * record count before the selection (its price follows n), and throws when the gas does not pay for it.
 */
export function csvQuantile (a: CsvArgs, column: number, num: bigint, den: bigint, payFor: (n: number) => void = () => {}): Quantile {
  if (den < 1n || num < 0n || num > den) throw new PrecompileInputError('quantile must be num / den with 0 <= num <= den, den >= 1')
  // Grown as records come (each paid for as it is read), not allocated ahead for records that may not exist.
  let values = new Float64Array(FAST_CHUNK)
  let count = 0
  const ranks = (n: number): [number, number] => {
    const scaled = BigInt(n - 1) * num
    const low = scaled / den
    return [Number(low), Number(scaled % den === 0n ? low : low + 1n)]
  }
  try {
    scanCsvFast(a.csvs, [column], a.decimals, a.skipHeader, a.maxRecords, (cols, n) => {
      if (count + n > values.length) {
        const grown = new Float64Array(Math.min(Math.max(values.length * 2, count + n), MAX_CSV_RECORDS))
        grown.set(values.subarray(0, count))
        values = grown
      }
      values.set(cols[0].subarray(0, n), count)
      count += n
    })
  } catch (err) {
    if (err instanceof FastRangeExceeded) {
      const column_ = sortValuesOf(slowColumn(a.csvs, column, a.decimals, a.skipHeader, a.maxRecords), payFor)
      if (column_.length === 0) return { count: 0n, lower: 0n, upper: 0n }
      const [lo, hi] = ranks(column_.length)
      return { count: BigInt(column_.length), lower: column_[lo], upper: column_[hi] }
    }
    throw err
  }
  payFor(count)
  if (count === 0) return { count: 0n, lower: 0n, upper: 0n }
  const v = values.subarray(0, count)
  const [lo, hi] = ranks(count)
  selectNth(v, lo)
  let upper = v[lo]
  if (hi !== lo) { upper = Infinity; for (let i = lo + 1; i < count; i++) if (v[i] < upper) upper = v[i] }
  return { count: BigInt(count), lower: BigInt(v[lo]), upper: BigInt(upper) }
}

function sortValuesOf (values: bigint[], payFor: (n: number) => void): ArrayLike<bigint> {
  payFor(values.length)
  return sortValues(values)
}

/**
 * Reorders `a` so that a[k] is its k-th smallest, nothing after it smaller and nothing before it larger
 * (quickselect, median of three). Hand-written: JavaScript has no nth_element. Quickselect is quadratic on
 * inputs made to defeat its pivots, so after 2·log2 n + 8 partitions the part left is sorted natively
 * instead: n log n at worst, which is what csvQuantile's price pays.
 */
export function selectNth (a: Float64Array, k: number): void {
  let lo = 0
  let hi = a.length - 1
  let partitions = 2 * Math.ceil(Math.log2(a.length + 1)) + 8
  while (hi > lo) {
    if (partitions-- === 0) { a.subarray(lo, hi + 1).sort(); return }
    const mid = (lo + hi) >>> 1
    let t: number
    if (a[mid] < a[lo]) { t = a[mid]; a[mid] = a[lo]; a[lo] = t }
    if (a[hi] < a[lo]) { t = a[hi]; a[hi] = a[lo]; a[lo] = t }
    if (a[hi] < a[mid]) { t = a[hi]; a[hi] = a[mid]; a[mid] = t }
    const pivot = a[mid]
    let i = lo
    let j = hi
    while (i <= j) {
      while (a[i] < pivot) i++
      while (a[j] > pivot) j--
      if (i <= j) { t = a[i]; a[i] = a[j]; a[j] = t; i++; j-- }
    }
    // a[lo..j] <= pivot <= a[i..hi], and anything between equals the pivot
    if (k <= j) hi = j
    else if (k >= i) lo = i
    else return
  }
}

// ---- the EVM wrappers ----

/**
 * The gas of a call with `inputBytes` bytes of call data and `items` records/elements: the one
 * pricing rule, used both before the work (from the arguments) and in docs and tests.
 */
export function priceOf (name: PrecompileName, inputBytes: number, items: number): bigint {
  const p = PRECOMPILE_GAS[name]
  let perItem = p.perItem * BigInt(items)
  if (name === 'sort' || name === 'csvQuantile') perItem *= BigInt(Math.max(1, Math.ceil(Math.log2(items + 1))))
  // csvQuantile: its selection is priced as sort, and its records as csvColumn's
  if (name === 'csvQuantile') perItem += PRECOMPILE_GAS.csvColumn.perItem * BigInt(items)
  return p.base + p.perByte * BigInt(inputBytes) + perItem
}

/** Refuses the call unless the gas pays `gas`: the check that runs before every piece of work. */
function pay (gas: bigint, gasLimit: bigint): void {
  if (gas > gasLimit) throw new PrecompileOutOfGasError(`needs ${gas} gas, has ${gasLimit}`)
}

/**
 * The CSV arguments of a fused call, `abi.encode(bytes[] csvs, <columns>, uint256 decimals, uint256 flags, ...)`
 * with `columns` words of columns first: the scan is paid (per byte of call data) before any text's head is
 * read, and the records as they come (`maxRecords`: what the rest of the gas pays at `recordGas` each).
 */
function fusedArgs (r: Reader, gasLimit: bigint, name: PrecompileName, columns: number, recordGas: bigint): { args: CsvArgs, columns: number[], scan: bigint } {
  const cols: number[] = []
  for (let i = 0; i < columns; i++) cols.push(r.uint(32 + 32 * i, 1 << 20))
  const decimals = r.uint(32 + 32 * columns, MAX_CSV_DECIMALS)
  const flags = r.uint(64 + 32 * columns, 1)
  const scan = priceOf(name, r.bytes.length, 0)
  pay(scan, gasLimit)
  const affordable = (gasLimit - scan) / recordGas
  const maxRecords = affordable > BigInt(MAX_CSV_RECORDS) ? MAX_CSV_RECORDS : Number(affordable)
  return { args: { csvs: r.bytesArrayAt(0), decimals, skipHeader: (flags & 1) === 1, maxRecords }, columns: cols, scan }
}

/** One call: its arguments are read from the ABI head, paid for, and only then worked on. */
type Implementation = (r: Reader, gasLimit: bigint) => { returnValue: Uint8Array, gas: bigint }

const IMPLEMENTATIONS: Record<PrecompileName, Implementation> = {
  csvColumn: (r, gasLimit) => {
    const csv = r.bytesAt(0)
    const column = r.uint(32, 1 << 20)
    const decimals = r.uint(64, MAX_CSV_DECIMALS)
    const flags = r.uint(96, 1)
    const bytes = r.bytes.length
    // The scan is paid per byte before it starts; the records it yields are paid as they come.
    const scan = priceOf('csvColumn', bytes, 0)
    pay(scan, gasLimit)
    const affordable = (gasLimit - scan) / PRECOMPILE_GAS.csvColumn.perItem
    const maxRecords = affordable > BigInt(MAX_CSV_RECORDS) ? MAX_CSV_RECORDS : Number(affordable)
    const values = parseCsvColumn(csv, column, decimals, (flags & 1) === 1, maxRecords)
    return { returnValue: encodeIntArray(values), gas: priceOf('csvColumn', bytes, values.length) }
  },
  stats: (r, gasLimit) => {
    const gas = priceOf('stats', r.bytes.length, r.arrayLength(0))
    pay(gas, gasLimit)
    const s = computeStats(r.intArrayAt(0))
    return { returnValue: encodeWords([s.count, s.sum, s.min, s.max, s.mean, s.variance]), gas }
  },
  sort: (r, gasLimit) => {
    const gas = priceOf('sort', r.bytes.length, r.arrayLength(0))
    pay(gas, gasLimit)
    return { returnValue: encodeIntArray(sortValues(r.intArrayAt(0))), gas }
  },
  histogram: (r, gasLimit) => {
    const n = r.arrayLength(0)
    const lo = r.int(32)
    const width = r.int(64)
    const buckets = r.uint(96, MAX_HISTOGRAM_BUCKETS)
    const gas = priceOf('histogram', r.bytes.length, n + buckets)
    pay(gas, gasLimit)
    return { returnValue: encodeIntArray(histogram(r.intArrayAt(0), lo, width, buckets)), gas }
  },
  countInRange: (r, gasLimit) => {
    const gas = priceOf('countInRange', r.bytes.length, r.arrayLength(0))
    const lo = r.int(32)
    const hi = r.int(64)
    pay(gas, gasLimit)
    return { returnValue: encodeWords([countInRange(r.intArrayAt(0), lo, hi)]), gas }
  },
  linearFit: (r, gasLimit) => {
    const n = r.arrayLength(0)
    if (r.arrayLength(32) !== n) throw new PrecompileInputError('x and y columns differ in length')
    const gas = priceOf('linearFit', r.bytes.length, n)
    pay(gas, gasLimit)
    const f = linearFit(r.intArrayAt(0), r.intArrayAt(32))
    return { returnValue: encodeWords([f.count, f.slope, f.intercept]), gas }
  },
  csvStats: (r, gasLimit) => {
    const { args, columns } = fusedArgs(r, gasLimit, 'csvStats', 1, PRECOMPILE_GAS.csvStats.perItem)
    const s = csvStats(args, columns[0])
    return { returnValue: encodeWords([s.count, s.sum, s.min, s.max, s.mean, s.variance]), gas: priceOf('csvStats', r.bytes.length, Number(s.count)) }
  },
  csvHistogram: (r, gasLimit) => {
    const lo = r.int(128)
    const width = r.int(160)
    const buckets = r.uint(192, MAX_HISTOGRAM_BUCKETS)
    // The buckets are paid with the scan, before it.
    const { args, columns } = fusedArgs(r, gasLimit - PRECOMPILE_GAS.csvHistogram.perItem * BigInt(buckets), 'csvHistogram', 1, PRECOMPILE_GAS.csvHistogram.perItem)
    const h = csvHistogram(args, columns[0], lo, width, buckets)
    return { returnValue: encodeIntArray(h.counts), gas: priceOf('csvHistogram', r.bytes.length, h.count + buckets) }
  },
  csvCountInRange: (r, gasLimit) => {
    const lo = r.int(128)
    const hi = r.int(160)
    const { args, columns } = fusedArgs(r, gasLimit, 'csvCountInRange', 1, PRECOMPILE_GAS.csvCountInRange.perItem)
    const c = csvCountInRange(args, columns[0], lo, hi)
    return { returnValue: encodeWords([c.inRange]), gas: priceOf('csvCountInRange', r.bytes.length, c.count) }
  },
  csvLinearFit: (r, gasLimit) => {
    const { args, columns } = fusedArgs(r, gasLimit, 'csvLinearFit', 2, PRECOMPILE_GAS.csvLinearFit.perItem)
    const f = csvLinearFit(args, columns[0], columns[1])
    return { returnValue: encodeWords([f.count, f.slope, f.intercept]), gas: priceOf('csvLinearFit', r.bytes.length, Number(f.count)) }
  },
  csvQuantile: (r, gasLimit) => {
    const num = r.int(128)
    const den = r.int(160)
    // The records are paid as they come at csvColumn's price; the selection, priced from their count, before it runs.
    const { args, columns } = fusedArgs(r, gasLimit, 'csvQuantile', 1, PRECOMPILE_GAS.csvColumn.perItem)
    const q = csvQuantile(args, columns[0], num, den, n => pay(priceOf('csvQuantile', r.bytes.length, n), gasLimit))
    return { returnValue: encodeWords([q.count, q.lower, q.upper]), gas: priceOf('csvQuantile', r.bytes.length, Number(q.count)) }
  }
}

/**
 * A failed call's error, as the EVM reads it: its `error` field, @ethereumjs/evm's EVMError.errorMessages.REVERT. Made
 * here without the engine's EVMError class because the enclave worker imports this file (precompileTable, for its
 * measurement) and never runs an EVM: importing @ethereumjs/evm here would load the whole engine (about 190 modules) into
 * the worker at boot. enclave/evm.ts gives the EVM an EVMError in its place (engineFailure).
 */
export const PRECOMPILE_FAILURE: EVMError = { error: 'revert', errorType: 'EVMError' }

/** What a failed call returns: all the gas passed to it consumed, nothing returned. */
export function failed (gasLimit: bigint): ExecResult {
  return { returnValue: new Uint8Array(0), executionGasUsed: gasLimit, exceptionError: PRECOMPILE_FAILURE }
}

/** Wraps one analytics function as an @ethereumjs/evm precompile. */
export function makePrecompile (name: PrecompileName): (input: PrecompileInput) => ExecResult {
  const impl = IMPLEMENTATIONS[name]
  return (input: PrecompileInput): ExecResult => {
    try {
      const result = impl(new Reader(input.data), input.gasLimit)
      return { returnValue: result.returnValue, executionGasUsed: result.gas }
    } catch (err) {
      if (err instanceof PrecompileInputError || err instanceof PrecompileOutOfGasError || err instanceof RangeError) return failed(input.gasLimit)
      throw err
    }
  }
}

/** The precompile table as data: part of the EVM configuration, hence of the measurement. */
export function precompileTable (): Array<{ name: PrecompileName, address: string, gas: { base: string, perByte: string, perItem: string } }> {
  return (Object.keys(PRECOMPILE_ADDRESSES) as PrecompileName[]).map(name => ({
    name,
    address: PRECOMPILE_ADDRESSES[name],
    gas: { base: String(PRECOMPILE_GAS[name].base), perByte: String(PRECOMPILE_GAS[name].perByte), perItem: String(PRECOMPILE_GAS[name].perItem) }
  }))
}
