// What a user would pick instead of a trade for these analyses (issue 13, "against what a user would pick
// instead"): DuckDB, on the same CSV, computing the same result as enclave/examples.ts's referenceOutput
// (checked equal by the caller). DuckDB is a dev dependency of this benchmark only (@duckdb/node-api);
// without it, openDuckDb says why and the benchmark leaves the comparison out.
//
// Each timed query reads and parses the CSV file (written once, so from the page cache) and aggregates;
// the exact integer aggregates come back as HUGEINT and the fixed-point values are derived from them
// with BigInt, as the contracts do, then ABI-encoded: all of it inside the time. The columns' types are
// given (no sniffing), which is DuckDB's fastest way to read this file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AbiCoder, getBytes } from 'ethers'
import { FIXED_POINT_SCALE } from '../../enclave/constants.ts'
import type { AnyAnalysis } from '../../enclave/examples.ts'

const abi = AbiCoder.defaultAbiCoder()

export interface DuckDb {
  /** DuckDB's worker threads (its default is one per core). */
  threads: number
  version: string
  /** Runs `analysis` over the CSV `data` (written to a temporary file first, outside the time). */
  time: (analysis: AnyAnalysis, data: Uint8Array) => Promise<{ seconds: number, output: Uint8Array }>
  close: () => void
}

const SQL: Record<AnyAnalysis, string> = {
  Stats: 'SELECT count(*), sum(value), min(value), max(value), sum(value::HUGEINT * value) FROM src',
  Histogram: 'SELECT least(9, greatest(0, value // 100)) AS b, count(*) FROM src GROUP BY b',
  FilterCount: 'SELECT count(*) FROM src WHERE value BETWEEN 500 AND 899',
  LinearFit: 'SELECT count(*), sum(x), sum(y), sum(x::HUGEINT * x), sum(x::HUGEINT * y) FROM src',
  Median: 'SELECT count(*), median(value) FROM src'
}

type Row = unknown[]
const big = (v: unknown): bigint => BigInt(v as bigint | number)

function encode (analysis: AnyAnalysis, rows: Row[]): Uint8Array {
  switch (analysis) {
    case 'Stats': {
      const [n, sum, min, max, sq] = rows[0].map(v => v === null ? 0n : big(v))
      if (n === 0n) return getBytes(abi.encode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'], [0, 0, 0, 0, 0, 0]))
      return getBytes(abi.encode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'],
        [n, sum, min, max, sum * FIXED_POINT_SCALE / n, (n * sq - sum * sum) * FIXED_POINT_SCALE / (n * n)]))
    }
    case 'Histogram': {
      const counts = new Array<bigint>(10).fill(0n)
      for (const [b, c] of rows) counts[Number(b)] = big(c)
      return getBytes(abi.encode(['uint256[]'], [counts]))
    }
    case 'FilterCount':
      return getBytes(abi.encode(['uint256'], [big(rows[0][0])]))
    case 'LinearFit': {
      const [n, sx, sy, sxx, sxy] = rows[0].map(v => v === null ? 0n : big(v))
      const den = n * sxx - sx * sx
      if (n < 2n || den === 0n) return getBytes(abi.encode(['uint256', 'int256', 'int256'], [n, 0, 0]))
      const slope = (n * sxy - sx * sy) * FIXED_POINT_SCALE / den
      return getBytes(abi.encode(['uint256', 'int256', 'int256'], [n, slope, (sy * FIXED_POINT_SCALE - slope * sx) / n]))
    }
    case 'Median': {
      const n = big(rows[0][0])
      if (n === 0n) return getBytes(abi.encode(['uint256', 'int256'], [0, 0]))
      // DuckDB's median of integers is the mean of the middle two: a half at most, exact in a double.
      const twice = BigInt(Math.round(Number(rows[0][1]) * 2))
      return getBytes(abi.encode(['uint256', 'int256'], [n, twice * FIXED_POINT_SCALE / 2n]))
    }
  }
}

// The part of @duckdb/node-api used here, declared so that the type check passes where it is not installed.
interface Connection { runAndReadAll: (sql: string) => Promise<{ getRows: () => Row[] }>, closeSync: () => void }
interface DuckDbApi {
  DuckDBInstance: { create: (path: string, options?: Record<string, string>) => Promise<{ connect: () => Promise<Connection>, closeSync: () => void }> }
}
const DUCKDB_PACKAGE = '@duckdb/node-api'

