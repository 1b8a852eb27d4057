// The test command: runs every `test/**/*.test.ts` file in its own Node process (uvu suites
// call `.run()` themselves), reads each file's uvu summary, and ends with one line of its own,
// `N passed, N failed` (a line before it counts skipped tests), so that a run which executed
// nothing, or skipped a test, is visible to CI.
//
// Files run TEST_JOBS at a time (most of a file's time is waiting: on blocks, windows, daemons
// starting), the slowest kinds first so that the short unit files fill the gaps at the end. A file
// whose first lines hold the marker `// test-run: alone` runs with no other file beside it: one
// whose subject is the machine's own load (memory or CPU under a flood). Each file's output is
// printed whole when it ends, so that the files' lines never interleave.
//
// Usage: node test/run.ts [--jobs N] [substring ...]   (only files whose path in the repository contains one)
//        TEST_JOBS=N node test/run.ts                   (the same; --jobs wins)
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'

const root = new URL('..', import.meta.url).pathname
const testDir = join(root, 'test')
const FILE_TIMEOUT_MS = 300_000
/** Files at once by default: CI's machine has 2 cores, and a file mostly waits. */
const DEFAULT_TEST_JOBS = 2
/** The marker, in a file's first lines, of a file that must run alone. */
const ALONE_MARKER = '// test-run: alone'
/** Preloaded into every file: prints what a failing before/after hook threw (uvu drops it). */
const HOOK_ERRORS = join(testDir, 'helpers', 'hook-errors.ts')
/** Kinds of test, slowest first: files start in this order (then by path). */
const KIND_ORDER = ['test/e2e/', 'test/attacks/', 'test/integration/', 'test/unit/']

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

/** Process groups of the files running now. */
const groups = new Set<number>()

function killGroup (pid: number): void {
  try { process.kill(-pid, 'SIGKILL') } catch { /* the group is gone already */ }
}

// Interrupted: take every running file's processes down too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const pid of groups) killGroup(pid)
    process.exit(130)
  })
}

function runsAlone (file: string): boolean {
  return readFileSync(file, 'utf8').split('\n', 20).some(line => line.startsWith(ALONE_MARKER))
}

function kindRank (file: string): number {
  const name = relative(root, file)
  const i = KIND_ORDER.findIndex(k => name.startsWith(k))
  return i === -1 ? KIND_ORDER.length : i
}

function runFile (file: string): Promise<FileResult & { out: string, err: string }> {
  const started = Date.now()
  return new Promise(resolve => {
    // Its own process group: when the file ends (or times out), whatever it started and left
    // behind (a daemon, anvil) is killed with it, and cannot slow the files after it.
    const child = spawn(process.execPath, ['--import', HOOK_ERRORS, file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true
    })
    if (child.pid !== undefined) groups.add(child.pid)
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const timer = setTimeout(() => { out += '\n(timed out)\n'; if (child.pid !== undefined) killGroup(child.pid) }, FILE_TIMEOUT_MS)
    child.on('close', code => {
      clearTimeout(timer)
      if (child.pid !== undefined) { killGroup(child.pid); groups.delete(child.pid) }
      const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0)
      const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0)
      const skipped = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0)
      let failed = Math.max(0, total - passed - skipped)
      // A file that crashed before or after its summary counts as one failure at least.
      if (code !== 0 && failed === 0) failed = 1
      resolve({ file, passed, failed, skipped, code, ms: Date.now() - started, out, err })
    })
  })
}

const { values: flags, positionals: filters } = parseArgs({
  options: { jobs: { type: 'string' } }, allowPositionals: true
})
const jobsText = flags.jobs ?? process.env.TEST_JOBS ?? String(DEFAULT_TEST_JOBS)
const jobs = Number(jobsText)
if (!Number.isInteger(jobs) || jobs < 1) {
  process.stderr.write(`--jobs (or TEST_JOBS) must be a whole number of at least 1, not ${jobsText}\n`)
  process.exit(2)
}
const files = findTests(testDir)
  // Matched against the path in the repository: a checkout's own path (e.g. /work/wt/gossip) must not select every file.
  .filter(f => filters.length === 0 || filters.some(s => relative(root, f).includes(s)))
  .sort((a, b) => kindRank(a) - kindRank(b) || a.localeCompare(b))
let passed = 0
let failed = 0
let skipped = 0
const results = new Map<string, string>()
const started = Date.now()

// A small scheduler: up to `jobs` files at once, and an 'alone' file only when nothing else runs
// (it waits for the running ones to end, and nothing starts beside it).
const queue = files.map(file => ({ file, alone: runsAlone(file) }))
let running = 0
let aloneRunning = false
await new Promise<void>(resolve => {
  const next = (): void => {
    if (queue.length === 0 && running === 0) { resolve(); return }
    while (queue.length > 0 && !aloneRunning && running < jobs) {
      const i = queue.findIndex(q => !q.alone || running === 0)
      if (i === -1) break
      const { file, alone } = queue.splice(i, 1)[0]
      running++
      if (alone) aloneRunning = true
      void runFile(file).then(r => {
        running--
        if (alone) aloneRunning = false
        const name = relative(root, file)
        process.stdout.write(`\n# ${name}${alone ? ' (alone)' : ''}\n${r.out}`)
        if (r.err !== '') process.stderr.write(r.err)
        passed += r.passed
        failed += r.failed
        skipped += r.skipped
        // A skipped test says why in its own output (e.g. no network namespaces here); the summary shows it too.
        const skips = r.skipped > 0 ? `, ${r.skipped} SKIPPED` : ''
        results.set(file, `${r.failed === 0 ? 'ok  ' : 'FAIL'} ${name}: ${r.passed} passed, ${r.failed} failed${skips} (${(r.ms / 1000).toFixed(1)} s)`)
        next()
      })
    }
  }
  next()
})
const lines = files.map(f => results.get(f) ?? '')
lines.push(`(${files.length} files, ${jobs} at a time, ${((Date.now() - started) / 1000).toFixed(1)} s)`)
process.stdout.write(`\n${lines.join('\n')}\n`)
if (skipped > 0) process.stdout.write(`${skipped} skipped (see each file's output for why)\n`)
process.stdout.write(`${passed} passed, ${failed} failed\n`)
process.exitCode = failed === 0 && files.length > 0 ? 0 : 1
