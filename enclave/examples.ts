// The example analyses of contracts/analysis/, their sample dataset, and the same computations in
// plain TypeScript: the reference the tests check both builds against, and the benchmark's baseline.
// Nothing here runs inside the enclave.
import { AbiCoder, getBytes } from 'ethers'
import { FIXED_POINT_SCALE } from './constants.ts'

const abi = AbiCoder.defaultAbiCoder()

/** Column layout of the sample dataset: `id,value,x,y` with a header line. */
export const SAMPLE_HEADER = 'id,value,x,y\n'

export const EXAMPLE_ANALYSES = ['Stats', 'Histogram', 'FilterCount', 'LinearFit'] as const
export type ExampleAnalysis = typeof EXAMPLE_ANALYSES[number]
/** Analyses built on ordering the values (kept apart: the plain build's in-EVM sort is slow). */
export const SORT_ANALYSES = ['Median'] as const
export type AnyAnalysis = ExampleAnalysis | typeof SORT_ANALYSES[number]
export const ALL_ANALYSES: readonly AnyAnalysis[] = [...EXAMPLE_ANALYSES, ...SORT_ANALYSES]

/**
 * A deterministic sample dataset of `records` rows: value in 0..1099 (so the histogram's last,
 * clamping bucket is used), x in -500..499, y = 3x + 7 + noise in -50..50.
 */
export function sampleDataset (records: number, seed = 1): Uint8Array {
  let s = seed >>> 0
  const rand = (n: number): number => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (((t ^ (t >>> 14)) >>> 0) % n)
  }
  const parts: string[] = [SAMPLE_HEADER]
  for (let i = 0; i < records; i++) {
    const x = rand(1000) - 500
    parts.push(`${i},${rand(1100)},${x},${3 * x + 7 + rand(101) - 50}\n`)
  }
  return new TextEncoder().encode(parts.join(''))
}

/** Columns of a dataset in the sample layout (header skipped, empty lines skipped). */
function columns (data: Uint8Array): { value: bigint[], x: bigint[], y: bigint[] } {
  const value: bigint[] = []; const x: bigint[] = []; const y: bigint[] = []
  const lines = new TextDecoder().decode(data).split('\n')
  let header = true
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '')
    if (line === '') continue
    if (header) { header = false; continue }
    const f = line.split(',')
    value.push(BigInt(f[1])); x.push(BigInt(f[2])); y.push(BigInt(f[3]))
  }
  return { value, x, y }
}

/** The expected output of each example analysis over `inputs`, computed in plain TypeScript. */
export function referenceOutput (analysis: AnyAnalysis, inputs: Uint8Array[]): Uint8Array {
  const cols = inputs.map(columns)
  const value = cols.flatMap(c => c.value)
  switch (analysis) {
    case 'Stats': {
      const n = BigInt(value.length)
      if (n === 0n) return getBytes(abi.encode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'], [0, 0, 0, 0, 0, 0]))
      let sum = 0n; let sq = 0n; let min = value[0]; let max = value[0]
      for (const v of value) { sum += v; sq += v * v; if (v < min) min = v; if (v > max) max = v }
      return getBytes(abi.encode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'],
        [n, sum, min, max, sum * FIXED_POINT_SCALE / n, (n * sq - sum * sum) * FIXED_POINT_SCALE / (n * n)]))
    }
    case 'Histogram': {
      const counts = new Array<bigint>(10).fill(0n)
      for (const v of value) counts[Math.min(9, v < 0n ? 0 : Number(v / 100n))]++
      return getBytes(abi.encode(['uint256[]'], [counts]))
    }
    case 'FilterCount': {
      let c = 0n
      for (const v of value) if (v >= 500n && v <= 899n) c++
      return getBytes(abi.encode(['uint256'], [c]))
    }
    case 'LinearFit': {
      const xs = cols.flatMap(c => c.x); const ys = cols.flatMap(c => c.y)
      const n = BigInt(xs.length)
      let sx = 0n; let sy = 0n; let sxx = 0n; let sxy = 0n
      for (let i = 0; i < xs.length; i++) { sx += xs[i]; sy += ys[i]; sxx += xs[i] * xs[i]; sxy += xs[i] * ys[i] }
      const den = n * sxx - sx * sx
      if (n < 2n || den === 0n) return getBytes(abi.encode(['uint256', 'int256', 'int256'], [n, 0, 0]))
      const slope = (n * sxy - sx * sy) * FIXED_POINT_SCALE / den
      return getBytes(abi.encode(['uint256', 'int256', 'int256'], [n, slope, (sy * FIXED_POINT_SCALE - slope * sx) / n]))
    }
    case 'Median': {
      const v = [...value].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0))
      const n = v.length
      if (n === 0) return getBytes(abi.encode(['uint256', 'int256'], [0, 0]))
      const median = n % 2 === 1 ? v[n >> 1] * FIXED_POINT_SCALE : (v[n / 2 - 1] + v[n / 2]) * FIXED_POINT_SCALE / 2n
      return getBytes(abi.encode(['uint256', 'int256'], [n, median]))
    }
  }
}
