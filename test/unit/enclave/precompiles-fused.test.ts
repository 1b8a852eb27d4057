// The fused precompiles (csvStats, csvHistogram, csvCountInRange, csvLinearFit, csvQuantile): the same results
// as csvColumn followed by the array precompile, on the fast path (doubles) and on the slow one (bigints, when
// a value passes ±2^52), the same refusals, ABI and gas.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbiCoder, getBytes } from 'ethers'
import type { PrecompileInput } from '@ethereumjs/evm'
import {
  computeStats, countInRange, csvCountInRange, csvHistogram, csvLinearFit, csvQuantile, csvStats, histogram, linearFit, makePrecompile,
  MAX_CSV_RECORDS, parseCsvColumn, PRECOMPILE_GAS, priceOf, selectNth, sortValues
} from '../../../enclave/precompiles.ts'
import type { CsvArgs, PrecompileName } from '../../../enclave/precompiles.ts'
import { throwsWith } from '../../helpers/enclave.ts'

const abi = AbiCoder.defaultAbiCoder()
const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const args = (csvs: string[], decimals = 0, skipHeader = true, maxRecords = MAX_CSV_RECORDS): CsvArgs => ({ csvs: csvs.map(text), decimals, skipHeader, maxRecords })

/** A deterministic generator (xorshift) of test values. */
function rng (seed: number): (n: number) => number {
  let s = seed >>> 0 || 1
  return n => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s % n }
}

/** Column `c` of the texts, by csvColumn's parser: what the fused ones must agree with. */
const columnOf = (a: CsvArgs, c: number): bigint[] => a.csvs.flatMap(csv => parseCsvColumn(csv, c, a.decimals, a.skipHeader))

/** Texts of `rows` records `id,value,x,y`, in the layouts the CSV rules allow (CRLF, spaces, signs, blank lines, fractions). */
function texts (seed: number, rows: number, magnitude: () => string): string[] {
  const r = rng(seed)
  const out: string[] = []
  for (let part = 0; part < 3; part++) {
    let s = r(2) === 0 ? 'id,value,x,y\r\n' : 'id,value,x,y\n'
    for (let i = 0; i < rows; i++) {
      const num = (): string => `${[' ', '', '\t'][r(3)]}${['-', '', '+', ''][r(4)]}${magnitude()}${['', '.', '.5', '.05', '.999'][r(5)]}${['', ' '][r(2)]}`
      s += `${i},${num()},${num()},${num()}${['\n', '\r\n', '\n\n'][r(3)]}`
    }
    out.push(part === 2 ? s.replace(/\r?\n$/, '') : s) // the last text without a final newline
  }
  return out
}

const digits = (r: (n: number) => number, n: number): string => Array.from({ length: n }, () => String(r(10))).join('')

test('every fused result equals csvColumn + the array function: small values, wide ones (slow path), decimals', () => {
  const r = rng(7)
  const cases: Array<[string, () => string, number]> = [
    ['small', () => String(r(2000)), 0],
    ['small, 2 decimals', () => String(r(2000)), 2],
    ['15 digits', () => digits(r, 15), 0],
    ['near 2^52 with decimals', () => digits(r, 12), 4],
    ['wide', () => (r(50) === 0 ? digits(r, 40) : String(r(100))), 0],
    ['products past 2^52', () => String(r(1 << 30)), 0]
  ]
  cases.forEach(([label, magnitude, decimals], k) => {
    const a = args(texts(k + 1, 300, magnitude), decimals)
    const v = columnOf(a, 1)
    assert.equal(csvStats(a, 1), computeStats(v), `${label}: stats`)
    assert.equal(csvHistogram(a, 1, -500n, 37n, 40), { count: v.length, counts: histogram(v, -500n, 37n, 40) }, `${label}: histogram`)
    assert.equal(csvHistogram(a, 1, -(1n << 60n), 1n << 58n, 9).counts, histogram(v, -(1n << 60n), 1n << 58n, 9), `${label}: histogram, wide bounds`)
    assert.equal(csvCountInRange(a, 1, -300n, 1234n), { count: v.length, inRange: countInRange(v, -300n, 1234n) }, `${label}: range count`)
    assert.equal(csvLinearFit(a, 2, 3), linearFit(columnOf(a, 2), columnOf(a, 3)), `${label}: linear fit`)
    const sorted = sortValues(v)
    for (const [num, den] of [[1n, 2n], [0n, 1n], [1n, 1n], [1n, 3n], [99n, 100n]]) {
      const rank = BigInt(v.length - 1) * num
      const lo = Number(rank / den)
      const hi = Number(rank % den === 0n ? rank / den : rank / den + 1n)
      assert.equal(csvQuantile(a, 1, num, den), { count: BigInt(v.length), lower: sorted[lo], upper: sorted[hi] }, `${label}: quantile ${num}/${den}`)
    }
  })
})

