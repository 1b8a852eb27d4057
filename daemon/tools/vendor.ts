// Bundles the packages a daemon's main thread imports into one esbuild graph, VENDOR_DIR, which bin/strip-types.js
// has the main thread load instead of node_modules (issue 13, start to admin_info: a daemon loads about 1,100
// modules before its control API answers, 1,000 of them its packages' files; the bundle is about 90, and loading the
// modules took 0.60x as long, BENCHMARKS.md "a bundle of the dependencies"). Our own .ts files are not bundled: they
// load as they are, so an edit never runs a stale copy, and the enclave's thread (measured code) loads node_modules
// as before.
//
// bin/prepare.js (npm's `prepare`: `npm ci`, `npm install` without arguments, `npm run prepare`) calls buildVendor;
// `npm install X`, `uninstall`, `update` leave the bundle stale, so unused.
//
// The format bin/strip-types.js reads (it is plain JavaScript and cannot import this file; keep the two in step):
// VENDOR_DIR/manifest.json is { lock: { size, mtimeMs }, specifiers: { "<package specifier>": "<file in VENDOR_DIR>" } },
// `lock` being node_modules/.package-lock.json's size and time when it was built: npm rewrites that file whenever it
// changes node_modules, and a bundle whose `lock` differs is stale, so not used.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Where the bundle goes: inside node_modules, so that it lives and dies with the packages it was made of. */
export const VENDOR_DIR = join(ROOT, 'node_modules', '.sdte-vendor')
/** npm's record of what node_modules holds (rewritten by every npm command that changes it). */
export const NPM_LOCK = join(ROOT, 'node_modules', '.package-lock.json')
/** What the daemon's main thread starts from (the CLI loads daemon.ts and the roles by import(), which esbuild follows). */
const ENTRY = join(ROOT, 'daemon', 'cli.ts')
/**
 * Packages left out: native addons (classic-level loads a .node file beside its own files, koffi one from its
 * platform's package). The bundle imports them from node_modules; one our files import (koffi) is not an entry of
 * the bundle either, so that building it never loads the addon (which may be absent: `npm ci --omit=optional`, a
 * platform without koffi's prebuilt binary, where the daemon does without it) and it resolves from node_modules.
 */
const EXTERNAL = ['classic-level', 'koffi']

export interface VendorManifest {
  lock: { size: number, mtimeMs: number }
  specifiers: Record<string, string>
}

/** The package specifiers (bare, with subpaths) that our files reachable from ENTRY import. */
async function importedSpecifiers (): Promise<string[]> {
  const { metafile } = await build({
    entryPoints: [ENTRY], bundle: true, packages: 'external', metafile: true, write: false, outdir: join(ROOT, 'out'), splitting: true, format: 'esm', platform: 'node', logLevel: 'warning'
  })
  const specifiers = new Set<string>()
  for (const o of Object.values(metafile.outputs)) {
    for (const i of o.imports) if (i.external && !i.path.startsWith('node:') && !EXTERNAL.includes(i.path)) specifiers.add(i.path)
  }
  return [...specifiers].sort()
}

/** The bundle's manifest in `dir`, when it was built from node_modules as they are now; else undefined. */
export function freshVendor (dir = VENDOR_DIR): VendorManifest | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as VendorManifest
    const lock = statSync(NPM_LOCK)
    return manifest.lock.size === lock.size && manifest.lock.mtimeMs === lock.mtimeMs ? manifest : undefined
  } catch {
    return undefined
  }
}

/**
 * Builds VENDOR_DIR (into a temporary folder first, renamed over the old one once whole), unless it is fresh and
 * holds the specifiers our files import now: then it is left as it is (`npm pack` runs `prepare` too, and daemons
 * may be loading it meanwhile). A package our code newly imports is not in a bundle built before (it loads from
 * node_modules until `npm run prepare`), so the specifiers are compared here, where it costs nothing at start.
 */
export async function buildVendor (dir = VENDOR_DIR): Promise<VendorManifest> {
  const wanted = await importedSpecifiers()
  const fresh = freshVendor(dir)
  if (fresh !== undefined && Object.keys(fresh.specifiers).sort().join('\n') === wanted.join('\n')) return fresh
  const lockBefore = statSync(NPM_LOCK)
  const tmp = `${dir}.${process.pid}.tmp`
  rmSync(tmp, { recursive: true, force: true })
  const sources = join(tmp, 'entries')
  mkdirSync(sources, { recursive: true })
  const entries: Record<string, string> = {}
  const specifiers: Record<string, string> = {}
  for (const spec of wanted) {
    // Each specifier is an entry that re-exports the package's names, listed by importing it here (for a CommonJS
    // package, `export *` would leave its names to run time, where an ES module's importer cannot see them).
    const ns = await import(spec) as Record<string, unknown>
    const names = Object.keys(ns).filter(n => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n))
    const name = spec.replace(/[^A-Za-z0-9]+/g, '_')
    const lines = [`export { ${names.join(', ')} } from '${spec}'`]
    if ('default' in ns) lines.push(`export { default } from '${spec}'`)
    writeFileSync(join(sources, `${name}.js`), lines.join('\n') + '\n')
    entries[name] = join(sources, `${name}.js`)
    specifiers[spec] = `${name}.js`
  }
  await build({
    entryPoints: entries,
    bundle: true,
    splitting: true, // one copy of each module the packages share, as in node_modules
    format: 'esm',
    platform: 'node',
    target: 'node22',
    outdir: tmp,
    external: EXTERNAL,
    absWorkingDir: ROOT,
    logLevel: 'warning',
    // CommonJS packages in an ES module bundle require Node's built-ins through this.
    banner: { js: "import { createRequire as __sdteRequire } from 'node:module'; const require = __sdteRequire(import.meta.url);" }
  })
  rmSync(sources, { recursive: true, force: true })
  const lockAfter = statSync(NPM_LOCK)
  if (lockAfter.size !== lockBefore.size || lockAfter.mtimeMs !== lockBefore.mtimeMs) throw new Error(`${NPM_LOCK} changed while the bundle was built: run it again`)
  const manifest: VendorManifest = { lock: { size: lockAfter.size, mtimeMs: lockAfter.mtimeMs }, specifiers }
  writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n')
  rmSync(dir, { recursive: true, force: true })
  renameSync(tmp, dir)
  return manifest
}
