// The test command: runs every `test/**/*.test.ts` file in its own Node process (uvu suites
// call `.run()` themselves), reads each file's uvu summary, and ends with one line of its own,
// `N passed, N failed` (and `, N skipped` when uvu skipped any), so that a run which executed
// nothing, or skipped a test, is visible to CI.
//
// Usage: node test/run.ts [substring ...]   (only files whose path contains one of the substrings)
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const testDir = join(root, 'test')
const FILE_TIMEOUT_MS = 300_000

function findTests (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...findTests(path))
    else if (name.endsWith('.test.ts')) out.push(path)
  }
  return out
}

interface FileResult { file: string, passed: number, failed: number, skipped: number, code: number | null, ms: number }

function runFile (file: string): Promise<FileResult> {
  const started = Date.now()
  return new Promise(resolve => {
    const child = spawn(process.execPath, [file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); process.stdout.write(d) })
    child.stderr.on('data', (d: Buffer) => { process.stderr.write(d) })
    const timer = setTimeout(() => { out += '\n(timed out)\n'; child.kill('SIGKILL') }, FILE_TIMEOUT_MS)
    child.on('close', code => {
      clearTimeout(timer)
      const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0)
      const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0)
      const skipped = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0)
      let failed = Math.max(0, total - passed - skipped)
      // A file that crashed before or after its summary counts as one failure at least.
      if (code !== 0 && failed === 0) failed = 1
      resolve({ file, passed, failed, skipped, code, ms: Date.now() - started })
    })
  })
}

const filters = process.argv.slice(2)
const files = findTests(testDir).filter(f => filters.length === 0 || filters.some(s => f.includes(s)))
let passed = 0
let failed = 0
let skipped = 0
const lines: string[] = []
for (const file of files) {
  const name = relative(root, file)
  process.stdout.write(`\n# ${name}\n`)
  const r = await runFile(file)
  passed += r.passed
  failed += r.failed
  skipped += r.skipped
  // A skipped test says why in its own output (e.g. no network namespaces here); the summary shows it too.
  const skips = r.skipped > 0 ? `, ${r.skipped} SKIPPED` : ''
  lines.push(`${r.failed === 0 ? 'ok  ' : 'FAIL'} ${name}: ${r.passed} passed, ${r.failed} failed${skips} (${(r.ms / 1000).toFixed(1)} s)`)
}
process.stdout.write(`\n${lines.join('\n')}\n`)
if (skipped > 0) process.stdout.write(`${skipped} skipped (see each file's output for why)\n`)
process.stdout.write(`${passed} passed, ${failed} failed\n`)
process.exitCode = failed === 0 && files.length > 0 ? 0 : 1
