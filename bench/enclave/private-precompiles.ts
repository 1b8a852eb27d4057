// Private precompile benchmark: CPU time per gas of each private precompile (enclave/private.ts) on the worst
// inputs known for it, so that their prices (PRIVATE_PRECOMPILE_GAS: per byte of input, never per record) bound
// the node's CPU. Each call runs on a fresh PrivateRun (its parse included, no cache), through the EVM precompile
// wrapper with an ample gas limit. Prints a Markdown section; with --write it replaces `## Private precompiles`
// in BENCHMARKS.md.
//
//   node bench/enclave/private-precompiles.ts [--write] [--quick]
import { cpus, loadavg } from 'node:os'
import { AbiCoder, getBytes } from 'ethers'
import type { PrecompileInput } from '@ethereumjs/evm'
import { MAX_CPU_MS_PER_MGAS, MAX_CLAMP_ABS } from '../../enclave/constants.ts'
import { makePrivatePrecompile, PrivateRun } from '../../enclave/private.ts'
import type { PrivatePrecompileName } from '../../enclave/precompiles.ts'
import { writeBenchmarkSections } from '../benchmarks-md.ts'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const SIZE = quick ? 256 * 1024 : 4 * 1024 * 1024
const abi = AbiCoder.defaultAbiCoder()
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

const inputs: Record<string, string> = {
  'two-byte records `5\\n` (comma-less)': '5\n',
  'two columns `5,7\\n`': '5,7\n',
  'fields that do not parse `x,y\\n`': 'x,y\n',
  '18-digit numbers': '123456789012345678,-98765432109876543\n'
}
const calls: Array<{ name: PrivatePrecompileName, args: () => Uint8Array, twoColumns?: boolean }> = [
  { name: 'privateCount', args: () => getBytes(abi.encode(['uint256', 'uint256'], [0, 1_000_000])) },
  { name: 'privateSum', args: () => getBytes(abi.encode(['uint256', 'uint256'], [0, 1_000_000])) },
  { name: 'privateMean', args: () => getBytes(abi.encode(['uint256', 'uint256'], [0, 1_000_000])) },
  { name: 'privateHistogram', args: () => getBytes(abi.encode(['uint256', 'int256', 'int256', 'uint256', 'uint256'], [0, 0, 1, 4096, 1_000_000])) },
  { name: 'privateQuantile', args: () => getBytes(abi.encode(['uint256', 'uint256', 'int256', 'int256', 'uint256', 'uint256'], [0, 500_000, 0, 1, 4096, 1_000_000])) },
  { name: 'privateLinearFit', args: () => getBytes(abi.encode(['uint256', 'uint256', 'uint256'], [0, 1, 1_000_000])), twoColumns: true }
]

const lines: string[] = ['## Private precompiles', '']
lines.push(`Measured by \`node bench/enclave/private-precompiles.ts${quick ? ' --quick' : ''}\` on ${cpus()[0]?.model ?? 'this machine'} (${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at start), Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}; ${SIZE / 1024} KiB of input, each call on a fresh run (parse included), CPU from process.cpuUsage(). Bound: MAX_CPU_MS_PER_MGAS = ${MAX_CPU_MS_PER_MGAS}; ⚠ marks a row over it.`, '')
lines.push('| precompile | input | gas | CPU ms | CPU ms/Mgas |', '|---|---|---:|---:|---:|')
for (const call of calls) {
  for (const [label, record] of Object.entries(inputs)) {
    if (call.twoColumns === true && record === '5\n') continue
    const data = new TextEncoder().encode(record.repeat(Math.floor(SIZE / record.length)))
    const columns = [0, 1].map(c => ({ column: c, decimals: 0, lo: -MAX_CLAMP_ABS, hi: MAX_CLAMP_ABS }))
    const run = new PrivateRun({ epsilon: 10n ** 9n, noiseKey: new Uint8Array(32).fill(1), sellers: [{ skipHeader: false, columns }] }, [data])
    const fn = makePrivatePrecompile(call.name, run)
    const t0 = cpuMs()
    const r = fn({ data: call.args(), gasLimit: 2_000_000_000n } as PrecompileInput)
    const ms = cpuMs() - t0
    const gas = r.executionGasUsed
    const perMgas = ms / (Number(gas) / 1e6)
    lines.push(`| ${call.name} | ${label} | ${gas} | ${ms.toFixed(0)} | ${perMgas.toFixed(1)}${perMgas > MAX_CPU_MS_PER_MGAS ? ' ⚠' : ''}${r.exceptionError !== undefined ? ' (failed)' : ''} |`)
  }
}
const text = lines.join('\n') + '\n'
process.stdout.write(text)
if (args.includes('--write')) writeBenchmarkSections([text])
