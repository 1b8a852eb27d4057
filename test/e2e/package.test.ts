// The package as an operator installs it: `npm pack` of this checkout, `npm install -g` of the
// tarball into an empty prefix (dependencies from npm's cache where it has them: CI has just run
// `npm ci`), then the prefix's bin/sdte: --version, --help, a relay daemon it starts, asks for its
// status and stops, and a whole trade (`sdte demo`, one node). The installed package lives under node_modules, where Node will not strip
// types itself: this is the test of bin/strip-types.js. The node it runs with is this test's
// (Node 22, first on PATH), as an operator's Node 22 would be; a Node older than 22.15 gets one
// clear line (tested where such a node is on the machine, e.g. /usr/bin/node 20 here).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { waitFor } from '../helpers/daemon-process.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const dir = mkdtempSync(join(tmpdir(), 'sdte-package-'))
const PREFIX = join(dir, 'prefix')
const SDTE = join(PREFIX, 'bin', 'sdte')
/** This test's Node 22 first on PATH; npm's own settings from `npm test` left out (they would say where to install). */
const ENV: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !/^npm_/i.test(e[0])))
ENV.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`

interface Run { code: number | null, stdout: string, stderr: string }

async function run (cmd: string, args: string[], env: Record<string, string> = ENV): Promise<Run> {
  return await new Promise(resolve => {
    const child = spawn(cmd, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
}

test.after(() => { rmSync(dir, { recursive: true, force: true }) })

let tarball = ''

test('npm pack: the runtime parts, not the tests or benchmarks', async () => {
  const r = await run('npm', ['pack', '--json', '--pack-destination', dir, ROOT])
  assert.is(r.code, 0, r.stderr)
  const [packed] = JSON.parse(r.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  tarball = join(dir, packed.filename)
  const files = packed.files.map(f => f.path)
  for (const f of ['bin/sdte', 'bin/strip-types.js', 'daemon/cli.ts', 'enclave/worker.ts', 'contracts/artifacts/DTMC.json', 'docs/systemd/sdte.service', 'daemon/dashboard/page.js', 'package.json', 'README.md']) {
    assert.ok(files.includes(f), `${f} is packed`)
  }
  assert.is(files.filter(f => /^(test|bench)\//.test(f)).length, 0, 'no test or bench file is packed')
})

test('npm install -g of the tarball into an empty prefix; sdte --version and --help from its bin', async () => {
  const r = await run('npm', ['install', '-g', '--prefix', PREFIX, '--prefer-offline', '--no-audit', '--no-fund', tarball])
  assert.is(r.code, 0, r.stderr)
  assert.ok(existsSync(SDTE), 'the prefix has bin/sdte')
  const version = await run(SDTE, ['--version'])
  assert.is(version.code, 0, version.stderr)
  // Not this checkout's commit: the installed package is no git checkout.
  assert.match(version.stdout, new RegExp(`^sdte ${VERSION.replaceAll('.', '\\.')} \\(commit unknown, node ${process.version}\\)\\n$`))
  assert.is(version.stderr, '', 'no warning on stderr')
  const help = await run(SDTE, ['--help'])
  assert.is(help.code, 0, help.stderr)
  for (const command of ['daemon', 'init', 'status', 'stop', 'rpc', 'watch', 'dashboard']) assert.match(help.stdout, new RegExp(`\\n  ${command}\\b`))
})

test('the installed sdte runs a daemon: init, daemon, status, stop', async () => {
  const datadir = join(dir, 'datadir')
  const init = await run(SDTE, ['init', '--datadir', datadir, '--role', 'relay', '--listen', '/ip4/127.0.0.1/tcp/0', '--rpc-port', '0'])
  assert.is(init.code, 0, init.stderr)
  const daemon = spawn(SDTE, ['daemon', '--datadir', datadir], { cwd: dir, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  daemon.stdout.on('data', (d: Buffer) => { output += d.toString() })
  daemon.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>(resolve => daemon.on('exit', resolve))
  try {
    await waitFor('the daemon to start', () => /sdte daemon \S+ started/.test(output))
    const status = await run(SDTE, ['status', '--datadir', datadir, '--json'])
    assert.is(status.code, 0, status.stderr)
    assert.equal((JSON.parse(status.stdout) as { running: boolean, roles: string[] }).roles, ['relay'])
    const stop = await run(SDTE, ['stop', '--datadir', datadir])
    assert.is(stop.code, 0, stop.stderr)
    assert.is(await exited, 0, output)
  } finally {
    daemon.kill('SIGKILL')
  }
})

test('the installed sdte runs a whole trade (sdte demo): enclave worker threads and child daemons strip types too', async () => {
  // The daemons and the enclave's worker threads it starts load sdte's .ts files under node_modules
  // as well: they get bin/strip-types.js through NODE_OPTIONS.
  const r = await run(SDTE, ['demo', '--nodes', '1', '--records', '200'])
  assert.is(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /buyer1: delivered/)
  assert.match(r.stdout, /equals the final hash on DTMC: yes; equals the same analysis in plain TypeScript: yes/)
})

/** A node older than 22.15 on this machine, if there is one. */
function oldNode (): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const v = execFileSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim().split('.').map(Number)
      if (v[0] < 22 || (v[0] === 22 && v[1] < 15)) return candidate
    } catch {}
  }
  return undefined
}

const old = oldNode()
if (old === undefined) {
  console.log('SKIPPED (visibly): no Node older than 22.15 on this machine to check the installed sdte refuses it clearly')
  test.skip('on a Node older than 22.15, one clear line and exit 1', () => {})
} else {
  test(`on a Node older than 22.15 (${old}), one clear line and exit 1`, async () => {
    const r = await run(SDTE, ['--version'], { ...ENV, SDTE_NODE: old })
    assert.is(r.code, 1)
    assert.match(r.stderr, /^sdte: needs Node 22\.15 or later \(this is v\d+\.\d+\.\d+ at .+\); put a newer node first on PATH or set SDTE_NODE to it\n$/)
    assert.is(r.stdout, '')
  })
}

test.run()
