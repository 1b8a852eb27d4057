// Attack: work before payment in the analytics precompiles. A buyer's analysis STATICCALLs a
// precompile with a large array and almost no gas (sort, 262,144 values, 300 gas): if the precompile
// reads and sorts the values before it compares its price with the gas, each call costs the node
// a sort (0.2-0.7 s of CPU) and the caller 300 gas, and a loop burns hours of CPU for a million gas.
// The defence: the price follows from the arguments (the ABI heads: array lengths, bucket counts,
// the text's size) and is checked before any element or record is read; csvColumn, whose record
// count is known only by parsing, pays its scan per byte up front and stops at the first record
// the gas does not pay for.
//
// Observed without the clock: the call data is wrapped in a Proxy (./watched.ts) that records how
// far into it the precompile read. An underfunded call must fail having read nothing past the ABI
// head; a funded one reads everything (which shows the counter sees the reads).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PrecompileInput } from '@ethereumjs/evm'
import { makePrecompile, PRECOMPILE_GAS } from '../../enclave/precompiles.ts'
import type { PrecompileName } from '../../enclave/precompiles.ts'
import { watch } from './watched.ts'

const N = 262_144
const PLENTY = 10_000_000_000n

/** abi.encode(int256[] a_0, ..., int256[] a_k-1, int256 s_0, ...) built directly (ethers is slow at 262,144 values). */
function encode (arrays: bigint[][], scalars: bigint[] = []): { data: Uint8Array, elements: Array<[number, number]> } {
  const head = 32 * (arrays.length + scalars.length)
  const size = head + arrays.reduce((n, a) => n + 32 + 32 * a.length, 0)
  const data = new Uint8Array(size)
  const put = (at: number, v: bigint): void => {
    let u = BigInt.asUintN(256, v)
    for (let i = at + 31; i >= at; i--) { data[i] = Number(u & 0xffn); u >>= 8n }
  }
  let tail = head
  const elements: Array<[number, number]> = []
  arrays.forEach((a, i) => {
    elements.push([tail + 32, tail + 32 + 32 * a.length])
    put(32 * i, BigInt(tail))
    put(tail, BigInt(a.length))
    a.forEach((v, j) => put(tail + 32 + 32 * j, v))
    tail += 32 + 32 * a.length
  })
  scalars.forEach((s, i) => put(32 * (arrays.length + i), s))
  return { data, elements }
}

function values (n: number, wide: boolean, seed = 1): bigint[] {
  let x = BigInt(seed)
  const out: bigint[] = []
  for (let i = 0; i < n; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n)
    out.push(wide ? BigInt.asIntN(100, (x << 40n) | x) : BigInt.asIntN(48, x))
  }
  return out
}

/** The array precompiles' arguments for n values. */
function argsOf (name: PrecompileName, n: number, wide = false): { data: Uint8Array, elements: Array<[number, number]> } {
  const v = values(n, wide)
  switch (name) {
    case 'stats': case 'sort': return encode([v])
    case 'histogram': return encode([v], [-(1n << 47n), 1n << 40n, 256n])
    case 'countInRange': return encode([v], [-(1n << 40n), 1n << 40n])
    case 'linearFit': return encode([v, values(n, wide, 2)])
    default: throw new Error(name)
  }
}

/** A model of each precompile's work in units of one element visit: n log n comparisons for sort. */
function workUnits (name: PrecompileName, n: number): bigint {
  if (name === 'sort') return BigInt(n) * BigInt(Math.max(1, Math.ceil(Math.log2(n + 1))))
  if (name === 'histogram') return BigInt(n + 256)
  return BigInt(n)
}

const call = (name: PrecompileName, data: Uint8Array, gasLimit: bigint) =>
  makePrecompile(name)({ data, gasLimit } as PrecompileInput)

const ARRAY_PRECOMPILES: PrecompileName[] = ['sort', 'stats', 'histogram', 'countInRange', 'linearFit']

