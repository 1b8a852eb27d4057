// One typed options tree for the daemon, with a default for every field. The sources, from weakest
// to strongest: defaults < DIR/config.json < environment (SDTE_*) < command-line flags. The CLI only
// maps flags onto a partial tree; everything else reads the merged result.
import { readFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { isLogLevel, type LogLevel } from './logging.ts'

export const ROLES = ['buyer', 'seller', 'node', 'relay'] as const
/** A role's name (--role); the roles' behaviour is daemon/roles/context.ts Role. */
export type RoleName = typeof ROLES[number]

export interface P2POptions {
  /** Multiaddrs to listen on. */
  listen: string[]
  /** Multiaddrs of peers to dial at start (besides the network file's bootstrap list). */
  bootstrap: string[]
  maxConnections: number
}

export interface RpcOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port: number
  host: '127.0.0.1'
  maxBodyBytes: number
  maxBatchLength: number
  requestTimeoutMs: number
}

export interface KeyOptions {
  /** File holding the keystore password; when unset, SDTE_PASSWORD, else a generated file in the datadir. */
  passwordFile: string | null
  /** scrypt cost of a newly written keystore (ethers' default 2^17). */
  scryptN: number
}

export interface LogOptions { level: LogLevel, debug: string }

/** How the roles trade. Prices are wei as decimal strings. */
export interface TradeOptions {
  /** How often each role looks at its active trades and the chain. */
  tickMs: number
  /** Buyer: how long offers are collected after a demand goes out. */
  offerWindowMs: number
  /** Buyer: how long one attestation may take before the node is passed over. */
  attestTimeoutMs: number
  /** Node: the price it asks per unit of enclave gas, and the most gas it runs for one task. */
  nodePricePerGas: string
  nodeMaxGas: string
}

export interface EnclaveConfig {
  /** The simulated attestation service's key (a devnet's attestation-root.key); default: beside a devnet's network file. */
  attestationKeyFile: string | null
  /** Test-only fault switch, refused outside a devnet: the node's result is replaced by a wrong one. */
  faultWrongResult: boolean
  /**
   * Node: overrides of how a run's time and heap budget follow from its gas cap (enclave RunBudgetPolicy,
   * docs/enclave.md "Run budget"); unset fields keep the enclave's defaults.
   */
  runBudget: Partial<Record<RunBudgetField, number>>
}

/** The fields of enclave.runBudget (the enclave's RunBudgetPolicy). */
export const RUN_BUDGET_FIELDS = ['wallMsPerMgas', 'minWallMs', 'heapBaseMb', 'heapMbPerMgas', 'maxHeapMb'] as const
export type RunBudgetField = typeof RUN_BUDGET_FIELDS[number]

export interface DaemonOptions {
  datadir: string
  roles: RoleName[]
  /** Path of a network file (network.json) naming the chain and contracts; null runs without a chain. */
  network: string | null
  p2p: P2POptions
  rpc: RpcOptions
  keys: KeyOptions
  log: LogOptions
  trade: TradeOptions
  enclave: EnclaveConfig
  /** Grace period for a graceful stop before the process is forced out. */
  shutdownTimeoutMs: number
}

export type PartialOptions = {
  [K in keyof DaemonOptions]?: DaemonOptions[K] extends unknown[] ? DaemonOptions[K]
    : DaemonOptions[K] extends object | null ? Partial<NonNullable<DaemonOptions[K]>> | (null extends DaemonOptions[K] ? null : never)
      : DaemonOptions[K]
}

export function defaultOptions (datadir: string): DaemonOptions {
  return {
    datadir,
    roles: ['relay'],
    network: null,
    p2p: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxConnections: 100 },
    rpc: { port: 0, host: '127.0.0.1', maxBodyBytes: 1024 * 1024, maxBatchLength: 32, requestTimeoutMs: 120_000 },
    keys: { passwordFile: null, scryptN: 131072 },
    log: { level: 'info', debug: '' },
    trade: { tickMs: 500, offerWindowMs: 3000, attestTimeoutMs: 10_000, nodePricePerGas: '1', nodeMaxGas: '2000000000' },
    enclave: { attestationKeyFile: null, faultWrongResult: false, runBudget: {} },
    shutdownTimeoutMs: 15_000
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly code = 'CONFIG_INVALID'
}

function list (v: string): string[] {
  return v.split(',').map(s => s.trim()).filter(s => s !== '')
}

export function parseRoles (values: string[], source: string): RoleName[] {
  const roles = new Set<RoleName>()
  for (const v of values.flatMap(list)) {
    if (!(ROLES as readonly string[]).includes(v)) throw new ConfigError(`${source}: unknown role "${v}" (expected ${ROLES.join(', ')})`)
    roles.add(v as RoleName)
  }
  if (roles.size === 0) throw new ConfigError(`${source}: no role given`)
  return [...roles]
}