test('no record: all zero; one text without a header', () => {
  const empty = args(['id,value\n', '\n\r\n'])
  assert.equal(csvStats(empty, 1), computeStats([]))
  assert.equal(csvQuantile(empty, 1, 1n, 2n), { count: 0n, lower: 0n, upper: 0n })
  assert.equal(csvLinearFit(empty, 0, 1), { count: 0n, slope: 0n, intercept: 0n })
  assert.equal(csvStats(args(['3\n-1\n2'], 0, false), 0), computeStats([3n, -1n, 2n]))
  // a column asked for twice
  assert.equal(csvLinearFit(args(['1\n2\n4\n'], 0, false), 0, 0), { count: 3n, slope: 1_000_000n, intercept: 0n })
})

test('the same refusals as csvColumn: a field that is no number, a missing column, too many digits, too little gas', () => {
  for (const [csv, column] of [['a,b\n1,x\n', 1], ['a,b\n1,2\n3\n', 1], ['a,b\n1,2 3\n', 1], ['a,b\n1,-\n', 1], ['a,b\n1,2\r3\n', 1], ['a,b\n1,.\n', 1], ['a,b\n1,2e3\n', 1],
    [`a\n${'9'.repeat(78)}\n`, 0], ['a,b\n1,2\n', 2]] as Array<[string, number]>) {
    throwsWith(() => parseCsvColumn(text(csv), column, 0, true), 'PrecompileInputError')
    throwsWith(() => csvStats(args([csv]), column), 'PrecompileInputError')
    throwsWith(() => csvQuantile(args([csv]), column, 1n, 2n), 'PrecompileInputError')
    throwsWith(() => csvLinearFit(args([csv]), 0, column), 'PrecompileInputError')
  }
  throwsWith(() => csvStats(args(['a\n1\n2\n3\n'], 0, true, 2), 0), 'PrecompileOutOfGasError')
  throwsWith(() => csvStats(args(['a\n1\n2\n' + '9'.repeat(40) + '\n'], 0, true, 2), 0), 'PrecompileOutOfGasError') // on the slow path too
  throwsWith(() => csvHistogram(args(['a\n1\n']), 0, 0n, 0n, 3), 'PrecompileInputError')
  throwsWith(() => csvQuantile(args(['a\n1\n']), 0, 3n, 2n), 'PrecompileInputError')
  throwsWith(() => csvStats(args(['a\n1\n'], 19), 0), 'PrecompileInputError')
})

