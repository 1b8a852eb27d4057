// Attack: another local user plants code in the stripped-TypeScript cache (bin/strip-types.js), which every
// sdte process (and the enclave's threads) would then run instead of the file on disk. The cache is used only
// when it is a directory of ours that nobody else can write to; an entry is found by the hash of the file's
// bytes, so an edited file is stripped again rather than served stale.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, STRIP_TYPES } from '../../daemon/tools/child-daemons.ts'

const TARGET = join(ROOT, 'config', 'rpc-defaults.ts')

/** The cache entry bin/strip-types.js looks for, for TARGET's present bytes. */
function entryName (): string {
  const pathKey = createHash('sha256').update(TARGET).digest('hex').slice(0, 16)
  return `${pathKey}-${createHash('sha256').update(process.version).update('\0').update(readFileSync(TARGET, 'utf8')).digest('hex')}.js`
}

/** RPC_HOST as a process that preloads bin/strip-types.js with this cache directory sees it. */
function rpcHostWith (cacheDir: string): string {
  return execFileSync(process.execPath, ['--import', STRIP_TYPES, '--input-type=module', '-e', `const m = await import(${JSON.stringify(TARGET)}); process.stdout.write(m.RPC_HOST)`], {
    env: { ...process.env, SDTE_TS_CACHE: cacheDir }, encoding: 'utf8'
  })
}

test('in our own cache, an entry others can write, or one with a second link, is not run (a review: only the directory was checked, once)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-ts-cache-'))
  try {
    chmodSync(dir, 0o700)
    const entry = join(dir, entryName())
    writeFileSync(entry, "export const RPC_HOST = 'planted'\n")
    chmodSync(entry, 0o666)
    assert.is(rpcHostWith(dir), '127.0.0.1', 'world-writable entry')
    rmSync(entry)
    const elsewhere = join(dir, 'elsewhere.js')
    writeFileSync(elsewhere, "export const RPC_HOST = 'planted'\n", { mode: 0o600 })
    linkSync(elsewhere, entry)
    assert.is(rpcHostWith(dir), '127.0.0.1', 'an entry with two links (one of them anywhere)')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a planted entry in a cache others can write to is not run; in our own it is (the cache is used)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-ts-cache-'))
  try {
    writeFileSync(join(dir, entryName()), "export const RPC_HOST = 'planted'\n")
    chmodSync(dir, 0o777)
    assert.is(rpcHostWith(dir), '127.0.0.1')
    chmodSync(dir, 0o700)
    assert.is(rpcHostWith(dir), 'planted')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('an entry for other bytes of the file is not served: the file is stripped again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-ts-cache-'))
  try {
    const stale = entryName().replace(/-[0-9a-f]+\.js$/, `-${'0'.repeat(64)}.js`)
    writeFileSync(join(dir, stale), "export const RPC_HOST = 'stale'\n")
    chmodSync(dir, 0o700)
    assert.is(rpcHostWith(dir), '127.0.0.1')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
