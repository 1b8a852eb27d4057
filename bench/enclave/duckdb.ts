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
