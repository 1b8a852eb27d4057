// Strips the types of sdte's .ts files, and keeps what it stripped. bin/sdte preloads it (--import, through
// NODE_OPTIONS so that worker threads and the daemons `sdte demo` spawns get it too), for two reasons:
// - Node strips types natively (22.18+) but refuses to for files under node_modules, which is where
//   `npm install -g` puts sdte: this strips them with the same stripper Node uses (module.stripTypeScriptTypes:
//   whitespace in place of types, so stack traces keep their lines and columns);
// - the stripper is a WebAssembly build of swc that every thread loading a .ts file instantiates: about 30 MiB
//   resident per thread (the daemon's main thread, the enclave worker, a run thread) and 0.1-0.2 s of CPU at a
//   daemon's start (issue 13, BENCHMARKS.md "Daemon footprint"). So the stripped text is kept in an owner-only
//   cache directory (CACHE_DIR) under the SHA-256 of the Node version and the file's bytes: a file is stripped
//   once, and a thread whose files are all in the cache never loads the stripper. What runs is always the strip
//   of the bytes on disk now (the enclave's measurement hashes those bytes too). Without a usable cache
//   directory, it strips every time, as Node would.
// Plain JavaScript, so that an old Node gets a clear error.
import * as nodeModule from 'node:module'
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isMainThread } from 'node:worker_threads'

/** The oldest Node that has module.registerHooks (22.15) and module.stripTypeScriptTypes (22.13). */
const MIN_NODE = [22, 15]

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
  process.stderr.write(`sdte: needs Node ${MIN_NODE.join('.')} or later (this is ${process.version} at ${process.execPath}); put a newer node first on PATH or set SDTE_NODE to it\n`)
  process.exit(1)
}

/** sdte's own files: the package this file is in (its dependencies are JavaScript). */
const ROOT = new URL('../', import.meta.url).href
const DEPENDENCIES = new URL('../node_modules/', import.meta.url).href

// The stripper warns that it is experimental, once per process: every command (and every worker)
// would print it. Only that warning is dropped.
const emitWarning = process.emitWarning
process.emitWarning = function (warning, ...rest) {
  if (String(warning instanceof Error ? warning.message : warning).includes('stripTypeScriptTypes')) return
  return emitWarning.call(process, warning, ...rest)
}

/**
 * Where stripped files are kept: $SDTE_TS_CACHE, else $XDG_CACHE_HOME/sdte/ts, else ~/.cache/sdte/ts. Used only
 * when it is a directory of ours that nobody else can write to (whoever could, could change the code we run).
 */
const CACHE_DIR = process.env.SDTE_TS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sdte', 'ts')

function usableCacheDir () {
  try {
    mkdirSync(CACHE_DIR, { recursive: true, mode: 0o700 })
    const st = statSync(CACHE_DIR)
    return st.isDirectory() && (process.getuid === undefined || st.uid === process.getuid()) && (st.mode & 0o022) === 0
  } catch {
    return false
  }
}
const cache = usableCacheDir()

/**
 * An entry's text, only when it is a regular file of ours that nobody else can write, with one link: the
 * directory was checked once at start, and whoever could swap it (or a file in it) afterwards must not have
 * their file run. Checked on the open file, so that the file read is the file checked.
 */
function readOwnEntry (path) {
  let fd
  try {
    fd = openSync(path, 'r')
    const st = fstatSync(fd)
    const own = process.getuid === undefined || st.uid === process.getuid()
    if (!st.isFile() || !own || (st.mode & 0o022) !== 0 || st.nlink !== 1) return undefined
    return readFileSync(fd, 'utf8')
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** A file's entry: <hash of its path>-<hash of the Node version and its bytes>.js; an edited file replaces its entry. */
function strip (url) {
  const text = readFileSync(new URL(url), 'utf8')
  if (!cache) return nodeModule.stripTypeScriptTypes(text, { mode: 'strip' })
  const pathKey = createHash('sha256').update(fileURLToPath(url)).digest('hex').slice(0, 16)
  const entry = `${pathKey}-${createHash('sha256').update(process.version).update('\0').update(text).digest('hex')}.js`
  const cached = readOwnEntry(join(CACHE_DIR, entry))
  if (cached !== undefined) return cached
  const source = nodeModule.stripTypeScriptTypes(text, { mode: 'strip' })
  try {
    for (const old of readdirSync(CACHE_DIR)) if (old.startsWith(`${pathKey}-`)) unlinkSync(join(CACHE_DIR, old))
    // Written whole under a temporary name, then renamed: a thread reading the entry meanwhile sees all of it or none.
    const tmp = join(CACHE_DIR, `${entry}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`)
    writeFileSync(tmp, source, { mode: 0o600 })
    renameSync(tmp, join(CACHE_DIR, entry))
  } catch {}
  return source
}

/**
 * The bundle of the packages the daemon's main thread imports (daemon/tools/vendor.ts, built by `npm ci`): the
 * package specifiers our files import, mapped to its files, when it was built from node_modules as they are now
 * (npm rewrites node_modules/.package-lock.json whenever it changes them); else none, and packages load from
 * node_modules. Loading about 90 files instead of about 1,000 is most of what it saves (issue 13, start to admin_info).
 * The main thread only: the enclave's threads load node_modules as before. SDTE_VENDOR=0 turns it off;
 * SDTE_VENDOR_DIR names another bundle (tests).
 */
function vendorBundle () {
  if (!isMainThread || process.env.SDTE_VENDOR === '0') return undefined
  const dir = process.env.SDTE_VENDOR_DIR !== undefined ? pathToFileURL(`${process.env.SDTE_VENDOR_DIR}/`) : new URL('.sdte-vendor/', DEPENDENCIES)
  try {
    const manifest = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8'))
    const lock = statSync(new URL('.package-lock.json', DEPENDENCIES))
    if (manifest.lock?.size !== lock.size || manifest.lock?.mtimeMs !== lock.mtimeMs) return undefined
    return new Map(Object.entries(manifest.specifiers).map(([specifier, file]) => [specifier, new URL(file, dir).href]))
  } catch {
    return undefined
  }
}
const vendor = vendorBundle()

nodeModule.registerHooks({
  resolve (specifier, context, nextResolve) {
    const url = vendor?.get(specifier)
    if (url !== undefined && context.parentURL?.startsWith(ROOT) === true && !context.parentURL.startsWith(DEPENDENCIES)) {
      return { url, format: 'module', shortCircuit: true }
    }
    return nextResolve(specifier, context)
  },
  load (url, context, nextLoad) {
    if (url.startsWith(ROOT) && !url.startsWith(DEPENDENCIES) && url.endsWith('.ts')) {
      return { format: 'module', source: strip(url), shortCircuit: true }
    }
    return nextLoad(url, context)
  }
})
