// One typed options tree for the daemon, with a default for every field. The sources, from weakest
// to strongest: defaults < DIR/config.json < environment (SDTE_*) < command-line flags. The CLI only
// maps flags onto a partial tree; everything else reads the merged result. Each key is declared once
// (TOP and SECTIONS below) with its default, taken from its part's constants, and its config.json check.
import { SdteError } from './errors.ts'
import { readFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { homedir } from 'node:os'
import { isLogLevel, LOG_FORMATS, type LogFormat, type LogLevel } from './logging.ts'
import { isIP } from 'node:net'
// The p2p part's defaults have one home, p2p/constants.ts (a leaf module: it imports nothing), read here
// directly rather than through p2p/index.ts so that reading options never loads libp2p.
import * as P2P from '../p2p/constants.ts'
import * as RPC from './rpc-defaults.ts'
import * as D from './daemon-defaults.ts'

export const ROLES = ['buyer', 'seller', 'node', 'relay'] as const
/** A role's name (--role); the roles' behaviour is daemon/roles/context.ts Role. */
export type RoleName = typeof ROLES[number]
/** A role that takes part in trades (the relay runs none): the `role` of a trade record and of DTMC's index. */
export type TradeRole = Exclude<RoleName, 'relay'>

/**
 * One option: its default, which lives in its part's constants (p2p/constants.ts,
 * config/rpc-defaults.ts, config/daemon-defaults.ts), and how config.json sets it (null: it cannot).
 * The options types, the defaults and the config.json checks are all derived from the tables below,
 * so each key is written once.
 */
interface Field<T> {
  readonly default: T
  readonly parse: ((v: unknown, where: string) => T) | null
}

function field<T> (dflt: T, parse: ((v: unknown, where: string) => T) | null): Field<T> {
  return { default: dflt, parse }
}

function isStringArray (v: unknown): v is string[] {
  return Array.isArray(v) && v.every(s => typeof s === 'string')
}

function positiveInt (v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(`${where} must be a positive integer`)
  return v
}

function multiaddrs (v: unknown, where: string): string[] {
  if (!isStringArray(v)) throw new ConfigError(`${where} must be an array of multiaddr strings`)
  return v
}

function pathOrNull (v: unknown, where: string): string | null {
  if (v !== null && typeof v !== 'string') throw new ConfigError(`${where} must be a path`)
  return v
}

function decimalString (v: unknown, where: string): string {
  if (typeof v !== 'string' || !/^[0-9]{1,38}$/.test(v)) throw new ConfigError(`${where} must be a decimal string`)
  return v
}

/** The fields of enclave.runBudget (the enclave's RunBudgetPolicy, docs/enclave.md "Run budget"). */
export const RUN_BUDGET_FIELDS = ['wallMsPerMgas', 'minWallMs', 'heapBaseMb', 'heapMbPerMgas', 'maxHeapMb'] as const
export type RunBudgetField = typeof RUN_BUDGET_FIELDS[number]

function runBudget (v: unknown, where: string): Partial<Record<RunBudgetField, number>> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${where} must be an object`)
  const budget: Partial<Record<RunBudgetField, number>> = {}
  for (const [k, n] of Object.entries(v)) {
    if (!(RUN_BUDGET_FIELDS as readonly string[]).includes(k)) throw new ConfigError(`${where}.${k} is not a run budget field (known: ${RUN_BUDGET_FIELDS.join(', ')})`)
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new ConfigError(`${where}.${k} must be a non-negative number`)
    budget[k as RunBudgetField] = n
  }
  return budget
}

function scryptCost (v: unknown, where: string): number {
  const n = positiveInt(v, where)
  if ((n & (n - 1)) !== 0 || n < D.MIN_SCRYPT_N) throw new ConfigError(`${where} must be a power of two >= ${D.MIN_SCRYPT_N}`)
  return n
}

function logLevel (v: unknown, where: string): LogLevel {
  if (!isLogLevel(v)) throw new ConfigError(`${where} must be one of error, warn, info, debug, trace`)
  return v
}

function logFormat (v: unknown, where: string): LogFormat {
  if (!(LOG_FORMATS as readonly unknown[]).includes(v)) throw new ConfigError(`${where} must be one of ${LOG_FORMATS.join(', ')}`)
  return v as LogFormat
}

function nonNegativeInt (v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ConfigError(`${where} must be a non-negative integer`)
  return v
}

/** An IP address to listen on (a name would resolve to who knows which interface). */
export function parseListenHost (v: unknown, where: string): string {
  if (typeof v !== 'string' || isIP(v) === 0) throw new ConfigError(`${where} must be an IP address (127.0.0.1, ::1, 0.0.0.0)`)
  return v
}

function text (v: unknown, where: string): string {
  if (typeof v !== 'string') throw new ConfigError(`${where} must be a string`)
  return v
}

function flag (v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(`${where} must be true or false`)
  return v
}

/** p2p.mode: a network mode of p2p/constants.ts, or 'auto' (decided from the network file). */
export type P2PModeOption = typeof D.DEFAULT_P2P_MODE | P2P.NetworkMode

export function parseP2PMode (v: unknown, where: string): P2PModeOption {
  if (v !== D.DEFAULT_P2P_MODE && !(P2P.NETWORK_MODES as readonly unknown[]).includes(v)) {
    throw new ConfigError(`${where} must be one of ${D.DEFAULT_P2P_MODE}, ${P2P.NETWORK_MODES.join(', ')}`)
  }
  return v as P2PModeOption
}

/** The options at the top of the tree (besides datadir, which only the command line gives). */
const TOP = {
  roles: field<RoleName[]>([...D.DEFAULT_ROLES], (v, where) => {
    if (!isStringArray(v)) throw new ConfigError(`${where} must be an array of strings`)
    return parseRoles(v, where)
  }),
  /** Path of a network file (network.json) naming the chain and contracts; null runs without a chain. */
  network: field<string | null>(null, pathOrNull),
  shutdownTimeoutMs: field(D.DEFAULT_SHUTDOWN_TIMEOUT_MS, positiveInt)
}

/** The sections of the tree, one per part. */
const SECTIONS = {
  p2p: {
    /** Multiaddrs to listen on. */
    listen: field<string[]>([...P2P.DEFAULT_LISTEN], multiaddrs),
    /** Multiaddrs of peers to dial at start (besides the network file's bootstrap list). */
    bootstrap: field<string[]>([], multiaddrs),
    /** Which addresses are announced and kept in the DHT: auto, local (devnet, LAN) or public. */
    mode: field<P2PModeOption>(D.DEFAULT_P2P_MODE, parseP2PMode),
    /** Public multiaddrs to announce instead of the listen ones (an operator's public IP and port). */
    announce: field<string[]>([], multiaddrs),
    /** Reserve a slot on a relay: auto (in p2p mode public, unless an announce address is public), always, never. */
    relayReservation: field<P2P.RelayReservationMode>(P2P.DEFAULT_RELAY_RESERVATION, (v, where) => {
      if (typeof v !== 'string' || !(P2P.RELAY_RESERVATION_MODES as readonly string[]).includes(v)) {
        throw new ConfigError(`${where} must be one of ${P2P.RELAY_RESERVATION_MODES.join(', ')}`)
      }
      return v as P2P.RelayReservationMode
    }),
    maxConnections: field(P2P.DEFAULT_MAX_CONNECTIONS, positiveInt)
  },
  rpc: {
    /** TCP port on 127.0.0.1; 0 picks a free one. */
    port: field(RPC.DEFAULT_RPC_PORT, parsePort),
    host: field<typeof RPC.RPC_HOST>(RPC.RPC_HOST, null),
    maxBodyBytes: field(RPC.DEFAULT_MAX_BODY_BYTES, positiveInt),
    maxBatchLength: field(RPC.DEFAULT_MAX_BATCH_LENGTH, positiveInt),
    requestTimeoutMs: field(RPC.DEFAULT_REQUEST_TIMEOUT_MS, positiveInt)
  },
  keys: {
    /** File holding the keystore password; when unset, SDTE_PASSWORD, else a generated file in the datadir. */
    passwordFile: field<string | null>(null, pathOrNull),
    scryptN: field(D.DEFAULT_SCRYPT_N, scryptCost)
  },
  log: {
    level: field<LogLevel>(D.DEFAULT_LOG_LEVEL, logLevel),
    /** Namespace patterns to log at debug level (`sdte:*`, `sdte:p2p,-sdte:rpc`, `libp2p:*`). */
    debug: field('', text),
    /** human (time level namespace message {context}) or json (one object a line). */
    format: field<LogFormat>(D.DEFAULT_LOG_FORMAT, logFormat),
    /** Also append the lines to this file, rotated at maxFileBytes; null: stderr only. */
    file: field<string | null>(null, pathOrNull),
    maxFileBytes: field(D.DEFAULT_LOG_MAX_FILE_BYTES, positiveInt),
    /** Rotated files kept (FILE.1 .. FILE.<maxFiles>); 0 keeps none. */
    maxFiles: field(D.DEFAULT_LOG_MAX_FILES, nonNegativeInt)
  },
  /** The monitoring server: Prometheus /metrics, and unauthenticated /health and /ready. */
  metrics: {
    /** Off unless asked for (--metrics). */
    enabled: field(false, flag),
    /** Loopback by default: a wider address exposes the metrics (never a secret) to that network. */
    host: field(D.DEFAULT_METRICS_HOST, parseListenHost),
    port: field(D.DEFAULT_METRICS_PORT, parsePort)
  },
  /** How the roles trade. Prices are wei as decimal strings. */
  trade: {
    tickMs: field(D.DEFAULT_TICK_MS, positiveInt),
    /** Blocks deep our transactions, and a trade's opening, must be before the roles act on them (1: mined). */
    confirmations: field(D.DEFAULT_CONFIRMATIONS, positiveInt),
    offerWindowMs: field(D.DEFAULT_OFFER_WINDOW_MS, positiveInt),
    offerGraceMs: field(D.DEFAULT_OFFER_GRACE_MS, nonNegativeInt),
    /** React to new blocks, trade state changes and stream messages at once; off: only the tick advances trades. */
    events: field(true, flag),
    attestTimeoutMs: field(D.DEFAULT_ATTEST_TIMEOUT_MS, positiveInt),
    nodePricePerGas: field(D.DEFAULT_NODE_PRICE_PER_GAS, decimalString),
    nodeMaxGas: field(D.DEFAULT_NODE_MAX_GAS, decimalString)
  },
  enclave: {
    /** The simulated attestation service's key (a devnet's attestation-root.key); default: beside a devnet's network file. */
    attestationKeyFile: field<string | null>(null, pathOrNull),
    /** Test-only fault switch, refused outside a devnet: the node's result is replaced by a wrong one. */
    faultWrongResult: field(false, flag),
    /**
     * Node: overrides of how a run's time and heap budget follow from its gas cap (enclave RunBudgetPolicy,
     * docs/enclave.md "Run budget"); unset fields keep the enclave's defaults.
     */
    runBudget: field<Partial<Record<RunBudgetField, number>>>({}, runBudget)
  }
}

type ValuesOf<F> = { -readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never }

export type P2POptions = ValuesOf<typeof SECTIONS.p2p>
export type RpcOptions = ValuesOf<typeof SECTIONS.rpc>
export type KeyOptions = ValuesOf<typeof SECTIONS.keys>
export type LogOptions = ValuesOf<typeof SECTIONS.log>
export type MetricsOptions = ValuesOf<typeof SECTIONS.metrics>
export type TradeOptions = ValuesOf<typeof SECTIONS.trade>
export type EnclaveConfig = ValuesOf<typeof SECTIONS.enclave>
type Sections = { [K in keyof typeof SECTIONS]: ValuesOf<typeof SECTIONS[K]> }

export type DaemonOptions = { datadir: string } & ValuesOf<typeof TOP> & Sections

export type PartialOptions = {
  [K in keyof DaemonOptions]?: DaemonOptions[K] extends unknown[] ? DaemonOptions[K]
    : DaemonOptions[K] extends object | null ? Partial<NonNullable<DaemonOptions[K]>> | (null extends DaemonOptions[K] ? null : never)
      : DaemonOptions[K]
}

function defaultsOf (fields: Record<string, Field<unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, structuredClone(f.default)]))
}

export function defaultOptions (datadir: string): DaemonOptions {
  return {
    datadir,
    ...defaultsOf(TOP),
    ...Object.fromEntries(Object.entries(SECTIONS).map(([k, s]) => [k, defaultsOf(s)]))
  } as DaemonOptions
}

export class ConfigError extends SdteError {
  override name = 'ConfigError'
  override code = 'ERR_CONFIG_INVALID'
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
  if (env.SDTE_ANNOUNCE !== undefined) p2p.announce = list(env.SDTE_ANNOUNCE)
  if (env.SDTE_P2P_MODE !== undefined) p2p.mode = parseP2PMode(env.SDTE_P2P_MODE, 'SDTE_P2P_MODE')
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

/** Checks a parsed config.json and returns it as a partial options tree; unknown keys are errors. */
export function validateConfigFile (raw: unknown, file: string): PartialOptions {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file}: must be a JSON object`)
  const top: Record<string, Field<unknown>> = TOP
  const sections: Record<string, Record<string, Field<unknown>>> = SECTIONS
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue
    const f = top[k]
    if (f !== undefined && f.parse !== null) {
      out[k] = f.parse(v, `${file}: ${k}`)
      continue
    }
    const section = sections[k]
    if (section === undefined) throw new ConfigError(`${file}: unknown option "${k}"`)
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${file}: "${k}" must be an object`)
    const values: Record<string, unknown> = {}
    for (const [sk, sv] of Object.entries(v)) {
      const sf = section[sk]
      if (sf === undefined || sf.parse === null) throw new ConfigError(`${file}: unknown option "${k}.${sk}"`)
      if (sv !== undefined) values[sk] = sf.parse(sv, `${file}: ${k}.${sk}`)
    }
    out[k] = values
  }
  return out as PartialOptions
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
  if (typeof opts.log?.file === 'string') opts.log.file = resolve(datadir, opts.log.file)
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
  return resolveOptionsWithSources(datadir, flags, env).options
}

/**
 * Where each option's value came from (`sdte config show`), keyed by its path in the tree (`roles`,
 * `p2p.listen`): `default`, the config file's path, `env NAME` or `flag`.
 */
export type OptionSources = Record<string, string>

/** The paths of the options a partial tree sets. */
function leafPaths (layer: PartialOptions): string[] {
  const sections: Record<string, unknown> = SECTIONS
  return Object.entries(layer).flatMap(([k, v]) => {
    if (v === undefined) return []
    if (sections[k] !== undefined && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      return Object.entries(v).filter(([, x]) => x !== undefined).map(([sk]) => `${k}.${sk}`)
    }
    return [k]
  })
}

/** resolveOptions, and where each value came from. */
export function resolveOptionsWithSources (datadir: string, flags: PartialOptions, env: NodeJS.ProcessEnv = process.env): { options: DaemonOptions, sources: OptionSources } {
  const dir = resolve(datadir)
  const defaults = defaultOptions(dir)
  const fromFile = readConfigFile(dir)
  const fromEnv = optionsFromEnv(env)
  const merged = mergeOptions(defaults, fromFile, fromEnv, flags)
  if (merged.network !== null) merged.network = resolve(merged.network)
  if (merged.keys.passwordFile !== null) merged.keys.passwordFile = resolve(merged.keys.passwordFile)
  if (merged.log.file !== null) merged.log.file = resolve(merged.log.file)

  const { datadir: _datadir, ...tree } = defaults
  const sources: OptionSources = {}
  for (const path of leafPaths(tree as PartialOptions)) sources[path] = 'default'
  for (const path of leafPaths(fromFile)) sources[path] = join(dir, 'config.json')
  // One variable at a time, to name it; SDTE_DEBUG after DEBUG, as it wins over it.
  const names = Object.keys(env).filter(k => k.startsWith('SDTE_') || k === 'DEBUG').sort((a, b) => Number(b === 'DEBUG') - Number(a === 'DEBUG'))
  for (const name of names) {
    for (const path of leafPaths(optionsFromEnv({ [name]: env[name] }))) sources[path] = `env ${name}`
  }
  for (const path of leafPaths(flags)) sources[path] = 'flag'
  return { options: merged, sources }
}

/**
 * The datadir when none is given: $SDTE_DATADIR, else $XDG_DATA_HOME/sdte where XDG_DATA_HOME is set,
 * else ~/.sdte; never the working directory (a daemon started from anywhere finds the same keys).
 */
export function defaultDatadir (env: NodeJS.ProcessEnv = process.env): { path: string, source: string } {
  if (env.SDTE_DATADIR !== undefined && env.SDTE_DATADIR !== '') return { path: resolve(env.SDTE_DATADIR), source: 'env SDTE_DATADIR' }
  if (env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== '') return { path: join(resolve(env.XDG_DATA_HOME), D.XDG_DATADIR_NAME), source: 'env XDG_DATA_HOME' }
  return { path: join(homedir(), D.HOME_DATADIR_NAME), source: 'default' }
}
