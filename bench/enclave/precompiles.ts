// Precompile benchmark: CPU time per gas of every precompile the confined EVM lets an analysis reach
// (the analytics ones and the standard ones), on the worst inputs we know of for each, so that gas
// bounds the node's CPU whatever a buyer's code calls. Prints a Markdown section; with --write it
// replaces `## Precompiles` in BENCHMARKS.md.
//
//   node bench/enclave/precompiles.ts [--write] [--quick]
//
// CPU time is process.cpuUsage() (user + system) around repeated calls of one precompile function,
// taken from the confined EVM's own table (createConfinedEvm), so overrides of prices apply. A row's
// gas is what the call is charged with an ample gas limit; "CPU ms/Mgas" = CPU ms per call / gas per
// call × 10^6. The worst row of each precompile is marked. The last table calls sort with 262,144
// values and only 300 gas: the cost of an underfunded call, which must fail before it works.
import { cpus, loadavg } from 'node:os'
import { AbiCoder, getBytes, keccak256, randomBytes, Wallet } from 'ethers'
import { getActivePrecompiles } from '@ethereumjs/evm'
import type { PrecompileFunc, PrecompileInput } from '@ethereumjs/evm'
import { bn254 } from '@noble/curves/bn254.js'
import { MAX_CPU_MS_PER_MGAS } from '../../enclave/constants.ts'
import { createConfinedEvm, STANDARD_PRECOMPILE_GAS_FACTOR, STANDARD_PRECOMPILES } from '../../enclave/evm.ts'
import { encodeIntArray, PRECOMPILE_ADDRESSES } from '../../enclave/precompiles.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { writeBenchmarkSections } from '../benchmarks-md.ts'

const args = process.argv.slice(2)
const write = args.includes('--write')
const quick = args.includes('--quick')
/** CPU time each measurement accumulates (repeats a call until then), ms. */
const MIN_CPU_MS = quick ? 50 : 300
const GAS_LIMIT = 2_000_000_000n
/** What a STATICCALL to a (warm) precompile costs besides the precompile's own price (EIP-2929). */
const CALL_GAS = 100n

const abi = AbiCoder.defaultAbiCoder()
const evm = await createConfinedEvm()
const hex = (n: number): string => '0x' + n.toString(16).padStart(40, '0')

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

interface Row { precompile: string, input: string, gas: bigint, ms: number, ok: boolean }

// The hardfork's own table, for the standard precompiles the confined EVM removes (to show why).
const standardTable = getActivePrecompiles(evm.common)

async function measure (address: string, data: Uint8Array, gasLimit = GAS_LIMIT): Promise<{ gas: bigint, ms: number, ok: boolean }> {
  const fn: PrecompileFunc | undefined = evm.getPrecompile(address as `0x${string}`) ?? standardTable.get(address.slice(2))
  if (fn === undefined) throw new Error(`no precompile at ${address}`)
  const input = { data, gasLimit, common: evm.common, _EVM: evm } as PrecompileInput
  const first = await fn(input)
  let calls = 0
  const start = cpuMs()
  let spent = 0
  while (spent < MIN_CPU_MS) { await fn(input); calls++; spent = cpuMs() - start }
  return { gas: first.executionGasUsed + CALL_GAS, ms: spent / calls, ok: first.exceptionError === undefined }
}

const word = (v: bigint): Uint8Array => getBytes(abi.encode(['uint256'], [v]))
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}
const ones = (n: number): Uint8Array => new Uint8Array(n).fill(0xff)
function modexp (b: number, e: number, m: number): Uint8Array {
  const mod = randomBytes(m); mod[0] |= 0x80; mod[m - 1] |= 1
  const base = randomBytes(b)
  return concat(word(BigInt(b)), word(BigInt(e)), word(BigInt(m)), base, ones(e), mod)
}
function blake2f (rounds: number): Uint8Array {
  const d = new Uint8Array(213)
  new DataView(d.buffer).setUint32(0, rounds)
  d.set(randomBytes(64 + 128 + 16), 4)
  d[212] = 1
  return d
}
const fp = (v: bigint): Uint8Array => word(v)
const G1 = bn254.G1.Point.BASE.toAffine()
const G2 = bn254.G2.Point.BASE.toAffine()
const g1 = (k: bigint): Uint8Array => { const p = bn254.G1.Point.BASE.multiply(k).toAffine(); return concat(fp(p.x), fp(p.y)) }
const g2Bytes = concat(fp(G2.x.c1), fp(G2.x.c0), fp(G2.y.c1), fp(G2.y.c0))
function pairing (pairs: number): Uint8Array {
  const parts: Uint8Array[] = []
  for (let i = 0; i < pairs; i++) parts.push(g1(BigInt(i + 2)), g2Bytes)
  return concat(...parts)
}
async function ecrecoverInput (): Promise<Uint8Array> {
  const w = Wallet.createRandom()
  const digest = keccak256(randomBytes(32))
  const sig = w.signingKey.sign(digest)
  return concat(getBytes(digest), word(BigInt(sig.v)), getBytes(sig.r), getBytes(sig.s))
}

