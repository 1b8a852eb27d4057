// Attack: make a private precompile's work grow faster than its price (base + per byte of input: linear). The
// first version of the private records' parser searched each field's end with indexOf(',') to the end of the
// whole text, as csvColumn once did (precompile-csv-superlinear-parse.test.ts): on records without commas
// ("5\n" × n, column 0) that is n²/2 bytes scanned; seen in a run, 256 KiB took 20 s against 2.1 Mgas. The defence
// is csvColumn's: a forward cursor per column remembers the next comma, so each byte is scanned once per column.
// Observed without the clock: the input is wrapped in a Proxy (./watched.ts) that counts the bytes looked at.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { PrivateRun } from '../../enclave/private.ts'
import { watch } from './watched.ts'

const column = (c: number) => ({ column: c, decimals: 0, lo: -1000n, hi: 1000n })
function runOver (text: string, columns: number[]) {
  const w = watch(new TextEncoder().encode(text))
  const run = new PrivateRun({ epsilon: 1n, noiseKey: new Uint8Array(32), sellers: [{ skipHeader: false, columns: columns.map(column) }] }, [w.data])
  return { w, run }
}

test('records without commas: the bytes looked at grow linearly with the text', () => {
  for (const records of [1_000, 16_000]) {
    const { w, run } = runOver('5\n'.repeat(records), [0])
    assert.is(run.records([0])[0].length, records)
    assert.ok(w.touched() <= 8 * 2 * records, `${records} records: ${w.touched()} bytes looked at`)
  }
})

test('two columns asked last-first, and records whose fields do not parse: still linear', () => {
  const { w, run } = runOver('1,2,3\n'.repeat(10_000), [0, 2])
  assert.is(run.records([2, 0])[0].length, 10_000)
  assert.ok(w.touched() <= 2 * 8 * 60_000, `${w.touched()} bytes looked at`)
  const bad = runOver('x,y\n'.repeat(10_000), [0, 1])
  assert.is(bad.run.records([0, 1])[0].length, 0)
  assert.ok(bad.w.touched() <= 2 * 8 * 40_000, `${bad.w.touched()} bytes looked at`)
})

test.run()
