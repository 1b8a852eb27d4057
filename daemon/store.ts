// The daemon's store: one level database in DIR/store, one sublevel (short prefix) per repository.
// JSON repositories hold records (trades, datasets, peers); `sealed` holds opaque bytes that only
// the enclave can open, `results` the buyer's encrypted results. A schema version in `meta` lets a later release migrate the data: opening
// a store written by a newer release is refused rather than misread.
import { SdteError } from '../config/index.ts'
import { Level } from 'level'
import type { AbstractSublevel } from 'abstract-level'
import { join } from 'node:path'
import { logger } from './log.ts'

const log = logger('sdte:store')

export const STORE_SCHEMA_VERSION = 1
export const STORE_DIR = 'store'

/**
 * Deletions from a blob repository (the enclave's sealed chunks, the buyer's results) after which the
 * store compacts that repository's key range, once no deletion has come for COMPACT_QUIET_MS. level
 * keeps a deleted entry's bytes in its table files until a compaction rewrites them: on disk, and
 * resident in the daemon, since leveldb reads table files through mmap (a node that ran a 64 MiB
 * trade kept about 80 MiB of such pages after dropping the task). 16 default-size (1 MiB, DEFAULT_CHUNK_SIZE) chunks:
 * 16 MiB, so dropping a 64 MiB task compacts.
 */
export const COMPACT_AFTER_DELETES = 16
/** How long a burst of deletions (a task's chunks, dropped one by one) must pause before the compaction. */
export const COMPACT_QUIET_MS = 1000

/** Repository prefixes. Short and stable: renaming one is a migration. */
export const REPOSITORIES = { meta: 'm', trades: 't', datasets: 'd', peers: 'p', sealed: 's', results: 'r' } as const

export class StoreError extends SdteError {
  override name = 'StoreError'
  constructor (message: string, code = 'ERR_STORE_ERROR') {
    super(message)
    this.code = code
  }
}

type Sub<V> = ReturnType<Level<string, unknown>['sublevel']> & { get: (k: string) => Promise<V | undefined> }

/** A keyed collection of JSON records. */
export class Repository<V> {
  readonly name: string
  private readonly db: Sub<V>
  constructor (name: string, db: Sub<V>) {
    this.name = name
    this.db = db
  }

  async get (key: string): Promise<V | undefined> {
    return await this.db.get(key) as V | undefined
  }

  async put (key: string, value: V): Promise<void> {
    await this.db.put(key, value as unknown)
  }

  async delete (key: string): Promise<void> {
    await this.db.del(key)
  }

  async has (key: string): Promise<boolean> {
    return (await this.db.get(key)) !== undefined
  }

  /** All records in key order (or reverse), optionally only keys starting with `prefix`. */
  async list (opts: { prefix?: string, reverse?: boolean, limit?: number } = {}): Promise<Array<[string, V]>> {
    const range = opts.prefix === undefined ? {} : { gte: opts.prefix, lt: opts.prefix + '\xff' }
    const out: Array<[string, V]> = []
    for await (const [k, v] of this.db.iterator({ ...range, reverse: opts.reverse ?? false, limit: opts.limit ?? -1 })) {
      out.push([k as string, v as V])
    }
    return out
  }
}

/** A sublevel read and written as raw bytes ('view' on each operation: the store's default encoding is JSON). */
type BlobSub = AbstractSublevel<Level<string, unknown>, string | Uint8Array | Buffer, string, unknown>

/**
 * First byte of a blob stored as raw bytes. A blob was stored as a JSON base64 string before (issue 13: the enclave's
 * 64 MiB of chunks went through base64, JSON and back on every delivery and run); such a value starts with '"', so
 * both read back and nothing needs migrating.
 */
const RAW_BLOB_MARK = 0

/** Opaque bytes (sealed blobs from the enclave, the buyer's results), stored as they are behind RAW_BLOB_MARK. */
export class BlobRepository {
  private readonly db: BlobSub
  private readonly onDelete: () => void
  constructor (db: BlobSub, onDelete: () => void = () => {}) {
    this.db = db
    this.onDelete = onDelete
  }