export function parsePort (v: unknown, source: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${source}: port must be an integer 0..65535`)
  return n
}

/** Options from SDTE_* environment variables. */
export function optionsFromEnv (env: NodeJS.ProcessEnv): PartialOptions {
  const out: PartialOptions = {}
  if (env.SDTE_ROLE !== undefined) out.roles = parseRoles([env.SDTE_ROLE], 'SDTE_ROLE')
  if (env.SDTE_NETWORK !== undefined) out.network = env.SDTE_NETWORK
  const p2p: Partial<P2POptions> = {}
  if (env.SDTE_LISTEN !== undefined) p2p.listen = list(env.SDTE_LISTEN)
  if (env.SDTE_BOOTSTRAP !== undefined) p2p.bootstrap = list(env.SDTE_BOOTSTRAP)
  if (Object.keys(p2p).length > 0) out.p2p = p2p
  if (env.SDTE_RPC_PORT !== undefined) out.rpc = { port: parsePort(env.SDTE_RPC_PORT, 'SDTE_RPC_PORT') }
  if (env.SDTE_PASSWORD_FILE !== undefined) out.keys = { passwordFile: env.SDTE_PASSWORD_FILE }
  if (env.SDTE_LOG !== undefined) {
    if (!isLogLevel(env.SDTE_LOG)) throw new ConfigError(`SDTE_LOG: unknown level "${env.SDTE_LOG}"`)
    out.log = { level: env.SDTE_LOG }
  }
  const debug = env.SDTE_DEBUG ?? env.DEBUG
  if (debug !== undefined) out.log = { ...out.log, debug }
  return out
}

const KNOWN_KEYS: Record<string, readonly string[] | null> = {
  roles: null,
  network: null,
  p2p: ['listen', 'bootstrap', 'maxConnections'],
  rpc: ['port', 'maxBodyBytes', 'maxBatchLength', 'requestTimeoutMs'],
  keys: ['passwordFile', 'scryptN'],
  log: ['level', 'debug'],
  trade: ['tickMs', 'offerWindowMs', 'attestTimeoutMs', 'nodePricePerGas', 'nodeMaxGas'],
  enclave: ['attestationKeyFile', 'faultWrongResult', 'runBudget'],
  shutdownTimeoutMs: null
}

function isStringArray (v: unknown): v is string[] {
  return Array.isArray(v) && v.every(s => typeof s === 'string')
}

function positiveInt (v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(`${where} must be a positive integer`)
  return v
}

/** Checks a parsed config.json and returns it as a partial options tree; unknown keys are errors. */
export function validateConfigFile (raw: unknown, file: string): PartialOptions {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file}: must be a JSON object`)
  const obj = raw as Record<string, unknown>
  const out: PartialOptions = {}
  for (const [k, v] of Object.entries(obj)) {
    if (!(k in KNOWN_KEYS)) throw new ConfigError(`${file}: unknown option "${k}"`)
    const sub = KNOWN_KEYS[k]
    if (sub !== null) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${file}: "${k}" must be an object`)
      for (const sk of Object.keys(v)) if (!sub.includes(sk)) throw new ConfigError(`${file}: unknown option "${k}.${sk}"`)
    }
  }
  if (obj.roles !== undefined) {
    if (!isStringArray(obj.roles)) throw new ConfigError(`${file}: "roles" must be an array of strings`)
    out.roles = parseRoles(obj.roles, `${file}: roles`)
  }
  if (obj.network !== undefined) {
    if (obj.network !== null && typeof obj.network !== 'string') throw new ConfigError(`${file}: "network" must be a path`)
    out.network = obj.network
  }
  if (obj.shutdownTimeoutMs !== undefined) out.shutdownTimeoutMs = positiveInt(obj.shutdownTimeoutMs, `${file}: shutdownTimeoutMs`)
  const p2p = obj.p2p as Record<string, unknown> | undefined
  if (p2p !== undefined) {
    out.p2p = {}
    for (const k of ['listen', 'bootstrap'] as const) {
      if (p2p[k] !== undefined) {
        if (!isStringArray(p2p[k])) throw new ConfigError(`${file}: "p2p.${k}" must be an array of multiaddr strings`)
        out.p2p[k] = p2p[k]
      }
    }
    if (p2p.maxConnections !== undefined) out.p2p.maxConnections = positiveInt(p2p.maxConnections, `${file}: p2p.maxConnections`)
  }
  const rpc = obj.rpc as Record<string, unknown> | undefined
  if (rpc !== undefined) {
    out.rpc = {}
    if (rpc.port !== undefined) out.rpc.port = parsePort(rpc.port, `${file}: rpc.port`)
    for (const k of ['maxBodyBytes', 'maxBatchLength', 'requestTimeoutMs'] as const) {
      if (rpc[k] !== undefined) out.rpc[k] = positiveInt(rpc[k], `${file}: rpc.${k}`)
    }
  }
  const keys = obj.keys as Record<string, unknown> | undefined
  if (keys !== undefined) {
    out.keys = {}
    if (keys.passwordFile !== undefined) {
      if (keys.passwordFile !== null && typeof keys.passwordFile !== 'string') throw new ConfigError(`${file}: "keys.passwordFile" must be a path`)
      out.keys.passwordFile = keys.passwordFile
    }
    if (keys.scryptN !== undefined) {
      const n = positiveInt(keys.scryptN, `${file}: keys.scryptN`)
      if ((n & (n - 1)) !== 0 || n < 1024) throw new ConfigError(`${file}: keys.scryptN must be a power of two >= 1024`)
      out.keys.scryptN = n
    }
  }
  const log = obj.log as Record<string, unknown> | undefined
  if (log !== undefined) {
    out.log = {}
    if (log.level !== undefined) {
      if (!isLogLevel(log.level)) throw new ConfigError(`${file}: "log.level" must be one of error, warn, info, debug, trace`)
      out.log.level = log.level
    }
    if (log.debug !== undefined) {
      if (typeof log.debug !== 'string') throw new ConfigError(`${file}: "log.debug" must be a string`)
      out.log.debug = log.debug
    }
  }
  const trade = obj.trade as Record<string, unknown> | undefined
  if (trade !== undefined) {
    out.trade = {}
    for (const k of ['tickMs', 'offerWindowMs', 'attestTimeoutMs'] as const) {
      if (trade[k] !== undefined) out.trade[k] = positiveInt(trade[k], `${file}: trade.${k}`)
    }
    for (const k of ['nodePricePerGas', 'nodeMaxGas'] as const) {
      if (trade[k] !== undefined) {
        if (typeof trade[k] !== 'string' || !/^[0-9]{1,38}$/.test(trade[k])) throw new ConfigError(`${file}: trade.${k} must be a decimal string`)
        out.trade[k] = trade[k]
      }
    }
  }
  const enclave = obj.enclave as Record<string, unknown> | undefined
  if (enclave !== undefined) {
    out.enclave = {}
    if (enclave.attestationKeyFile !== undefined) {
      if (enclave.attestationKeyFile !== null && typeof enclave.attestationKeyFile !== 'string') throw new ConfigError(`${file}: "enclave.attestationKeyFile" must be a path`)
      out.enclave.attestationKeyFile = enclave.attestationKeyFile
    }
    if (enclave.faultWrongResult !== undefined) {
      if (typeof enclave.faultWrongResult !== 'boolean') throw new ConfigError(`${file}: "enclave.faultWrongResult" must be true or false`)
      out.enclave.faultWrongResult = enclave.faultWrongResult
    }
    if (enclave.runBudget !== undefined) {
      const rb = enclave.runBudget as Record<string, unknown>
      if (rb === null || typeof rb !== 'object' || Array.isArray(rb)) throw new ConfigError(`${file}: "enclave.runBudget" must be an object`)
      const budget: Partial<Record<RunBudgetField, number>> = {}
      for (const [k, v] of Object.entries(rb)) {
        if (!(RUN_BUDGET_FIELDS as readonly string[]).includes(k)) throw new ConfigError(`${file}: unknown field "enclave.runBudget.${k}" (known: ${RUN_BUDGET_FIELDS.join(', ')})`)
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`${file}: "enclave.runBudget.${k}" must be a non-negative number`)
        budget[k as RunBudgetField] = v
      }
      out.enclave.runBudget = budget
    }
  }
  return out
}

export function readConfigFile (datadir: string): PartialOptions {
  const file = join(datadir, 'config.json')
  if (!existsSync(file)) return {}
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError(`${file}: not valid JSON (${(err as Error).message})`)
  }
  const opts = validateConfigFile(raw, file)
  // Paths in config.json are relative to the datadir; those from flags and env to the working directory.
  if (typeof opts.network === 'string') opts.network = resolve(datadir, opts.network)
  if (typeof opts.keys?.passwordFile === 'string') opts.keys.passwordFile = resolve(datadir, opts.keys.passwordFile)
  if (typeof opts.enclave?.attestationKeyFile === 'string') opts.enclave.attestationKeyFile = resolve(datadir, opts.enclave.attestationKeyFile)
  return opts
}

/** Merges partial trees over the defaults; later sources win, objects merge field by field, arrays replace. */
export function mergeOptions (base: DaemonOptions, ...layers: PartialOptions[]): DaemonOptions {
  const out = structuredClone(base)
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer) as [keyof DaemonOptions, unknown][]) {
      if (v === undefined) continue
      const cur = out[k]
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && cur !== null && typeof cur === 'object' && !Array.isArray(cur)) {
        Object.assign(cur, Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined)))
      } else {
        (out as unknown as Record<string, unknown>)[k] = v
      }
    }
  }
  return out
}

/** The daemon's options: defaults, then DIR/config.json, then the environment, then flags. */
export function resolveOptions (datadir: string, flags: PartialOptions, env: NodeJS.ProcessEnv = process.env): DaemonOptions {
  const dir = resolve(datadir)
  const merged = mergeOptions(defaultOptions(dir), readConfigFile(dir), optionsFromEnv(env), flags)
  if (merged.network !== null) merged.network = resolve(merged.network)
  if (merged.keys.passwordFile !== null) merged.keys.passwordFile = resolve(merged.keys.passwordFile)
  return merged
}