/** An in-memory DuckDB with `threads` threads (default: DuckDB's own), or why there is none. */
export async function openDuckDb (threads?: number): Promise<DuckDb | string> {
  let api: DuckDbApi
  try {
    api = await import(DUCKDB_PACKAGE) as DuckDbApi
  } catch (err) {
    return `@duckdb/node-api is not installed (${(err as Error).message.split('\n')[0]}); \`npm install --save-dev @duckdb/node-api\` to compare`
  }
  const instance = await api.DuckDBInstance.create(':memory:', threads === undefined ? {} : { threads: String(threads) })
  const connection = await instance.connect()
  const setting = (await connection.runAndReadAll("SELECT current_setting('threads'), version()")).getRows()[0]
  const dir = mkdtempSync(join(tmpdir(), 'sdte-duckdb-'))
  const file = join(dir, 'data.csv')
  let written: Uint8Array | undefined
  return {
    threads: Number(setting[0]),
    version: String(setting[1]),
    async time (analysis, data) {
      if (written !== data) { writeFileSync(file, data); written = data }
      const sql = `WITH src AS (SELECT * FROM read_csv('${file}', header = true, columns = {'id': 'BIGINT', 'value': 'BIGINT', 'x': 'BIGINT', 'y': 'BIGINT'})) ${SQL[analysis]}`
      const t = performance.now()
      const rows = (await connection.runAndReadAll(sql)).getRows()
      const output = encode(analysis, rows)
      return { seconds: (performance.now() - t) / 1000, output }
    },
    close () {
      connection.closeSync()
      instance.closeSync()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

// ---- run on its own: the precompile build against DuckDB only ----
//
//   node bench/enclave/duckdb.ts [--records N] [--runs K]
//
// Each analysis's "Fast" build (the confined EVM alone, the CSV in its call data) and DuckDB (default threads
// and one thread) on the same sample CSV, K runs each (default 5) after one warm-up, the median of each
// reported: far quicker than bench/enclave/run.ts, whose DuckDB table this is, and steadier than its one run.
async function main (): Promise<void> {
  const { getBytes: bytesOf, hexlify } = await import('ethers')
  const { cpus, loadavg } = await import('node:os')
  const { loadArtifact } = await import('../../contracts/tools/compile.ts')
  const { runAnalysis } = await import('../../enclave/evm.ts')
  const { ALL_ANALYSES, referenceOutput, sampleDataset } = await import('../../enclave/examples.ts')
  const argv = process.argv.slice(2)
  const opt = (name: string, fallback: number): number => argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback
  const records = opt('--records', 1_000_000)
  const runs = opt('--runs', 5)
  const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
  const dbs = [await openDuckDb(), await openDuckDb(1)]
  const [db, db1] = dbs
  if (typeof db === 'string' || typeof db1 === 'string') { process.stdout.write(`Not measured: ${String(typeof db === 'string' ? db : db1)}\n`); return }
  const input = sampleDataset(records, 42)
  const load = loadavg()[0]
  process.stdout.write(`DuckDB ${db.version}, ${records.toLocaleString('en')} records (${(input.length / 1024 / 1024).toFixed(1)} MiB), median of ${runs} runs, ${cpus()[0]?.model ?? ''} (${cpus().length} cores), load average ${load.toFixed(1)} at start\n\n`)
  process.stdout.write('| analysis | Fast s | Fast Mgas | DuckDB s | DuckDB 1-thread s | Fast vs DuckDB | Fast vs DuckDB 1-thread |\n|---|---:|---:|---:|---:|---:|---:|\n')
  for (const analysis of ALL_ANALYSES) {
    const code = bytesOf(loadArtifact(`${analysis}Fast`).deployedBytecode)
    const expected = hexlify(referenceOutput(analysis, [input]))
    const fast: number[] = []; const d: number[] = []; const d1: number[] = []
    let gas = 0n
    for (let i = 0; i <= runs; i++) {
      const t = performance.now()
      const r = await runAnalysis(code, [input], { gasCap: 4_000_000_000n, outputCap: 1n << 20n })
      const s = (performance.now() - t) / 1000
      if (r.status !== 0 || hexlify(r.output) !== expected) throw new Error(`${analysis}Fast: status ${r.status} (${r.reason ?? ''}) or output differs`)
      const a = await db.time(analysis, input)
      const b = await db1.time(analysis, input)
      if (hexlify(a.output) !== expected || hexlify(b.output) !== expected) throw new Error(`DuckDB's ${analysis} differs`)
      if (i === 0) continue // warm-up
      gas = r.gasUsed; fast.push(s); d.push(a.seconds); d1.push(b.seconds)
    }
    const [f, x, y] = [median(fast), median(d), median(d1)]
    process.stdout.write(`| ${analysis} | ${f.toFixed(3)} | ${(Number(gas) / 1e6).toFixed(1)} | ${x.toFixed(3)} | ${y.toFixed(3)} | ${(f / x).toFixed(1)}× | ${(f / y).toFixed(1)}× |\n`)
  }
  process.stdout.write(`\nload average ${loadavg()[0].toFixed(1)} at the end\n`)
  for (const x of dbs) if (typeof x !== 'string') x.close()
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main()