const N = quick ? 65_536 : 262_144
const smallValues = (n: number): bigint[] => Array.from({ length: n }, () => BigInt.asIntN(63, BigInt('0x' + Buffer.from(randomBytes(8)).toString('hex'))))
const wideValues = (n: number): bigint[] => Array.from({ length: n }, () => BigInt.asIntN(250, BigInt('0x' + Buffer.from(randomBytes(32)).toString('hex'))))
const enc = (types: string[], values: unknown[]): Uint8Array => getBytes(abi.encode(types, values))
const csvCall = (csv: Uint8Array, column: number, decimals: number, header: boolean): Uint8Array =>
  enc(['bytes', 'uint256', 'uint256', 'uint256'], [csv, column, decimals, header ? 1 : 0])
const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const csvBytes = quick ? 256 * 1024 : 1024 * 1024

function ours (): Array<[string, string, Uint8Array]> {
  const small = smallValues(N)
  const wide = wideValues(N)
  const sortedSmall = [...small].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
  const longNumbers = Array.from({ length: Math.floor(csvBytes / 72) }, () => '9'.repeat(70)).join('\n') + '\n'
  return [
    ['csvColumn', `sample CSV (id,value,x,y), ${csvBytes >> 10} KiB, column 1`, csvCall(sampleDataset(Math.floor(csvBytes / 19.5), 1), 1, 0, true)],
    ['csvColumn', `"1\\n" records, no comma, ${csvBytes >> 10} KiB, column 0`, csvCall(text('1\n'.repeat(csvBytes / 2)), 0, 0, false)],
    ['csvColumn', `70-digit numbers, ${csvBytes >> 10} KiB, 6 decimals`, csvCall(text(longNumbers), 0, 6, false)],
    ['csvColumn', `1,000-column records, ${csvBytes >> 10} KiB, column 999`, csvCall(text(('0,'.repeat(999) + '1\n').repeat(Math.floor(csvBytes / 2000))), 999, 0, false)],
    ['stats', `${N} int64 values`, encodeIntArray(small)],
    ['stats', `${N} 100-bit values`, encodeIntArray(wide.map(v => v >> 150n))],
    ['sort', `${N} random int64 values`, encodeIntArray(small)],
    ['sort', `${N} sorted int64 values`, encodeIntArray(sortedSmall)],
    ['sort', `${N} random 250-bit values`, encodeIntArray(wide)],
    ['histogram', `${N} int64 values, 4096 buckets`, enc(['int256[]', 'int256', 'int256', 'uint256'], [small, -(1n << 62n), 1n << 51n, 4096])],
    ['histogram', `${N} 250-bit values, 4096 buckets`, enc(['int256[]', 'int256', 'int256', 'uint256'], [wide, -(1n << 249n), 1n << 238n, 4096])],
    ['histogram', '1 value, 4096 buckets', enc(['int256[]', 'int256', 'int256', 'uint256'], [[1n], 0n, 1n, 4096])],
    ['countInRange', `${N} int64 values`, enc(['int256[]', 'int256', 'int256'], [small, -(1n << 61n), 1n << 61n])],
    ['countInRange', `${N} 250-bit values`, enc(['int256[]', 'int256', 'int256'], [wide, -(1n << 248n), 1n << 248n])],
    ['linearFit', `${N} int64 pairs`, enc(['int256[]', 'int256[]'], [small, [...small].reverse()])],
    ['linearFit', `${N} 120-bit pairs`, enc(['int256[]', 'int256[]'], [wide.map(v => v >> 130n), wide.map(v => v >> 131n)])],
    ...fused()
  ]
}

/**
 * The fused precompiles on the inputs worst for them: the most records a byte ("1\n"), the slow path from the
 * first record (70-digit numbers) and the slow path after a whole fast parse (small numbers, the last one
 * of 30 digits: both parses run), long records, and random values for csvQuantile's selection.
 */
