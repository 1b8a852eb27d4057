// The architecture as a test: which part may import which, read from the real import, export-from
// and import() statements of every .ts file in the repository, and from `new URL('./x.ts',
// import.meta.url)` (a module loaded by path, as the enclave's worker thread is; counted as a dynamic
// import). Parsed with the TypeScript compiler, no hand-kept list of files. It fails on
//   - an edge between parts that the table below does not allow,
//   - a cross-part import that bypasses the imported part's index.ts (its one import surface),
//   - an import inside a part that enters a folder with an index.ts (a protocol of p2p/, p2p/messages/,
//     p2p/host/, a role of daemon/roles/) from outside it other than through that index.ts; files inside
//     the folder, and below it, import its files directly, and a folder without an index.ts (daemon/rpc/,
//     daemon/methods/, daemon/roles/ itself) is a plain grouping whose files are imported directly,
//   - a tools file reachable from the running daemon (the transitive closure of its start module),
//   - a part a role loads when it needs it (LOADED_LAZILY: the roles, the EVM, the enclave's measured
//     code, metrics) in the daemon's static graph: what every daemon loads before its control API answers.
// Tests and benchmarks are white-box: they may import any file of a part they may import.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import ts from 'typescript'
import { ENCLAVE_CODE_FILES } from '../../enclave/measurement.ts'

const ROOT = new URL('../..', import.meta.url).pathname

/** The parts, most specific first: a file belongs to the first whose folder holds it. */
const PARTS = ['daemon/tools', 'contracts/tools', 'daemon', 'p2p', 'enclave', 'contracts', 'config', 'test', 'bench', 'bin'] as const
type Part = typeof PARTS[number]

/** Which parts each part may import (besides itself). */
const ALLOWED: Record<Part, readonly Part[]> = {
  config: [],
  contracts: ['config'],
  p2p: ['config', 'contracts'],
  enclave: ['config', 'contracts'],
  daemon: ['config', 'contracts', 'p2p', 'enclave'],
  'contracts/tools': ['contracts', 'config', 'enclave'],
  'daemon/tools': ['daemon', 'config', 'contracts', 'contracts/tools', 'enclave', 'p2p'],
  test: ['daemon', 'p2p', 'enclave', 'contracts', 'config', 'contracts/tools', 'daemon/tools'],
  bench: ['daemon', 'p2p', 'enclave', 'contracts', 'config', 'contracts/tools', 'daemon/tools'],
  bin: ['daemon']
}

/**
 * The command line is the one product file that reaches tools: `sdte demo`, `sdte devnet` and
 * `sdte deploy` load them with import() when (and only when) those commands run.
 */
const CLI_FILE = 'daemon/cli.ts'
const CLI_MAY_LOAD: readonly Part[] = ['daemon/tools', 'contracts/tools']

/**
 * Defaults have one home, in their part's constants.ts; the options tree (config/options.ts) reads
 * them there. These files import nothing, so reading them does not load their part (p2p/index.ts
 * would load libp2p for every CLI command).
 */
const DEFAULTS_READ_BY_CONFIG: readonly string[] = ['p2p/constants.ts']

/** The module the running daemon starts from (`sdte daemon` loads it; daemon/cli.ts only parses flags). */
const DAEMON_START = 'daemon/daemon.ts'

/**
 * What the daemon's start module reaches only through import() (or a worker's `new URL`), never
 * through its static imports: each role's code is loaded by a daemon that runs the role; the EVM and
 * the enclave's measured code only in the enclave's threads (or for computeMeasurement); prom-client
 * only with metrics enabled; solc never (contracts/tools compiles). Most of a daemon's start-up is
 * loading modules (BENCHMARKS.md ## Daemon), so these keep a relay's, a buyer's or a seller's short.
 */
const LOADED_LAZILY: readonly string[] = [
  'daemon/roles/buyer/index.ts', 'daemon/roles/seller/index.ts', 'daemon/roles/trusted-node/index.ts',
  'enclave/measurement.ts', 'enclave/evm.ts', 'enclave/precompiles.ts', 'enclave/worker.ts', 'enclave/runner.ts'
]
/** Packages no module of the daemon's static graph imports (see LOADED_LAZILY). */
const PACKAGES_LOADED_LAZILY: readonly string[] = ['@ethereumjs/evm', 'solc', 'prom-client', '@libp2p/prometheus-metrics']

