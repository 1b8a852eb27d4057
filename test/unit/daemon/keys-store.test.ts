import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync, chmodSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { randomFillSync } from 'node:crypto'
import { join } from 'node:path'
import { loadOrCreateKeys, KEYSTORE_FILE, PEER_KEY_FILE, GENERATED_PASSWORD_FILE, KeyStoreError } from '../../../daemon/keys.ts'
import { Level } from 'level'
import { Store, StoreError, STORE_SCHEMA_VERSION, STORE_DIR, COMPACT_AFTER_DELETES, COMPACT_QUIET_MS, REPOSITORIES } from '../../../daemon/store.ts'
import { lockDatadir, DatadirLockedError, LOCK_FILE } from '../../../daemon/lock.ts'

const FAST = { passwordFile: null, scryptN: 1024 }
const tmp = (): string => mkdtempSync(join(tmpdir(), 'sdte-keys-'))

test('keys: created once with owner-only files, the same keys on the next load', async () => {
  const dir = tmp()
  try {
    const a = await loadOrCreateKeys(dir, FAST, {})
    for (const f of [PEER_KEY_FILE, KEYSTORE_FILE, GENERATED_PASSWORD_FILE]) {
      assert.is(statSync(join(dir, f)).mode & 0o777, 0o600, f)
    }
    const keystore = JSON.parse(readFileSync(join(dir, KEYSTORE_FILE), 'utf8'))
    assert.ok(keystore.crypto ?? keystore.Crypto, 'keystore is encrypted JSON')
    assert.not.ok(readFileSync(join(dir, KEYSTORE_FILE), 'utf8').includes(a.ethWallet.privateKey.slice(2)), 'private key not in the clear')
    const b = await loadOrCreateKeys(dir, FAST, {})
    assert.is(b.peerId, a.peerId)
    assert.is(b.ethAddress, a.ethAddress)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('keys: password from a file or env; a wrong password is refused', async () => {
  const dir = tmp()
  try {
    const pw = join(dir, 'pw')
    writeFileSync(pw, 'correct horse\n', { mode: 0o600 })
    const a = await loadOrCreateKeys(dir, { ...FAST, passwordFile: pw }, {})
    assert.throws(() => statSync(join(dir, GENERATED_PASSWORD_FILE)), 'no generated password when a file is given')
    const b = await loadOrCreateKeys(dir, FAST, { SDTE_PASSWORD: 'correct horse' })
    assert.is(b.ethAddress, a.ethAddress)
    try {
      await loadOrCreateKeys(dir, FAST, { SDTE_PASSWORD: 'wrong' })
      assert.unreachable('wrong password accepted')
    } catch (err) {
      assert.instance(err, KeyStoreError)
      assert.is((err as KeyStoreError).code, 'ERR_KEYSTORE_DECRYPT_FAILED')
    }
    try {
      await loadOrCreateKeys(dir, FAST, {})
      assert.unreachable('no password accepted')
    } catch (err) {
      assert.is((err as KeyStoreError).code, 'ERR_PASSWORD_UNAVAILABLE')
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('keys: a keystore that does not open says why: wrong password, corrupt, or a key derivation that failed', async () => {
  const dir = tmp()
  try {
    const a = await loadOrCreateKeys(dir, FAST, { SDTE_PASSWORD: 'correct horse' })
    const path = join(dir, KEYSTORE_FILE)
    const original = readFileSync(path, 'utf8')
    const withKdf = (n: number): void => {
      const k = JSON.parse(original)
      const c = k.crypto ?? k.Crypto
      c.kdfparams.n = n
      writeFileSync(path, JSON.stringify(k), { mode: 0o600 })
    }
    const refusal = async (): Promise<KeyStoreError> => {
      try {
        await loadOrCreateKeys(dir, FAST, { SDTE_PASSWORD: 'correct horse' })
      } catch (err) {
        assert.instance(err, KeyStoreError)
        return err as KeyStoreError
      }
      throw new Error('the keystore opened')
    }
    // N not a power of two: malformed, whatever the password.
    withKdf(1000)
    const corrupt = await refusal()
    assert.is(corrupt.code, 'ERR_KEYSTORE_INVALID')
    assert.match(corrupt.message, /corrupt keystore/)
    // N = 2^30: scrypt cannot get the 1 TiB it needs, before any password check: not a wrong password.
    withKdf(2 ** 30)
    const kdf = await refusal()
    assert.is(kdf.code, 'ERR_KEYSTORE_KDF', kdf.message)
    assert.not.match(kdf.message, /wrong password/)
    // Restored, it opens with its password.
    writeFileSync(path, original, { mode: 0o600 })
    assert.is((await loadOrCreateKeys(dir, FAST, { SDTE_PASSWORD: 'correct horse' })).ethAddress, a.ethAddress)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('keys: a key file readable by others is refused', async () => {
  const dir = tmp()
  try {
    await loadOrCreateKeys(dir, FAST, {})
    chmodSync(join(dir, PEER_KEY_FILE), 0o644)
    try {
      await loadOrCreateKeys(dir, FAST, {})
      assert.unreachable()
    } catch (err) {
      assert.is((err as KeyStoreError).code, 'ERR_KEY_FILE_PERMISSIONS')
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('store: repositories are separate, survive a reopen, and list by prefix', async () => {
  const dir = tmp()
  try {
    let store = await Store.open(dir)
    await store.trades.put('t1', { state: 'demanded' })
    await store.trades.put('t2', { state: 'escrowed' })
    await store.datasets.put('t1', { tag: 'x' })
    await store.sealed.put('k', new Uint8Array([1, 2, 3]))
    assert.equal(await store.trades.get('t1'), { state: 'demanded' })
    assert.equal(await store.datasets.get('t1'), { tag: 'x' }, 'same key, another repository')
    assert.is(await store.peers.get('t1'), undefined)
    await store.close()
    store = await Store.open(dir)
    assert.equal((await store.trades.list()).map(([k]) => k), ['t1', 't2'])
    assert.equal((await store.trades.list({ reverse: true, limit: 1 })).map(([k]) => k), ['t2'])
    assert.equal((await store.trades.list({ prefix: 't2' })).length, 1)
    assert.equal(await store.sealed.get('k'), new Uint8Array([1, 2, 3]))
    await store.trades.delete('t1')
    assert.is(await store.trades.has('t1'), false)
    assert.is(await store.schemaVersion(), STORE_SCHEMA_VERSION)
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('store: blobs are kept as raw bytes, and one an earlier release stored as base64 JSON still reads', async () => {
  const dir = tmp()
  try {
    let store = await Store.open(dir)
    const blob = new Uint8Array(100_000).map((_, i) => i * 7)
    await store.sealed.put('raw', blob)
    await store.sealed.put('empty', new Uint8Array(0))
    await store.close()
    // The earlier format, written straight into the sealed repository's key range: a JSON string of base64.
    const db = new Level<string, unknown>(join(dir, STORE_DIR), { valueEncoding: 'json' })
    await db.sublevel<string, unknown>(REPOSITORIES.sealed, { valueEncoding: 'json' }).put('old', Buffer.from([0, 34, 9, 255]).toString('base64'))
    const rawBytes = await db.sublevel<string, Uint8Array>(REPOSITORIES.sealed, { valueEncoding: 'view' }).get('raw')
    assert.is(rawBytes?.length, blob.length + 1, 'a one-byte mark, then the blob: no base64')
    await db.close()
    store = await Store.open(dir)
    assert.equal(await store.sealed.get('raw'), blob)
    assert.equal(await store.sealed.get('empty'), new Uint8Array(0))
    assert.equal(await store.sealed.get('old'), new Uint8Array([0, 34, 9, 255]))
    assert.is(await store.sealed.get('missing'), undefined)
    assert.equal(await store.sealed.keys(), ['empty', 'old', 'raw'])
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('store: a store from a newer release is refused', async () => {
  const dir = tmp()
  try {
    const store = await Store.open(dir)
    await store.meta.put('schemaVersion', STORE_SCHEMA_VERSION + 1)
    await store.close()
    try {
      await Store.open(dir)
      assert.unreachable()
    } catch (err) {
      assert.instance(err, StoreError)
      assert.is((err as StoreError).code, 'ERR_STORE_TOO_NEW')
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('store: deleting many sealed blobs compacts them away (the table files shrink), and only their range', async () => {
  const dir = tmp()
  // A file listed may be gone by its stat: level's background compaction deletes the files it replaced.
  const sizeOf = (f: string): number => { try { return statSync(join(dir, STORE_DIR, f)).size } catch (err) { if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0; throw err } }
  const tableBytes = (): number => readdirSync(join(dir, STORE_DIR)).filter(f => f.endsWith('.ldb') || f.endsWith('.log'))
    .reduce((n, f) => n + sizeOf(f), 0)
  try {
    const store = await Store.open(dir)
    await store.trades.put('kept', { state: 'open' })
    // Random bytes (leveldb's snappy cannot shrink them), 1 MiB each: the enclave's chunks of a dataset (DEFAULT_CHUNK_SIZE).
    const blob = new Uint8Array(1024 * 1024)
    for (let i = 0; i < COMPACT_AFTER_DELETES; i++) {
      randomFillSync(blob)
      await store.sealed.put(`chunk/${String(i).padStart(4, '0')}`, blob)
    }
    const written = tableBytes()
    assert.ok(written > COMPACT_AFTER_DELETES * blob.length, `${written} bytes written`)
    for (let i = 0; i < COMPACT_AFTER_DELETES; i++) await store.sealed.delete(`chunk/${String(i).padStart(4, '0')}`)
    // Deleting only adds tombstones: the bytes stay in the table files until the compaction (COMPACT_QUIET_MS later).
    const deadline = Date.now() + COMPACT_QUIET_MS + 60_000
    while (tableBytes() > written / 4 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
    assert.ok(tableBytes() <= written / 4, `${tableBytes()} of ${written} bytes still in the table files`)
    assert.equal(await store.trades.get('kept'), { state: 'open' })
    assert.equal(await store.sealed.keys(), [])
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('lock: a second holder is refused while the first lives; a stale lock is taken over', () => {
  const dir = tmp()
  try {
    const lock = lockDatadir(dir)
    // Pretend another live process holds it: our parent is alive and not us.
    writeFileSync(join(dir, LOCK_FILE), String(process.ppid))
    assert.throws(() => lockDatadir(dir), (e: Error) => e instanceof DatadirLockedError && e.message.includes(String(process.ppid)))
    // A dead pid: taken over.
    writeFileSync(join(dir, LOCK_FILE), '999999999')
    const again = lockDatadir(dir)
    again.release()
    lock.release()
    assert.not.ok(readdirSync(dir).includes(LOCK_FILE))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