test('selectNth puts the k-th smallest at k, on random, sorted, constant and organ-pipe inputs', () => {
  const r = rng(3)
  const inputs: number[][] = [
    Array.from({ length: 1001 }, () => r(100)),
    Array.from({ length: 1000 }, (_, i) => i),
    Array.from({ length: 1000 }, (_, i) => 1000 - i),
    new Array(999).fill(5),
    Array.from({ length: 1000 }, (_, i) => (i < 500 ? i : 1000 - i)),
    [2]
  ]
  for (const values of inputs) {
    const sorted = Float64Array.from(values).sort()
    for (const k of [0, values.length >> 1, values.length - 1]) {
      const a = Float64Array.from(values)
      selectNth(a, k)
      assert.is(a[k], sorted[k])
      for (let i = 0; i < k; i++) assert.ok(a[i] <= a[k])
      for (let i = k + 1; i < a.length; i++) assert.ok(a[i] >= a[k])
    }
  }
})

const call = (name: PrecompileName, data: Uint8Array, gasLimit = 100_000_000n) => makePrecompile(name)({ data, gasLimit } as PrecompileInput)

test('ABI and gas: abi.encode(bytes[] csvs, columns, decimals, flags, args) in, the array precompile\'s results out', () => {
  const csvs = [text('v,w\n3,1\n-1,2\n'), text('v,w\n2,3\n')]
  const enc = (types: string[], values: unknown[]): Uint8Array => getBytes(abi.encode(['bytes[]', ...types], [csvs, ...values]))
  const stats = enc(['uint256', 'uint256', 'uint256'], [0, 0, 1])
  const s = call('csvStats', stats)
  assert.is(s.exceptionError, undefined)
  assert.equal([...abi.decode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'], s.returnValue)], [3n, 4n, -1n, 3n, 1_333_333n, 2_888_888n])
  const g = PRECOMPILE_GAS.csvStats
  assert.is(s.executionGasUsed, g.base + g.perByte * BigInt(stats.length) + g.perItem * 3n)

  const hist = enc(['uint256', 'uint256', 'uint256', 'int256', 'int256', 'uint256'], [0, 0, 1, 0, 2, 2])
  const h = call('csvHistogram', hist)
  assert.equal([...abi.decode(['uint256[]'], h.returnValue)[0]], [1n, 2n])
  assert.is(h.executionGasUsed, priceOf('csvHistogram', hist.length, 3 + 2))
  const c = call('csvCountInRange', enc(['uint256', 'uint256', 'uint256', 'int256', 'int256'], [0, 0, 1, 0, 2]))
  assert.equal([...abi.decode(['uint256'], c.returnValue)], [1n])
  const f = call('csvLinearFit', enc(['uint256', 'uint256', 'uint256', 'uint256'], [1, 0, 0, 1]))
  assert.equal([...abi.decode(['uint256', 'int256', 'int256'], f.returnValue)], [3n, ...Object.values(linearFit([1n, 2n, 3n], [3n, -1n, 2n])).slice(1)])
  const quantile = enc(['uint256', 'uint256', 'uint256', 'uint256', 'uint256'], [0, 0, 1, 1, 2])
  const q = call('csvQuantile', quantile)
  assert.equal([...abi.decode(['uint256', 'int256', 'int256'], q.returnValue)], [3n, 2n, 2n])
  // the records at csvColumn's price, the selection at sort's: 8 + 4·ceil(log2(3 + 1)) a record
  assert.is(q.executionGasUsed, PRECOMPILE_GAS.csvQuantile.base + BigInt(quantile.length) + 3n * (8n + 4n * 2n))

  // Too little gas, or a malformed call: it fails and consumes what it was given.
  for (const [name, data] of [['csvStats', stats], ['csvQuantile', quantile], ['csvHistogram', hist]] as Array<[PrecompileName, Uint8Array]>) {
    const price = call(name, data).executionGasUsed
    const poor = call(name, data, price - 1n)
    assert.ok(poor.exceptionError !== undefined, `${name} at one gas short`)
    assert.is(poor.executionGasUsed, price - 1n)
    assert.is(call(name, data, price).exceptionError, undefined, `${name} at its price`)
  }
  const lying = stats.slice()
  lying[4 * 32 + 31] = 9 // three texts, where there are two
  assert.ok(call('csvStats', lying).exceptionError !== undefined)
})

test.run()