/** Parts whose files are white-box: tests and benchmarks may import any file of a part they may import. */
const WHITE_BOX: readonly Part[] = ['test', 'bench']

export interface Edge {
  from: string
  to: string
  specifier: string
  dynamic: boolean
  line: number
  /** `import type`, `export type`, `import('x').T`: erased when the file is loaded. */
  typeOnly?: boolean
  /** A package (bare specifier): `to` is its name; only the lazy-loading check reads these. */
  bare?: boolean
}

function partOf (file: string): Part | undefined {
  return PARTS.find(p => file === p || file.startsWith(p + '/'))
}

function isTools (file: string): boolean {
  return /(^|\/)tools\//.test(file)
}

function tsFiles (dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
    const rel = dir === '' ? entry.name : `${dir}/${entry.name}`
    if (entry.isDirectory()) out.push(...tsFiles(rel))
    else if (entry.name.endsWith('.ts')) out.push(rel)
  }
  return out
}

/** Folders (below a part's own folder) that have an index.ts: entered from outside only through it. */
function foldersWithIndex (): Set<string> {
  return new Set(tsFiles('').filter(f => f.endsWith('/index.ts')).map(f => dirname(f)).filter(d => !(PARTS as readonly string[]).includes(d)))
}

/** The outermost folder with an index.ts that holds `to` but not `from`, if any. */
function enteredFolder (from: string, to: string, indexed: Set<string>): string | undefined {
  const parts = dirname(to).split('/')
  for (let i = 1; i <= parts.length; i++) {
    const dir = parts.slice(0, i).join('/')
    if (indexed.has(dir) && !from.startsWith(dir + '/')) return dir
  }
  return undefined
}

/**
 * The relative module specifiers of one file: import, export ... from, import(), import('x').T types,
 * and `new URL('./x.ts', import.meta.url)` (dynamic).
 */
export function importsOf (file: string, source: string): Edge[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const edges: Edge[] = []
  const add = (node: ts.Node, spec: ts.Expression | undefined, dynamic: boolean, typeOnly = false): void => {
    if (spec === undefined || !ts.isStringLiteralLike(spec)) return
    const line = sf.getLineAndCharacterOfPosition(node.getStart()).line + 1
    if (!spec.text.startsWith('.')) {
      if (!spec.text.startsWith('node:')) edges.push({ from: file, to: spec.text, specifier: spec.text, dynamic, line, typeOnly, bare: true })
      return
    }
    const to = normalize(join(dirname(file), spec.text))
    edges.push({ from: file, to, specifier: spec.text, dynamic, line, typeOnly })
  }
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node, node.moduleSpecifier, false, node.importClause?.isTypeOnly === true)
    else if (ts.isExportDeclaration(node)) add(node, node.moduleSpecifier, false, node.isTypeOnly)
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node, node.arguments[0], true)
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal, false, true)
    else if (isModuleUrl(node)) add(node, node.arguments![0], true)
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return edges
}

/** `new URL('<relative>.ts', import.meta.url)`: a module loaded by its path (a worker thread). */
function isModuleUrl (node: ts.Node): node is ts.NewExpression {
  if (!ts.isNewExpression(node) || !ts.isIdentifier(node.expression) || node.expression.text !== 'URL') return false
  const [spec, base] = node.arguments ?? []
  return spec !== undefined && ts.isStringLiteralLike(spec) && spec.text.endsWith('.ts') &&
    base !== undefined && ts.isPropertyAccessExpression(base) && base.name.text === 'url' &&
    ts.isMetaProperty(base.expression) && base.expression.keywordToken === ts.SyntaxKind.ImportKeyword
}

/** Every edge of the repository, from the files on disk. */
export function repositoryEdges (): Edge[] {
  return tsFiles('').flatMap(f => importsOf(f, readFileSync(join(ROOT, f), 'utf8')))
}