function fused (): Array<[string, string, Uint8Array]> {
  const kib = `${csvBytes >> 10} KiB`
  const sample = sampleDataset(Math.floor(csvBytes / 19.5), 1)
  const ones = text('1\n'.repeat(csvBytes / 2))
  const pairs = text('1,2\n'.repeat(csvBytes / 4))
  // 30 digits: past the fast path's 15, and its square still within int256 (csvStats' variance)
  const lateWide = text('1\n'.repeat(csvBytes / 2 - 16) + '9'.repeat(30) + '\n')
  const lateWidePairs = text('1,2\n'.repeat(csvBytes / 4 - 8) + '1,' + '9'.repeat(30) + '\n')
  const longNumbers = text(Array.from({ length: Math.floor(csvBytes / 72) }, () => '9'.repeat(70)).join('\n') + '\n')
  const random = text(Array.from({ length: Math.floor(csvBytes / 8) }, () => String(Number(randomBytes(4).reduce((a, b) => a * 256 + b, 0)) % 10_000_000)).join('\n') + '\n')
  const longRecords = text(('0,'.repeat(999) + '1\n').repeat(Math.floor(csvBytes / 2000)))
  const call = (csv: Uint8Array, header: boolean, columns: number[], types: string[] = [], values: unknown[] = []): Uint8Array =>
    enc(['bytes[]', ...columns.map(() => 'uint256'), 'uint256', 'uint256', ...types], [[csv], ...columns, 0, header ? 1 : 0, ...values])
  const one: Array<[string, Uint8Array, boolean, number]> = [
    [`sample CSV (id,value,x,y), ${kib}, column 1`, sample, true, 1],
    [`"1\\n" records, ${kib}`, ones, false, 0],
    [`70-digit numbers, ${kib} (slow path)`, longNumbers, false, 0],
    [`"1\\n" records, the last one 30 digits, ${kib} (both paths)`, lateWide, false, 0],
    [`1,000-column records, ${kib}, column 999`, longRecords, false, 999]
  ]
  const rows: Array<[string, string, Uint8Array]> = []
  for (const [label, csv, header, column] of one) {
    rows.push(['csvStats', label, call(csv, header, [column])])
    rows.push(['csvHistogram', `${label}, 4096 buckets`, call(csv, header, [column], ['int256', 'int256', 'uint256'], [-(1n << 62n), 1n << 51n, 4096])])
    rows.push(['csvCountInRange', label, call(csv, header, [column], ['int256', 'int256'], [-(1n << 61n), 1n << 61n])])
    rows.push(['csvQuantile', label, call(csv, header, [column], ['uint256', 'uint256'], [1, 2])])
  }
  rows.push(['csvQuantile', `random values < 10^7, ${kib}`, call(random, false, [0], ['uint256', 'uint256'], [1, 2])])
  rows.push(['csvLinearFit', `sample CSV (id,value,x,y), ${kib}, columns 2, 3`, call(sample, true, [2, 3])])
  rows.push(['csvLinearFit', `"1,2\\n" records, ${kib}`, call(pairs, false, [0, 1])])
  rows.push(['csvLinearFit', `70-digit numbers, ${kib} (slow path)`, call(longNumbers, false, [0, 0])])
  rows.push(['csvLinearFit', `"1,2\\n" records, the last y 30 digits, ${kib} (both paths)`, call(lateWidePairs, false, [0, 1])])
  return rows
}

async function standard (): Promise<Array<[number, string, string, Uint8Array]>> {
  return [
    [1, 'ecrecover', 'valid signature', await ecrecoverInput()],
    [1, 'ecrecover', 'invalid signature (r = 0)', new Uint8Array(128)],
    [2, 'sha256', '0 bytes', new Uint8Array(0)],
    [2, 'sha256', '32 bytes', randomBytes(32)],
    [2, 'sha256', '1 MiB', randomBytes(1 << 20)],
    [3, 'ripemd160', '0 bytes', new Uint8Array(0)],
    [3, 'ripemd160', '32 bytes', randomBytes(32)],
    [3, 'ripemd160', '1 MiB', randomBytes(1 << 20)],
    [4, 'identity', '0 bytes', new Uint8Array(0)],
    [4, 'identity', '1 MiB', randomBytes(1 << 20)],
    [5, 'modexp', 'b,m 1 byte, e 32 bytes of 0xff', modexp(1, 32, 1)],
    [5, 'modexp', 'b,m 8 bytes, e 32 bytes of 0xff', modexp(8, 32, 8)],
    [5, 'modexp', 'b,m 8 bytes, e 64 bytes of 0xff', modexp(8, 64, 8)],
    [5, 'modexp', 'b,m 1 byte, e 1 KiB of 0xff', modexp(1, 1024, 1)],
    [5, 'modexp', 'b,m 32 bytes, e 32 bytes of 0xff', modexp(32, 32, 32)],
    [5, 'modexp', 'b,m 64 bytes, e 64 bytes of 0xff', modexp(64, 64, 64)],
    [5, 'modexp', 'b,m 256 bytes, e 32 bytes of 0xff', modexp(256, 32, 256)],
    [5, 'modexp', 'b,m 1 KiB, e 32 bytes of 0xff', modexp(1024, 32, 1024)],
    [6, 'bn254 add', 'G + 2G', concat(g1(1n), g1(2n))],
    [7, 'bn254 mul', 'G × (2^256 − 1)', concat(fp(G1.x), fp(G1.y), ones(32))],
    [8, 'bn254 pairing', '0 pairs', new Uint8Array(0)],
    [8, 'bn254 pairing', '1 pair', pairing(1)],
    [8, 'bn254 pairing', '4 pairs', pairing(4)],
    [9, 'blake2f', '0 rounds', blake2f(0)],
    [9, 'blake2f', '12 rounds', blake2f(12)],
    [9, 'blake2f', '100,000 rounds', blake2f(100_000)]
  ]
}

