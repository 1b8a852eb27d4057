// Runs sdte's TypeScript from an installed package. Node strips types natively (22.18+) but refuses
// to for files under node_modules, which is where `npm install -g` puts sdte; so when bin/sdte runs
// from there, it preloads this file (--import, through NODE_OPTIONS so that worker threads and the
// daemons `sdte demo` spawns get it too), which strips the types of sdte's own .ts files with the
// same stripper Node uses (module.stripTypeScriptTypes: whitespace in place of types, so stack
// traces keep their lines and columns). Plain JavaScript, so that an old Node gets a clear error.
import * as nodeModule from 'node:module'
import { readFileSync } from 'node:fs'

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

nodeModule.registerHooks({
  load (url, context, nextLoad) {
    if (url.startsWith(ROOT) && !url.startsWith(DEPENDENCIES) && url.endsWith('.ts')) {
      const source = nodeModule.stripTypeScriptTypes(readFileSync(new URL(url), 'utf8'), { mode: 'strip' })
      return { format: 'module', source, shortCircuit: true }
    }
    return nextLoad(url, context)
  }
})