/** What is wrong with a set of edges; empty when the architecture holds. */
export function violations (allEdges: Edge[], indexed: Set<string> = foldersWithIndex()): string[] {
  const problems: string[] = []
  const edges = allEdges.filter(e => e.bare !== true)
  const where = (e: Edge): string => `${e.from}:${e.line} imports ${e.specifier}`
  const measured = new Set<string>(ENCLAVE_CODE_FILES)
  for (const e of edges) {
    const from = partOf(e.from)
    const to = partOf(e.to)
    if (from === undefined || to === undefined) { problems.push(`${where(e)}: outside every part`); continue }
    if (from === to) {
      const folder = WHITE_BOX.includes(from) ? undefined : enteredFolder(e.from, e.to, indexed)
      if (folder !== undefined && e.to !== `${folder}/index.ts`) problems.push(`${where(e)}: bypasses ${folder}/index.ts`)
      continue
    }
    const cliLoadsTool = e.from === CLI_FILE && e.dynamic && CLI_MAY_LOAD.includes(to)
    if (from === 'config' && DEFAULTS_READ_BY_CONFIG.includes(e.to)) continue
    if (!ALLOWED[from].includes(to) && !cliLoadsTool) {
      problems.push(`${where(e)}: ${from} may not import ${to}`)
      continue
    }
    // The enclave worker loads exactly its measured files (the measurement hashes them by path), so
    // measured files import each other directly, not through an index that pulls in more code.
    const bothMeasured = measured.has(e.from) && measured.has(e.to)
    if (!WHITE_BOX.includes(from) && !bothMeasured && e.to !== `${to}/index.ts`) {
      problems.push(`${where(e)}: bypasses ${to}/index.ts`)
    }
  }
  // Reachable from the daemon's start module, through any import (static, dynamic or type).
  const byFile = new Map<string, Edge[]>()
  for (const e of edges) byFile.set(e.from, [...(byFile.get(e.from) ?? []), e])
  const seen = new Map<string, string>([[DAEMON_START, DAEMON_START]])
  const queue = [DAEMON_START]
  while (queue.length > 0) {
    const file = queue.shift()!
    for (const e of byFile.get(file) ?? []) {
      if (seen.has(e.to)) continue
      seen.set(e.to, `${seen.get(file)!} -> ${e.to}`)
      queue.push(e.to)
    }
  }
  for (const [file, path] of seen) if (isTools(file)) problems.push(`the running daemon loads a tool: ${path}`)
  // The daemon's static graph: what loads before its start module runs, whatever its roles.
  const staticGraph = new Map<string, string>([[DAEMON_START, DAEMON_START]])
  const pending = [DAEMON_START]
  while (pending.length > 0) {
    const file = pending.shift()!
    for (const e of allEdges) {
      if (e.from !== file || e.dynamic || e.typeOnly === true) continue
      const path = `${staticGraph.get(file)!} -> ${e.to}`
      if (e.bare === true) {
        if (PACKAGES_LOADED_LAZILY.includes(e.to)) problems.push(`the daemon's static graph loads ${e.to}, which is loaded lazily: ${path}`)
        continue
      }
      if (staticGraph.has(e.to)) continue
      staticGraph.set(e.to, path)
      if (LOADED_LAZILY.includes(e.to)) problems.push(`the daemon's static graph loads ${e.to}, which is loaded lazily: ${path}`)
      else pending.push(e.to)
    }
  }
  // The command line's static imports (loaded for every command, `sdte daemon` included) hold no tool either.
  for (const e of byFile.get(CLI_FILE) ?? []) {
    if (!e.dynamic && isTools(e.to)) problems.push(`${where(e)}: the command line loads a tool for every command`)
  }
  return problems
}

test('every import between parts is allowed, goes through the part\'s index, and no tool is in the running daemon', () => {
  const edges = repositoryEdges()
  assert.ok(edges.length > 300, `only ${edges.length} imports found: the parser missed some`)
  const missing = edges.filter(e => e.bare !== true && !existsSync(join(ROOT, e.to))).map(e => `${e.from}:${e.line} imports ${e.specifier}: no such file`)
  const problems = [...missing, ...violations(edges)]
  assert.equal(problems, [], `architecture violations:\n  ${problems.join('\n  ')}`)
})