const rows: Row[] = []
for (const [name, label, data] of ours()) {
  const m = await measure(PRECOMPILE_ADDRESSES[name as keyof typeof PRECOMPILE_ADDRESSES], data)
  rows.push({ precompile: `${name} (${PRECOMPILE_ADDRESSES[name as keyof typeof PRECOMPILE_ADDRESSES].slice(-4)})`, input: label, ...m })
}
for (const [n, name, label, data] of await standard()) {
  const reachable = STANDARD_PRECOMPILES.includes(n)
  const factor = STANDARD_PRECOMPILE_GAS_FACTOR[n] ?? 1n
  const m = await measure(hex(n), data)
  const note = !reachable ? ', not reachable' : factor !== 1n ? `, gas ×${factor}` : ''
  rows.push({ precompile: `${name} (0x${n.toString(16).padStart(2, '0')}${note})`, input: label, ...m })
}

// Sort, 262,144 values, 300 gas: what an underfunded call costs the node.
const poor = encodeIntArray(smallValues(262_144))
const underfunded = await measure(PRECOMPILE_ADDRESSES.sort, poor, 300n)
const funded = await measure(PRECOMPILE_ADDRESSES.sort, poor)

const lines: string[] = []
const out = (s = ''): void => { lines.push(s); process.stdout.write(s + '\n') }
const fmt = (n: number): string => n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)
out('## Precompiles')
out()
out(`Measured by \`node bench/enclave/precompiles.ts\` on ${cpus()[0]?.model ?? 'this machine'} (${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at start), Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}. CPU time from process.cpuUsage() over repeated calls (at least ${MIN_CPU_MS} ms of CPU a row); gas is what the confined EVM charges the call plus the STATICCALL's own 100 (warm access). Precompiles marked \"not reachable\" are measured at their standard price from @ethereumjs/evm's table, to show why the confined EVM refuses them. For scale: the interpreter runs the plain analyses at about 12-17 Mgas/s (the Enclave table), i.e. 60-80 CPU ms per Mgas. ★ marks each precompile's worst row; the bound the prices are set for is MAX_CPU_MS_PER_MGAS = ${MAX_CPU_MS_PER_MGAS} (enclave/constants.ts), and ⚠ marks a row of a reachable precompile over it.`)
out()
out('### CPU ms per Mgas, worst input, per precompile')
out()
out('| precompile | input | ok | gas (+100) | CPU ms/call | CPU ms/Mgas |')
out('|---|---|---|---:|---:|---:|')
const perMgas = (r: Row): number => r.ms / Number(r.gas) * 1e6
const worst = new Map<string, Row>()
for (const r of rows) { const w = worst.get(r.precompile); if (w === undefined || perMgas(r) > perMgas(w)) worst.set(r.precompile, r) }
for (const r of rows) {
  const star = (worst.get(r.precompile) === r ? ' ★' : '') + (perMgas(r) > MAX_CPU_MS_PER_MGAS && !r.precompile.includes('not reachable') ? ' ⚠' : '')
  out(`| ${r.precompile} | ${r.input} | ${r.ok ? 'yes' : 'no'} | ${r.gas.toLocaleString('en')} | ${fmt(r.ms)} | ${fmt(perMgas(r))}${star} |`)
}
out()
out('### An underfunded call: sort, 262,144 int64 values')
out()
out('| gas limit | ok | gas charged (the precompile) | CPU ms/call |')
out('|---:|---|---:|---:|')
out(`| 300 | ${underfunded.ok ? 'yes' : 'no'} | ${(underfunded.gas - CALL_GAS).toLocaleString('en')} | ${underfunded.ms.toFixed(3)} |`)
out(`| ${GAS_LIMIT.toLocaleString('en')} | ${funded.ok ? 'yes' : 'no'} | ${(funded.gas - CALL_GAS).toLocaleString('en')} | ${funded.ms.toFixed(1)} |`)
out()

if (write) {
  writeBenchmarkSections([lines.join('\n')])
  process.stdout.write('wrote the Precompiles section of BENCHMARKS.md\n')
}
