// The analytics precompiles: parsing and arithmetic rules, ABI, gas, and failure behaviour.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbiCoder, getBytes, hexlify } from 'ethers'
import {
  computeStats, countInRange, encodeIntArray, histogram, linearFit, makePrecompile, parseCsvColumn, PRECOMPILE_GAS,
  PrecompileInputError
} from '../../../enclave/precompiles.ts'
import type { PrecompileInput } from '@ethereumjs/evm'
import { createConfinedEvm, STANDARD_PRECOMPILE_GAS_FACTOR } from '../../../enclave/evm.ts'
import { throwsWith } from '../../helpers/enclave.ts'

const abi = AbiCoder.defaultAbiCoder()
const text = (s: string) => new TextEncoder().encode(s)
const call = (name: Parameters<typeof makePrecompile>[0], data: Uint8Array, gasLimit = 10_000_000n) =>
  makePrecompile(name)({ data, gasLimit } as PrecompileInput)

test('csv column: header, CRLF, blank lines, spaces, signs, decimals truncated toward zero', () => {
  const csv = text('name,price\r\na, 12.345\r\n\r\nb,-0.5\nc,+7\nd,3.1')
  assert.equal(parseCsvColumn(csv, 1, 2, true), [1234n, -50n, 700n, 310n])
  assert.equal(parseCsvColumn(csv, 1, 0, true), [12n, 0n, 7n, 3n])
  assert.equal(parseCsvColumn(text('x\n123456789012345678901234567890\n'), 0, 0, true), [123456789012345678901234567890n])
  throwsWith(() => parseCsvColumn(csv, 1, 0, false), 'PrecompileInputError') // the header is not a number
  throwsWith(() => parseCsvColumn(text('1,2\n3\n'), 1, 0, false), 'PrecompileInputError') // missing column
  throwsWith(() => parseCsvColumn(text('1,2e3\n'), 1, 0, false), 'PrecompileInputError')
  throwsWith(() => parseCsvColumn(text('1,-\n'), 1, 0, false), 'PrecompileInputError')
  throwsWith(() => parseCsvColumn(text('1\n'), 0, 19, false), 'PrecompileInputError')
})

test('stats: truncating fixed-point mean and population variance; empty input is all zero', () => {
  const s = computeStats([-7n, 2n, 2n])
  assert.equal(s, { count: 3n, sum: -3n, min: -7n, max: 2n, mean: -1_000_000n, variance: 18_000_000n })
  assert.is(computeStats([1n, 2n]).mean, 1_500_000n)
  assert.is(computeStats([-1n, -2n]).mean, -1_500_000n)
  assert.equal(computeStats([]), { count: 0n, sum: 0n, min: 0n, max: 0n, mean: 0n, variance: 0n })
})

test('histogram clamps out-of-range values into the end buckets; range count is inclusive', () => {
  assert.equal(histogram([-5n, 0n, 9n, 10n, 29n, 30n, 1000n], 0n, 10n, 3), [3n, 1n, 3n])
  throwsWith(() => histogram([1n], 0n, 0n, 3), 'PrecompileInputError')
  throwsWith(() => histogram([1n], 0n, 1n, 5000), 'PrecompileInputError')
  assert.is(countInRange([1n, 5n, 9n, 10n], 5n, 9n), 2n)
})

test('linear fit: exact line, and undefined fits are zero', () => {
  const xs = [0n, 1n, 2n, 3n]
  assert.equal(linearFit(xs, xs.map(x => 2n * x + 1n)), { count: 4n, slope: 2_000_000n, intercept: 1_000_000n })
  assert.equal(linearFit([5n, 5n], [1n, 2n]), { count: 2n, slope: 0n, intercept: 0n })
  throwsWith(() => linearFit([1n], []), 'PrecompileInputError')
})

