// Attack: make csvColumn's work grow faster than its price (base + per byte + per record), which is
// linear in the text. Two inputs did:
//  - records without commas ("1\n" × n, column 0): each field's end was searched with indexOf(',')
//    from the field onwards, which scans to the end of the text when there is no comma: n²/2 bytes
//    scanned for n records (256 KiB took ~5 s of CPU for 1.3 Mgas);
//  - one field of a million digits: every digit multiplied a growing bigint (quadratic) before the
//    int256 range check refused the number.
// The defence: the next comma's position is remembered (each byte is scanned once), and a number
// fails at its 78th significant digit (MAX_CSV_NUMBER_DIGITS: int256 holds 77).
//
// Observed without the clock: the call data is wrapped in a Proxy (./watched.ts) that counts the
// bytes the precompile reads one by one and scans with indexOf.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PrecompileInput } from '@ethereumjs/evm'
import { makePrecompile } from '../../enclave/precompiles.ts'
import { watch } from './watched.ts'

const CSV_AT = 4 * 32 + 32

/** abi.encode(bytes csv, uint256 column, uint256 decimals = 0, uint256 flags = 0). */
function csvCall (text: string, column = 0): Uint8Array {
  const csv = new TextEncoder().encode(text)
  const data = new Uint8Array(CSV_AT + Math.ceil(csv.length / 32) * 32)
  data[31] = 128
  data[63] = column
  new DataView(data.buffer).setUint32(4 * 32 + 28, csv.length)
  data.set(csv, CSV_AT)
  return data
}

const call = (data: Uint8Array) => makePrecompile('csvColumn')({ data, gasLimit: 10_000_000_000n } as PrecompileInput)

test('records without commas: the bytes looked at grow linearly with the text', () => {
  for (const records of [1_000, 16_000]) {
    const data = csvCall('1\n'.repeat(records))
    const w = watch(data)
    const r = call(w.data)
    assert.is(r.exceptionError, undefined)
    const textBytes = 2 * records
    // A linear parse looks at each byte a few times (newline search, comma search, the digit).
    assert.ok(w.touched() <= 8 * textBytes, `${records} records (${textBytes} bytes): ${w.touched()} bytes looked at`)
  }
})

test('the last column of comma-separated records: still linear', () => {
  const data = csvCall('1,2,3\n'.repeat(10_000), 2)
  const w = watch(data)
  assert.is(call(w.data).exceptionError, undefined)
  assert.ok(w.touched() <= 8 * 60_000, `${w.touched()} bytes looked at`)
})

test('a number longer than int256 allows fails at its 78th significant digit, not after a million', () => {
  const digits = 1_000_000
  const data = csvCall('0'.repeat(1000) + '1'.repeat(digits) + '\n')
  const w = watch(data)
  const r = call(w.data)
  assert.ok(r.exceptionError !== undefined, 'out of int256 range')
  const start = CSV_AT + 1000
  const digitsRead = w.readsIn(start, start + digits)
  assert.ok(digitsRead <= 100, `read ${digitsRead} of the ${digits} digits one by one`)
})

test('numbers with leading zeros and the widest int256 values still parse', () => {
  const max = (1n << 255n) - 1n
  const data = csvCall(`${'0'.repeat(500)}42\n${max}\n-${max + 1n}\n0.000\n`)
  const r = call(data)
  assert.is(r.exceptionError, undefined)
  const words = Array.from({ length: 4 }, (_, i) => BigInt.asIntN(256, BigInt('0x' + Buffer.from(r.returnValue.subarray(64 + 32 * i, 96 + 32 * i)).toString('hex'))))
  assert.equal(words, [42n, max, -(max + 1n), 0n])
  assert.ok(call(csvCall(`${max + 1n}\n`)).exceptionError !== undefined, '2^255 is out of range')
})

test.run()
