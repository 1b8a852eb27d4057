// Attack: the fused precompiles (csvStats, csvHistogram, csvCountInRange, csvLinearFit, csvQuantile) made to
// work before they are paid, or more than they are paid. They parse texts whose record count is known only
// by parsing, as csvColumn does, and csvQuantile then selects (n log n at worst). So:
//  - an underfunded call (300 gas, or a scan's price less one) must fail having read nothing of its texts;
//  - a call whose gas pays for 10 records must stop at the 11th, not at the end of the text;
//  - csvQuantile's selection, priced from the record count, must be paid before it runs;
//  - the parse stays linear on the inputs that made csvColumn's quadratic (records without commas, a
//    million-digit number: the fast parse gives up by its 17th digit, the slow one fails at the 78th);
//  - the price follows from the call data's size and the record count, never from the values.
// Observed without the clock: the call data is wrapped in a Proxy (./watched.ts) that records how far into it
// the precompile read.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PrecompileInput } from '@ethereumjs/evm'
import { fieldSlots, makePrecompile, PRECOMPILE_GAS, priceOf } from '../../enclave/precompiles.ts'
import type { PrecompileName } from '../../enclave/precompiles.ts'
import { watch } from './watched.ts'

const PLENTY = 10_000_000_000n
const FUSED: PrecompileName[] = ['csvStats', 'csvHistogram', 'csvCountInRange', 'csvLinearFit', 'csvQuantile']

/** Head words after `bytes[] csvs` of each fused precompile: columns, decimals, flags, then its own arguments. */
function tail (name: PrecompileName): bigint[] {
  switch (name) {
    case 'csvStats': return [0n, 0n, 0n]
    case 'csvHistogram': return [0n, 0n, 0n, 0n, 10n, 64n]
    case 'csvCountInRange': return [0n, 0n, 0n, 0n, 100n]
    case 'csvLinearFit': return [0n, 0n, 0n, 0n]
    case 'csvQuantile': return [0n, 0n, 0n, 1n, 2n]
    default: throw new Error(name)
  }
}

/** abi.encode(bytes[] [csv], ...tail), built directly; `textAt` is where the text's bytes start. */
function encode (name: PrecompileName, csv: Uint8Array): { data: Uint8Array, textAt: number } {
  const words = tail(name)
  const head = 32 * (1 + words.length)
  const textAt = head + 32 * 3 // the array's length, its one offset, the text's length
  const data = new Uint8Array(textAt + Math.ceil(csv.length / 32) * 32)
  const view = new DataView(data.buffer)
  const put = (at: number, v: bigint): void => { view.setBigUint64(at + 24, v) }
  put(0, BigInt(head))
  words.forEach((w, i) => put(32 * (i + 1), w))
  put(head, 1n)
  put(head + 32, 32n)
  put(head + 64, BigInt(csv.length))
  data.set(csv, textAt)
  return { data, textAt }
}

const call = (name: PrecompileName, data: Uint8Array, gasLimit: bigint) => makePrecompile(name)({ data, gasLimit } as PrecompileInput)
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

for (const name of FUSED) {
  test(`${name}: an underfunded call reads nothing of its text; gas for 10 records stops at the 11th`, () => {
    const records = 100_000
    const { data, textAt } = encode(name, text('1\n'.repeat(records)))
    const funded = call(name, data, PLENTY)
    assert.is(funded.exceptionError, undefined)
    assert.is(funded.executionGasUsed, priceOf(name, data.length, records + (name === 'csvHistogram' ? 64 : 0)))
    const scan = priceOf(name, data.length, name === 'csvHistogram' ? 64 : 0)
    for (const gasLimit of [300n, scan - 1n]) {
      const w = watch(data)
      const r = call(name, w.data, gasLimit)
      assert.ok(r.exceptionError !== undefined, `${gasLimit} gas fails`)
      assert.is(r.executionGasUsed, gasLimit, 'and consumes the gas it was given')
      assert.is(w.readsIn(textAt, data.length), 0, `with ${gasLimit} gas ${name} read the text (up to byte ${w.furthest()})`)
    }
    const perRecord = name === 'csvQuantile' ? PRECOMPILE_GAS.csvColumn.perItem : PRECOMPILE_GAS[name].perItem
    const w = watch(data)
    const r = call(name, w.data, scan + perRecord * 10n)
    assert.ok(r.exceptionError !== undefined)
    assert.ok(w.furthest() - textAt < 2 * 12, `with gas for 10 records ${name} looked at ${w.furthest() - textAt} bytes of ${2 * records}`)
  })

  test(`${name}: linear in the text on records without commas and on a million-digit number`, () => {
    for (const records of [1_000, 16_000]) {
      const w = watch(encode(name, text('1\n'.repeat(records))).data)
      assert.is(call(name, w.data, PLENTY).exceptionError, undefined)
      assert.ok(w.touched() <= 8 * 2 * records + 2048, `${records} records: ${w.touched()} bytes looked at`)
    }
    const digits = 1_000_000
    const { data, textAt } = encode(name, text('0'.repeat(1000) + '1'.repeat(digits) + '\n'))
    const w = watch(data)
    assert.ok(call(name, w.data, PLENTY).exceptionError !== undefined, 'out of int256 range')
    assert.ok(w.readsIn(textAt + 1000, textAt + 1000 + digits) <= 200, `read ${w.readsIn(textAt + 1000, textAt + 1000 + digits)} of the ${digits} digits one by one`)
  })
}

test('csvQuantile: the selection is paid before it runs; prices follow the size and count, not the values', () => {
  const records = 50_000
  const small = encode('csvQuantile', text('7\n'.repeat(records))).data
  const price = call('csvQuantile', small, PLENTY).executionGasUsed
  // Enough for the parse (8 a record) but not the selection: fails at its price less one.
  const parseOnly = priceOf('csvQuantile', small.length, 0) + PRECOMPILE_GAS.csvColumn.perItem * BigInt(records)
  assert.ok(parseOnly < price - 1n)
  assert.ok(call('csvQuantile', small, price - 1n).exceptionError !== undefined)
  assert.is(call('csvQuantile', small, price).exceptionError, undefined)
  for (const name of FUSED) {
    // Same size, same record count: one-digit values (fast path) and 40-digit ones cost the same.
    const narrow = encode(name, text(('1'.repeat(40) + '\n').repeat(1000)))
    const wide = encode(name, text(('9'.repeat(40) + '\n').repeat(1000)))
    const a = call(name, narrow.data, PLENTY)
    const b = call(name, wide.data, PLENTY)
    assert.is(a.exceptionError, undefined)
    assert.is(b.exceptionError, undefined)
    assert.is(a.executionGasUsed, b.executionGasUsed, name)
  }
})

test('a large column index does not buy a large field table: the table is bounded by the texts\' bytes (a review)', () => {
  // Column indexes go to 2^20: the field table was allocated at that size (4 MiB, filled) for the scan's flat price.
  const csv = new TextEncoder().encode('1,2\n3,4\n')
  assert.ok(fieldSlots([(1 << 20) - 1], [csv]).length <= csv.length + 1, 'no more entries than a record can have fields')
  assert.is(fieldSlots([(1 << 20) - 1], []).length, 1, 'no text: one entry')
  const slots = fieldSlots([1, 0], [csv])
  assert.equal([...slots], [1, 0], 'the wanted fields still map to their buffers')
})

test.run()