test('the parser sees every kind of import, and the checks catch each kind of violation', () => {
  const source = [
    "import { a } from '../contracts/index.ts'",
    "import type { B } from './roles/context.ts'",
    "export * from '../p2p/index.ts'",
    "export { c } from '../config/index.ts'",
    "const m = await import('./tools/index.ts')",
    "type T = import('../enclave/index.ts').EnclaveHost",
    "import { d } from 'ethers'",
    "const w = new Worker(new URL('./worker.ts', import.meta.url))",
    "const p = new URL('../package.json', import.meta.url)"
  ].join('\n')
  const found = importsOf('daemon/x.ts', source).filter(e => e.bare !== true).map(e => [e.to, e.dynamic])
  assert.equal(found, [
    ['contracts/index.ts', false], ['daemon/roles/context.ts', false], ['p2p/index.ts', false],
    ['config/index.ts', false], ['daemon/tools/index.ts', true], ['enclave/index.ts', false], ['daemon/worker.ts', true]
  ])
  const edge = (from: string, to: string, dynamic = false): Edge => ({ from, to, specifier: relative(dirname(from), to), dynamic, line: 1 })
  assert.equal(violations([edge('p2p/host/host.ts', 'daemon/log.ts')]), ['p2p/host/host.ts:1 imports ../../daemon/log.ts: p2p may not import daemon'])
  assert.equal(violations([edge('daemon/daemon.ts', 'p2p/data/index.ts')]), ['daemon/daemon.ts:1 imports ../p2p/data/index.ts: bypasses p2p/index.ts'])
  assert.equal(violations([edge('p2p/offer/index.ts', 'p2p/demand/demand.ts')]), ['p2p/offer/index.ts:1 imports ../demand/demand.ts: bypasses p2p/demand/index.ts'])
  assert.equal(violations([edge('daemon/daemon.ts', 'daemon/roles/buyer/consensus.ts')]), ['daemon/daemon.ts:1 imports roles/buyer/consensus.ts: bypasses daemon/roles/buyer/index.ts'])
  assert.equal(violations([edge('p2p/demand/demand.ts', 'p2p/demand/constants.ts'), edge('daemon/roles/buyer/demand.ts', 'daemon/roles/context.ts'), edge('daemon/daemon.ts', 'daemon/rpc/server.ts')]), [])
  assert.equal(violations([edge('bench/gas/run.ts', 'test/helpers/daemon-process.ts')]), ['bench/gas/run.ts:1 imports ../../test/helpers/daemon-process.ts: bench may not import test'])
  assert.equal(violations([edge('daemon/cli.ts', 'daemon/tools/index.ts', true)]), [])
  assert.equal(violations([edge('daemon/cli.ts', 'daemon/tools/index.ts')]), [
    'daemon/cli.ts:1 imports tools/index.ts: daemon may not import daemon/tools',
    'daemon/cli.ts:1 imports tools/index.ts: the command line loads a tool for every command'
  ])
  assert.equal(importsOf('daemon/x.ts', source).filter(e => e.bare === true).map(e => [e.to, e.typeOnly]), [['ethers', false]])
  assert.equal(importsOf('daemon/x.ts', source).filter(e => e.typeOnly === true).map(e => e.to), ['daemon/roles/context.ts', 'enclave/index.ts'])
  // A role, the EVM or a lazily loaded package in the daemon's static graph; the same through import() or a type is fine.
  assert.equal(violations([edge('daemon/daemon.ts', 'daemon/roles/buyer/index.ts')]), [
    'the daemon\'s static graph loads daemon/roles/buyer/index.ts, which is loaded lazily: daemon/daemon.ts -> daemon/roles/buyer/index.ts'
  ])
  assert.equal(violations([edge('daemon/daemon.ts', 'enclave/index.ts'), { ...edge('enclave/index.ts', '@ethereumjs/evm'), bare: true }]), [
    'the daemon\'s static graph loads @ethereumjs/evm, which is loaded lazily: daemon/daemon.ts -> enclave/index.ts -> @ethereumjs/evm'
  ])
  assert.equal(violations([
    edge('daemon/daemon.ts', 'daemon/roles/buyer/index.ts', true), edge('daemon/daemon.ts', 'enclave/index.ts'),
    { ...edge('enclave/index.ts', 'enclave/measurement.ts'), typeOnly: true }, { ...edge('daemon/metrics.ts', 'prom-client', true), bare: true }
  ]), [])
  assert.equal(violations([edge('daemon/daemon.ts', 'daemon/roles/node.ts'), edge('daemon/roles/node.ts', 'contracts/tools/index.ts')]), [
    'daemon/roles/node.ts:1 imports ../../contracts/tools/index.ts: daemon may not import contracts/tools',
    'the running daemon loads a tool: daemon/daemon.ts -> daemon/roles/node.ts -> contracts/tools/index.ts'
  ])
})

test.run()
