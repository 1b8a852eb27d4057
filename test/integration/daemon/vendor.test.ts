// The bundle of the daemon's packages (daemon/tools/vendor.ts) and bin/strip-types.js's use of it: a process with
// the launcher's preload resolves the packages our files import to the bundle, in its main thread only (the
// enclave's threads load node_modules); a bundle built from other node_modules than those there now is not used;
// SDTE_VENDOR=0 turns it off; and a daemon runs on it. A bundle of its own (SDTE_VENDOR_DIR), built here.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { buildVendor, freshVendor, type VendorManifest } from '../../../daemon/tools/vendor.ts'
import { ROOT, STRIP_TYPES } from '../../../daemon/tools/child-daemons.ts'

// Under node_modules, as the real one is: the bundle imports its native packages (classic-level, koffi) from there.
const dir = join(ROOT, 'node_modules', `.sdte-vendor-test-${process.pid}`)
let manifest: VendorManifest

test.before(async () => {
  manifest = await buildVendor(dir)
})

test.after(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** Where a module of ours (the -e script, run from the checkout) resolves `specifier`, in the main thread and in a worker. */
async function resolved (specifier: string, env: Record<string, string>): Promise<{ main: string, worker: string }> {
  const code = `
    import { Worker } from 'node:worker_threads'
    const main = import.meta.resolve(${JSON.stringify(specifier)})
    const w = new Worker('import("node:worker_threads").then(t => t.parentPort.postMessage(import.meta.resolve(${JSON.stringify(specifier)})))', { eval: true })
    w.once('message', worker => { console.log(JSON.stringify({ main, worker })); w.terminate() })`
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', STRIP_TYPES, '--input-type=module', '-e', code], {
      cwd: ROOT, env: { ...process.env, SDTE_VENDOR_DIR: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('close', code => { code === 0 ? resolve(JSON.parse(out) as { main: string, worker: string }) : reject(new Error(`exit ${code}: ${err}`)) })
  })
}

test('the bundle holds the packages the daemon imports, and is fresh', () => {
  for (const spec of ['ethers', 'libp2p', '@libp2p/kad-dht', '@libp2p/gossipsub', 'level', 'commander']) assert.ok(manifest.specifiers[spec] !== undefined, spec)
  // Native addons stay out: the daemon loads them from node_modules (koffi only at its first memory release).
  assert.not.ok('classic-level' in manifest.specifiers)
  assert.not.ok('koffi' in manifest.specifiers)
  assert.ok(freshVendor(dir) !== undefined)
})

test('the main thread resolves them to the bundle, a worker to node_modules; SDTE_VENDOR=0 turns it off', async () => {
  const r = await resolved('ethers', {})
  assert.is(r.main, pathToFileURL(join(dir, manifest.specifiers.ethers)).href)
  assert.match(r.worker, /\/node_modules\/ethers\//)
  const off = await resolved('ethers', { SDTE_VENDOR: '0' })
  assert.match(off.main, /\/node_modules\/ethers\//)
})

test('a bundle built from other node_modules (npm changed them since) is not used', async () => {
  const path = join(dir, 'manifest.json')
  const good = readFileSync(path, 'utf8')
  try {
    const stale = JSON.parse(good) as VendorManifest
    stale.lock.size += 1
    writeFileSync(path, JSON.stringify(stale))
    assert.is(freshVendor(dir), undefined)
    assert.match((await resolved('ethers', {})).main, /\/node_modules\/ethers\//)
  } finally {
    writeFileSync(path, good)
  }
})

test('a relay daemon runs on the bundle: it answers --version, and a start-up to its control API', async () => {
  const run = async (args: string[]): Promise<{ code: number | null, out: string }> => await new Promise(resolve => {
    const child = spawn(process.execPath, ['--import', STRIP_TYPES, join(ROOT, 'daemon', 'cli.ts'), ...args], {
      cwd: ROOT, env: { ...process.env, SDTE_VENDOR_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    // A daemon is stopped (SIGTERM) once it printed its control API; this bounds one that hangs.
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 60_000)
    let stopping = false
    child.stdout.on('data', () => {
      if (!stopping && out.includes('control API:')) { stopping = true; child.kill('SIGTERM') }
    })
    child.on('close', code => { clearTimeout(timer); resolve({ code, out }) })
  })
  const version = await run(['--version'])
  assert.is(version.code, 0, version.out)
  const datadir = join(dir, 'relay')
  const daemon = await run(['daemon', '--datadir', datadir, '--role', 'relay', '--listen', '/ip4/127.0.0.1/tcp/0'])
  assert.match(daemon.out, /control API: http/)
  assert.match(daemon.out, /sdte daemon stopped/)
  assert.is(daemon.code, 0, daemon.out)
})

test.run()