for (const name of ARRAY_PRECOMPILES) {
  test(`${name}: a call with ${N.toLocaleString('en')} values and too little gas fails without reading a value`, () => {
    const { data, elements } = argsOf(name, N)
    const funded = call(name, data, PLENTY)
    assert.is(funded.exceptionError, undefined, 'the funded call succeeds')
    const price = funded.executionGasUsed

    for (const gasLimit of [300n, price / 2n, price - 1n]) {
      const w = watch(data)
      const r = call(name, w.data, gasLimit)
      assert.ok(r.exceptionError !== undefined, `${gasLimit} gas fails`)
      assert.is(r.executionGasUsed, gasLimit, 'and consumes the gas it was given')
      const valuesRead = elements.reduce((n, [from, to]) => n + w.readsIn(from, to), 0)
      assert.is(valuesRead, 0, `with ${gasLimit} of ${price} gas, ${name} read ${valuesRead} bytes of its values (up to byte ${w.furthest()} of ${data.length})`)
    }
    const w = watch(data)
    assert.is(call(name, w.data, price).exceptionError, undefined, 'exactly the price is enough')
    assert.ok(w.furthest() >= data.length - 32, 'the counter sees the reads of a funded call (up to the last value)')
  })
}

test('the charge follows from the arguments alone and grows with the modelled work (n, n log n for sort)', () => {
  for (const name of ARRAY_PRECOMPILES) {
    const g = PRECOMPILE_GAS[name]
    let previous = 0n
    for (const n of [1, 1000, 65_536]) {
      const narrow = call(name, argsOf(name, n).data, PLENTY)
      const wide = call(name, argsOf(name, n, true).data, PLENTY)
      assert.is(narrow.exceptionError, undefined)
      assert.is(wide.exceptionError, undefined)
      // Same arguments but values of another width: the same price, so it was known before reading them.
      assert.is(wide.executionGasUsed, narrow.executionGasUsed, `${name}: price independent of the values`)
      assert.ok(narrow.executionGasUsed >= g.base + g.perItem * workUnits(name, n), `${name} at ${n}: charged ${narrow.executionGasUsed}, model ${workUnits(name, n)} units`)
      assert.ok(narrow.executionGasUsed > previous, `${name}: more values cost more`)
      previous = narrow.executionGasUsed
    }
  }
})

test('csvColumn: a call whose gas pays for 10 records stops at the 11th, not at the end of the text', () => {
  const records = 100_000
  const csv = new TextEncoder().encode('1,2\n'.repeat(records))
  const { data } = encodeCsvCall(csv)
  const funded = call('csvColumn', data, PLENTY)
  assert.is(funded.exceptionError, undefined)
  const g = PRECOMPILE_GAS.csvColumn
  const scan = g.base + g.perByte * BigInt(data.length)
  assert.is(funded.executionGasUsed, scan + g.perItem * BigInt(records))

  const csvFrom = 4 * 32 + 32
  for (const gasLimit of [300n, scan - 1n, scan + g.perItem * 10n]) {
    const w = watch(data)
    const r = call('csvColumn', w.data, gasLimit)
    assert.ok(r.exceptionError !== undefined, `${gasLimit} gas fails`)
    assert.is(r.executionGasUsed, gasLimit)
    const read = w.furthest() - csvFrom
    assert.ok(read < 4 * 12, `with gas for at most 10 records, csvColumn looked at ${read} bytes of ${csv.length} (4 a record)`)
  }
})

/** abi.encode(bytes csv, uint256 column = 0, uint256 decimals = 0, uint256 flags = 0). */
function encodeCsvCall (csv: Uint8Array): { data: Uint8Array } {
  const data = new Uint8Array(4 * 32 + 32 + Math.ceil(csv.length / 32) * 32)
  data[31] = 128
  new DataView(data.buffer).setUint32(4 * 32 + 28, csv.length)
  data.set(csv, 4 * 32 + 32)
  return { data }
}

test.run()
