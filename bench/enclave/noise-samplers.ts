// Noise sampler benchmark: CPU time of the private mode's sampling alone (enclave/noise.ts through the mechanisms
// of enclave/private.ts), records already parsed, at the scales and sizes the private precompiles allow. Run it on
// two builds (before/after a sampler change) under the bench lock and compare the ratios. Prints a Markdown table.
//
//   node bench/enclave/noise-samplers.ts [--quick]
import { cpus, loadavg } from 'node:os'
import { callStream, dpCount, dpHistogram, dpQuantile, dpSum } from '../../enclave/private.ts'
import { MAX_CLAMP_ABS } from '../../enclave/constants.ts'

const quick = process.argv.includes('--quick')
const REPEAT = quick ? 3 : 10
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
const key = new Uint8Array(32).fill(3)
const values = Array.from({ length: 10_000 }, (_, i) => BigInt((i * 7919) % 1000))
const wide = { lo: -MAX_CLAMP_ABS, hi: MAX_CLAMP_ABS, decimals: 0 }

const cases: Array<{ what: string, samples: number, run: (i: number) => unknown }> = [
  { what: 'privateCount noise, ε 1 (scale 1)', samples: 2000, run: i => dpCount(callStream(key, i), values, 1_000_000n) },
  { what: 'privateCount noise, ε 0.01 (scale 100)', samples: 2000, run: i => dpCount(callStream(key, i), values, 10_000n) },
  { what: 'privateCount noise, ε 1000 (scale 0.001)', samples: 200, run: i => dpCount(callStream(key, i), values, 1000_000_000n) },
  { what: 'privateSum noise, ±10^18 at ε 1 (scale 10^18)', samples: 500, run: i => dpSum(callStream(key, i), values, wide, 1_000_000n) },
  { what: 'privateHistogram, 4096 buckets, ε 1', samples: 1, run: i => dpHistogram(callStream(key, i), values, 0n, 1n, 4096, 1_000_000n) },
  { what: 'privateHistogram, 4096 buckets, ε 1000', samples: 1, run: i => dpHistogram(callStream(key, i), values, 0n, 1n, 4096, 1000_000_000n) },
  { what: 'privateQuantile, 64 candidates, ε 1', samples: 50, run: i => dpQuantile(callStream(key, i), values, 500_000n, 0n, 16n, 64, 1_000_000n) },
  { what: 'privateQuantile, 4096 candidates, ε 1', samples: 1, run: i => dpQuantile(callStream(key, i), values, 500_000n, 0n, 1n, 4096, 1_000_000n) },
  { what: 'privateQuantile, 4096 candidates, ε 100', samples: 1, run: i => dpQuantile(callStream(key, i), values, 500_000n, 0n, 1n, 4096, 100_000_000n) },
  { what: 'privateQuantile, 4096 candidates, ε 1000', samples: 1, run: i => dpQuantile(callStream(key, i), values, 500_000n, 0n, 1n, 4096, 1000_000_000n) }
]

const lines = [`Measured by \`node bench/enclave/noise-samplers.ts${quick ? ' --quick' : ''}\` on ${cpus()[0]?.model ?? 'this machine'} (${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at start), Node ${process.versions.node}; best of ${REPEAT} repetitions, CPU from process.cpuUsage().`, '', '| what | calls | CPU ms per call |', '|---|---:|---:|']
for (const c of cases) {
  let best = Infinity
  for (let r = 0; r < REPEAT; r++) {
    const t0 = cpuMs()
    for (let i = 0; i < c.samples; i++) c.run(r * c.samples + i)
    best = Math.min(best, (cpuMs() - t0) / c.samples)
  }
  lines.push(`| ${c.what} | ${c.samples} | ${best.toFixed(3)} |`)
}
process.stdout.write(lines.join('\n') + '\n')
