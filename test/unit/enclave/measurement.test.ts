// The measurement covers exactly the code the worker is built from: ENCLAVE_CODE_FILES must equal the
// files reachable from enclave/worker.ts through relative imports (type-only imports included: they
// fix the shape of what crosses the worker boundary). A file the worker starts importing without
// being measured, or a measured file it no longer imports, fails here.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ENCLAVE_CODE_FILES, computeMeasurement } from '../../../enclave/measurement.ts'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

/** Relative specifiers of every static import and re-export in a TypeScript source, and of worker entries (`new URL('./x.ts', import.meta.url)`). */
function relativeImports (source: string): string[] {
  const out: string[] = []
  const re = /^\s*(?:import|export)\b[^'";]*?(?:from\s*)?['"](\.{1,2}\/[^'"]+)['"]/gm
  for (const m of source.matchAll(re)) out.push(m[1])
  // A worker thread's entry (enclave/runs.ts starts enclave/runner.ts) is code the worker runs too.
  for (const m of source.matchAll(/new URL\(\s*['"](\.{1,2}\/[^'"]+\.ts)['"]\s*,\s*import\.meta\.url\s*\)/g)) out.push(m[1])
  // A package loaded on use (enclave/evm.ts loads the EVM engine on a run's first EVM) is not our code; a dynamic
  // import of one of our files, or of a specifier computed at run time, cannot be followed here.
  for (const m of source.matchAll(/\bimport\s*\(\s*(['"]?)([^'")]*)/g)) {
    if (m[1] === '' || m[2].startsWith('.') || m[2].startsWith('/')) throw new Error('dynamic import: this check cannot follow it')
  }
  return out
}

function importGraph (entry: string): string[] {
  const seen = new Set<string>()
  const visit = (path: string): void => {
    if (seen.has(path)) return
    seen.add(path)
    const source = readFileSync(join(ROOT, path), 'utf8')
    for (const spec of relativeImports(source)) visit(relative(ROOT, join(ROOT, dirname(path), spec)))
  }
  visit(entry)
  return [...seen].sort()
}

test('the import parser sees multi-line, type-only and re-export imports and worker entries, and skips packages', () => {
  const src = "import {\n  a,\n  b\n} from './a.ts'\nimport type { C } from '../c.ts'\nexport { d } from './d.ts'\nimport { x } from 'ethers'\nimport 'node:fs'\nconst w = new Worker(new URL('./w.ts', import.meta.url))\n"
  assert.equal(relativeImports(src), ['./a.ts', '../c.ts', './d.ts', './w.ts'])
})

test('the import parser lets a package be imported on use, and refuses to guess at a dynamic import of our code', () => {
  assert.equal(relativeImports("const e = await import('@ethereumjs/evm')\ntype T = typeof import('@ethereumjs/util')\n"), [])
  assert.throws(() => relativeImports("await import('./evm.ts')\n"), /dynamic import/)
  assert.throws(() => relativeImports('await import(name)\n'), /dynamic import/)
})

test('ENCLAVE_CODE_FILES is the worker\'s import graph', () => {
  assert.equal([...ENCLAVE_CODE_FILES].sort(), importGraph('enclave/worker.ts'))
})

test('the measurement is a 32-byte hash and a variant changes it', () => {
  assert.match(computeMeasurement(), /^0x[0-9a-f]{64}$/)
  assert.is.not(computeMeasurement('other-build'), computeMeasurement())
})

test.run()