  async get (key: string): Promise<Uint8Array | undefined> {
    const v = await this.db.get(key, { valueEncoding: 'view' }) as Uint8Array | undefined
    if (v === undefined) return undefined
    // A plain Uint8Array view (level hands out a Buffer), without copying.
    if (v[0] === RAW_BLOB_MARK) return new Uint8Array(v.buffer, v.byteOffset + 1, v.byteLength - 1)
    // Written by a release before raw blobs: a JSON string of base64.
    return new Uint8Array(Buffer.from(JSON.parse(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8')) as string, 'base64'))
  }

  async put (key: string, blob: Uint8Array): Promise<void> {
    const value = new Uint8Array(blob.byteLength + 1)
    value[0] = RAW_BLOB_MARK
    value.set(blob, 1)
    await this.db.put(key, value, { valueEncoding: 'view' })
  }

  async delete (key: string): Promise<void> {
    await this.db.del(key)
    this.onDelete()
  }

  async keys (): Promise<string[]> {
    const out: string[] = []
    for await (const k of this.db.keys()) out.push(k as string)
    return out
  }
}

/** Migrations from version N to N+1, applied in order at open. Empty while the schema is at 1. */
const MIGRATIONS: Record<number, (store: Store) => Promise<void>> = {}

export class Store {
  readonly path: string
  private readonly db: Level<string, unknown>
  readonly meta: Repository<unknown>
  readonly trades: Repository<unknown>
  readonly datasets: Repository<unknown>
  readonly peers: Repository<unknown>
  readonly sealed: BlobRepository
  /** The buyer's results, as received (encrypted to its result key) and sealed again under its local key. */
  readonly results: BlobRepository
  /** Compactions under way or scheduled (COMPACT_AFTER_DELETES), awaited by close(). */
  private readonly compactions = new Set<Promise<void>>()
  /** Drops the scheduled compactions (close() does not wait COMPACT_QUIET_MS for them); one under way ends on its own. */
  private readonly skipCompactions: Array<() => void> = []
  private closing = false

  private constructor (path: string) {
    this.path = path
    this.db = new Level<string, unknown>(path, { valueEncoding: 'json' })
    const sub = <V>(name: keyof typeof REPOSITORIES): Repository<V> =>
      new Repository<V>(name, this.db.sublevel<string, unknown>(REPOSITORIES[name], { valueEncoding: 'json' }) as unknown as Sub<V>)
    this.meta = sub('meta')
    this.trades = sub('trades')
    this.datasets = sub('datasets')
    this.peers = sub('peers')
    const blobs = (name: 'sealed' | 'results'): BlobSub => this.db.sublevel<string, unknown>(REPOSITORIES[name], { valueEncoding: 'json' })
    this.sealed = new BlobRepository(blobs('sealed'), this.compactAfterDeletes('sealed'))
    this.results = new BlobRepository(blobs('results'), this.compactAfterDeletes('results'))
  }

  /** A deletion counter for one repository that compacts its key range (see COMPACT_AFTER_DELETES). */
  private compactAfterDeletes (name: keyof typeof REPOSITORIES): () => void {
    // The sublevel's keys in the root database: '!' + prefix + '!' + key (abstract-level's sublevel).
    const start = `!${REPOSITORIES[name]}!`
    const end = `!${REPOSITORIES[name]}"`
    // level is classic-level (leveldb) on Node, which has compactRange; level's own type leaves it out.
    const db = this.db as unknown as { compactRange: (start: string, end: string) => Promise<void> }
    let deletes = 0
    let timer: NodeJS.Timeout | undefined
    let finish: (() => void) | undefined
    const compact = (): void => {
      const done = finish!
      finish = undefined
      deletes = 0
      if (this.closing) { done(); return }
      db.compactRange(start, end)
        .then(() => { log.debug('compacted', { repository: name }) })
        .catch((err: unknown) => { log.warn('compaction failed', { repository: name, err: err as Error }) })
        .finally(done)
    }
    this.skipCompactions.push(() => {
      clearTimeout(timer)
      if (finish !== undefined) { const done = finish; finish = undefined; done() }
    })
    return () => {
      if (++deletes < COMPACT_AFTER_DELETES || this.closing) return
      if (finish === undefined) {
        const scheduled = new Promise<void>(resolve => { finish = resolve })
        this.compactions.add(scheduled)
        void scheduled.then(() => this.compactions.delete(scheduled))
      }
      clearTimeout(timer)
      timer = setTimeout(compact, COMPACT_QUIET_MS)
    }
  }

  /** Opens (creating if needed) the store in `datadir/store` and brings its schema to the current version. */
  static async open (datadir: string): Promise<Store> {
    const store = new Store(join(datadir, STORE_DIR))
    try {
      await store.db.open()
    } catch (err) {
      const cause = (err as { cause?: Error }).cause
      throw new StoreError(`cannot open store at ${store.path}: ${cause?.message ?? (err as Error).message}`, 'ERR_STORE_OPEN_FAILED')
    }
    const version = await store.meta.get('schemaVersion')
    if (version === undefined) {
      await store.meta.put('schemaVersion', STORE_SCHEMA_VERSION)
    } else if (typeof version !== 'number' || version > STORE_SCHEMA_VERSION) {
      await store.close()
      throw new StoreError(`store at ${store.path} has schema version ${String(version)}, newer than this release (${STORE_SCHEMA_VERSION})`, 'ERR_STORE_TOO_NEW')
    } else {
      for (let v = version; v < STORE_SCHEMA_VERSION; v++) {
        const migrate = MIGRATIONS[v]
        if (migrate === undefined) throw new StoreError(`no migration from schema ${v}`, 'ERR_STORE_NO_MIGRATION')
        log.info('migrating store', { from: v, to: v + 1 })
        await migrate(store)
        await store.meta.put('schemaVersion', v + 1)
      }
    }
    return store
  }

  async schemaVersion (): Promise<number> {
    return await this.meta.get('schemaVersion') as number
  }

  async close (): Promise<void> {
    this.closing = true
    for (const skip of this.skipCompactions) skip()
    await Promise.all(this.compactions)
    await this.db.close()
  }
}