test('precompile ABI: abi.encode in, abi.encode out, gas per byte and per item', () => {
  const csv = text('v\n3\n-1\n2\n')
  const parsed = call('csvColumn', getBytes(abi.encode(['bytes', 'uint256', 'uint256', 'uint256'], [csv, 0, 0, 1])))
  assert.is(parsed.exceptionError, undefined)
  assert.equal([...abi.decode(['int256[]'], parsed.returnValue)[0]], [3n, -1n, 2n])
  const g = PRECOMPILE_GAS.csvColumn
  assert.is(parsed.executionGasUsed, g.base + g.perByte * BigInt(abi.encode(['bytes', 'uint256', 'uint256', 'uint256'], [csv, 0, 0, 1]).length / 2 - 1) + g.perItem * 3n)

  const sorted = call('sort', parsed.returnValue)
  assert.equal([...abi.decode(['int256[]'], sorted.returnValue)[0]], [-1n, 2n, 3n])
  const stats = call('stats', parsed.returnValue)
  assert.equal([...abi.decode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'], stats.returnValue)], [3n, 4n, -1n, 3n, 1_333_333n, 2_888_888n])
  const big = encodeIntArray([-(1n << 200n), 1n << 200n])
  assert.is(hexlify(big), abi.encode(['int256[]'], [[-(1n << 200n), 1n << 200n]]))
  // Variance of ±2^200 does not fit in int256: the call fails rather than wrap around.
  assert.ok(call('stats', big).exceptionError !== undefined)
  const wide = encodeIntArray([-(1n << 100n), 1n << 100n])
  assert.equal([...abi.decode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'], call('stats', wide).returnValue)],
    [2n, 0n, -(1n << 100n), 1n << 100n, 0n, (1n << 200n) * 1_000_000n])
  const hist = call('histogram', getBytes(abi.encode(['int256[]', 'int256', 'int256', 'uint256'], [[1, 15, 25], 0, 10, 2])))
  assert.equal([...abi.decode(['uint256[]'], hist.returnValue)[0]], [1n, 2n])
})

test('a malformed call or too little gas fails and consumes all the gas it was given', () => {
  const bad = call('stats', new Uint8Array(10), 50_000n)
  assert.ok(bad.exceptionError !== undefined)
  assert.is(bad.executionGasUsed, 50_000n)
  const lying = getBytes(abi.encode(['int256[]'], [[1, 2]]))
  lying[63] = 200 // length beyond the data
  assert.ok(call('stats', lying).exceptionError !== undefined)
  const csv = getBytes(abi.encode(['bytes', 'uint256', 'uint256', 'uint256'], [text('1\n2\n'), 0, 0, 0]))
  const poor = call('csvColumn', csv, 100n)
  assert.ok(poor.exceptionError !== undefined)
  assert.is(poor.executionGasUsed, 100n)
  assert.ok(new PrecompileInputError('x') instanceof Error)
})

test('the confined EVM charges ecrecover five times its standard 3,000 gas, and drops modexp..blake2f from its table', async () => {
  const evm = await createConfinedEvm()
  const ecrecover = evm.getPrecompile('0x0000000000000000000000000000000000000001')!
  assert.is(STANDARD_PRECOMPILE_GAS_FACTOR[1], 5n)
  const input = (gasLimit: bigint) => ({ data: new Uint8Array(128), gasLimit, common: evm.common, _EVM: evm }) as PrecompileInput
  const paid = await ecrecover(input(15_000n))
  assert.is(paid.exceptionError, undefined)
  assert.is(paid.executionGasUsed, 15_000n)
  const poor = await ecrecover(input(14_999n))
  assert.ok(poor.exceptionError !== undefined)
  assert.is(poor.executionGasUsed, 14_999n)
  for (const n of [5, 6, 7, 8, 9]) assert.is(evm.getPrecompile(`0x${n.toString(16).padStart(40, '0')}`), undefined, `0x0${n} is gone`)
  assert.ok(evm.getPrecompile('0x0000000000000000000000000000000000000002') !== undefined)
})

test.run()
