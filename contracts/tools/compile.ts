// Compiles every Solidity source under contracts/ with the pinned solc-js (no download) and
// writes one artifact per contract to contracts/artifacts/<Name>.json: { contractName, sourceName,
// abi, bytecode, deployedBytecode, sourceHash }. The artifacts are committed; a test recompiles
// and fails when they no longer match the sources.
//
//   node contracts/tools/compile.ts           write the artifacts
//   node contracts/tools/compile.ts --check   exit 1 if the committed artifacts differ from the sources
import { SdteError } from '../../config/index.ts'
import { EVM_HARDFORK } from '../../enclave/index.ts'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { join, relative, basename } from 'node:path'
import { createRequire } from 'node:module'

export const CONTRACTS_DIR = new URL('..', import.meta.url).pathname
export const ARTIFACTS_DIR = join(CONTRACTS_DIR, 'artifacts')

/** The compiler settings; part of every artifact's identity. */
export const SOLC_SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  // The confined EVM's hardfork: the analyses run there.
  evmVersion: EVM_HARDFORK,
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } }
} as const

export interface Artifact {
  contractName: string
  sourceName: string
  abi: unknown[]
  bytecode: string
  deployedBytecode: string
  sourceHash: string
}

/**
 * solc-js, loaded only when something is compiled: importing it installs a process-wide handler
 * that rethrows unhandled rejections, which no daemon or tool that merely reads artifacts should get.
 */
function loadSolc (): { compile: (input: string) => string } {
  return createRequire(import.meta.url)('solc') as { compile: (input: string) => string }
}

export class CompileError extends SdteError {
  override name = 'CompileError'
  override code = 'ERR_COMPILE'
}

function findSources (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (name === 'artifacts' || name === 'node_modules') continue
    if (statSync(path).isDirectory()) out.push(...findSources(path))
    else if (name.endsWith('.sol')) out.push(path)
  }
  return out
}

/** Compiles the given sources (name -> Solidity text); throws CompileError listing every error. */
export function compileSources (sources: Record<string, string>): Artifact[] {
  const input = {
    language: 'Solidity',
    sources: Object.fromEntries(Object.entries(sources).map(([name, content]) => [name, { content }])),
    settings: SOLC_SETTINGS
  }
  const output = JSON.parse(loadSolc().compile(JSON.stringify(input)))
  const errors = (output.errors ?? []).filter((e: { severity: string }) => e.severity === 'error')
  if (errors.length > 0) {
    throw new CompileError(errors.map((e: { formattedMessage: string }) => e.formattedMessage).join('\n'))
  }
  const artifacts: Artifact[] = []
  for (const [sourceName, contracts] of Object.entries(output.contracts ?? {}) as [string, Record<string, any>][]) {
    const sourceHash = '0x' + createHash('sha256').update(sources[sourceName]).digest('hex')
    for (const [contractName, c] of Object.entries(contracts)) {
      artifacts.push({
        contractName,
        sourceName,
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
        sourceHash
      })
    }
  }
  return artifacts
}

/** Compiles every .sol file under contracts/ (paths relative to contracts/ are the source names). */
export function compileAll (): Artifact[] {
  const sources: Record<string, string> = {}
  for (const path of findSources(CONTRACTS_DIR)) {
    sources[relative(CONTRACTS_DIR, path)] = readFileSync(path, 'utf8')
  }
  return compileSources(sources)
}

function artifactText (a: Artifact): string {
  return JSON.stringify(a, null, 2) + '\n'
}

/** Loads one committed artifact by contract name. */
export function loadArtifact (contractName: string): Artifact {
  const path = join(ARTIFACTS_DIR, `${contractName}.json`)
  if (!existsSync(path)) throw new CompileError(`no artifact for ${contractName}: run node contracts/tools/compile.ts`)
  return JSON.parse(readFileSync(path, 'utf8')) as Artifact
}

/** Names of artifacts that differ from a fresh compile, or that are missing or stale. */
export function staleArtifacts (): string[] {
  const fresh = compileAll()
  const stale: string[] = []
  const names = new Set<string>()
  for (const a of fresh) {
    names.add(`${a.contractName}.json`)
    const path = join(ARTIFACTS_DIR, `${a.contractName}.json`)
    if (!existsSync(path) || readFileSync(path, 'utf8') !== artifactText(a)) stale.push(a.contractName)
  }
  if (existsSync(ARTIFACTS_DIR)) {
    for (const f of readdirSync(ARTIFACTS_DIR)) if (f.endsWith('.json') && !names.has(f)) stale.push(basename(f, '.json') + ' (no source)')
  }
  return stale
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  if (process.argv.includes('--check')) {
    const stale = staleArtifacts()
    if (stale.length > 0) {
      console.error(`artifacts out of date: ${stale.join(', ')}; run node contracts/tools/compile.ts`)
      process.exit(1)
    }
    console.log('artifacts match the sources')
  } else {
    const artifacts = compileAll()
    const seen = new Set<string>()
    mkdirSync(ARTIFACTS_DIR, { recursive: true })
    for (const a of artifacts) {
      if (seen.has(a.contractName)) throw new CompileError(`two contracts named ${a.contractName}`)
      seen.add(a.contractName)
      writeFileSync(join(ARTIFACTS_DIR, `${a.contractName}.json`), artifactText(a))
    }
    console.log(`wrote ${artifacts.length} artifacts to ${relative(process.cwd(), ARTIFACTS_DIR) || '.'}`)
  }
}
