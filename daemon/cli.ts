// The sdte command line, on commander (help, suggestions, parsing). It only maps flags onto the options
// tree (config/options.ts: defaults < DIR/config.json < SDTE_* env < flags) and calls into the daemon,
// the control API client, or the tools, which it loads with import() only for the commands that need
// them (test/unit/architecture.test.ts).
// Exit codes mean one thing each, in every command: 0 ok, 1 the command failed, 2 the command line is
// wrong. A user's error is one line that says what to do; a stack trace only with --debug.
import { Command, CommanderError, Option } from 'commander'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { isIP } from 'node:net'
import { configureLogging } from './log.ts'
import {
  SdteError, LOG_LEVELS, LOG_FORMATS, isLogLevel, ConfigError, defaultDatadir, defaultOptions, parseListenHost, parseP2PMode, parsePort, parseRoles,
  resolveOptions, resolveOptionsWithSources, validateConfigFile, type LogFormat, type PartialOptions
} from '../config/index.ts'
import { RpcClient, DaemonNotRunningError, API_TOKEN_FILE } from './rpc/client.ts'
import { RpcError } from './rpc/errors.ts'
import { VERSION, versionText } from './version.ts'
import { TERMINAL_STATES, type TradeRole } from './trades.ts'
import { LOCK_FILE } from './lock.ts'

export const EXIT_OK = 0
/** The command ran and failed: a daemon not running, a bad config or network file, a trade refunded. */
export const EXIT_FAILURE = 1
/** The command line is wrong: an unknown command or option, a missing or malformed argument. */
export const EXIT_USAGE = 2
/** `sdte stop`: how long it waits for the daemon's process to end (beyond the daemon's own shutdown timeout). */
export const STOP_WAIT_MS = 30_000
/** `sdte watch`: the shortest and the default polling interval. */
export const WATCH_MIN_INTERVAL_MS = 100
export const WATCH_DEFAULT_INTERVAL_MS = 500

export class UsageError extends SdteError {
  override name = 'UsageError'
  override code = 'ERR_USAGE'
}

const out = (line: string): void => { process.stdout.write(line + '\n') }
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

const DATADIR_HELP = 'data directory (default: $SDTE_DATADIR, else $XDG_DATA_HOME/sdte where set, else ~/.sdte)'

function datadirOf (value: string | undefined): { path: string, source: string } {
  return value !== undefined ? { path: resolve(value), source: 'flag' } : defaultDatadir()
}

/** The flags that set the daemon's options (`daemon`, `init`, `config show`). */
interface DaemonFlags {
  datadir?: string
  role?: string[]
  listen?: string[]
  announce?: string[]
  p2pMode?: string
  bootstrap?: string[]
  rpcPort?: string
  network?: string
  passwordFile?: string
  logLevel?: string
  logFormat?: string
  logFile?: string
  logMaxSize?: string
  logMaxFiles?: string
  metrics?: boolean
  metricsHost?: string
  metricsPort?: string
  confirmations?: string
  debug?: string | boolean
}

/** A whole number from a flag (--log-max-size 1048576); `min` is its least value. */
function flagInt (v: string, flag: string, min: number): number {
  if (!/^\d{1,15}$/.test(v) || Number(v) < min) throw new ConfigError(`${flag}: expected an integer >= ${min}, got "${v}"`)
  return Number(v)
}

/** The defaults the help text names (their home: config/daemon-defaults.ts, through the options table). */
const DEFAULTS = defaultOptions('')

function withDaemonFlags (cmd: Command): Command {
  return cmd
    .option('--datadir <dir>', DATADIR_HELP)
    .option('--role <role>', 'buyer, seller, node or relay; repeat or comma-separate (default: relay)', collect)
    .option('--listen <multiaddr>', 'p2p address to listen on (repeatable)', collect)
    .option('--bootstrap <multiaddr>', 'peer to dial at start (repeatable)', collect)
    .option('--announce <multiaddr>', 'address to announce as reachable, e.g. a public IP with a forwarded port (repeatable)', collect)
    .addOption(new Option('--p2p-mode <mode>', 'network mode: local announces private addresses, public only public ones (default: auto, local on a devnet)').choices(['auto', 'local', 'public']))
    .option('--rpc-port <n>', 'control API port on 127.0.0.1 (0: any free port)')
    .option('--network <file>', 'network file (network.json from sdte devnet up or sdte deploy)')
    .option('--password-file <file>', 'file holding the keystore password (else $SDTE_PASSWORD, else a generated one in the datadir)')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS))
    .addOption(new Option('--log-format <format>', 'log lines as human text or JSON objects (default: human)').choices(LOG_FORMATS))
    .option('--log-file <file>', 'also append the log to this file, rotated by size')
    .option('--log-max-size <bytes>', `rotate the log file at this size (default: ${DEFAULTS.log.maxFileBytes})`)
    .option('--log-max-files <n>', `rotated log files kept: FILE.1 .. FILE.<n> (default: ${DEFAULTS.log.maxFiles})`)
    .option('--metrics', `serve Prometheus /metrics, and /health and /ready (default address ${DEFAULTS.metrics.host}:${DEFAULTS.metrics.port})`)
    .option('--metrics-host <ip>', 'address the metrics server listens on (a non-loopback one exposes it to that network)')
    .option('--metrics-port <n>', 'port of the metrics server (0: any free port)')
    .option('--confirmations <n>', `blocks deep our transactions and a trade's opening must be before the roles act on them (default: ${DEFAULTS.trade.confirmations}, mined; 3 or more on a public chain)`)
}

/** Maps flags onto a partial options tree. A bad flag value is a usage error. */
function flagsFrom (v: DaemonFlags): PartialOptions {
  try {
    const flags: PartialOptions = {}
    if (v.role !== undefined) flags.roles = parseRoles(v.role, '--role')
    if (v.network !== undefined) flags.network = resolve(v.network)
    if (v.listen !== undefined || v.bootstrap !== undefined || v.announce !== undefined || v.p2pMode !== undefined) {
      flags.p2p = {
        ...(v.listen !== undefined && { listen: v.listen }),
        ...(v.bootstrap !== undefined && { bootstrap: v.bootstrap }),
        ...(v.announce !== undefined && { announce: v.announce }),
        ...(v.p2pMode !== undefined && { mode: parseP2PMode(v.p2pMode, '--p2p-mode') })
      }
    }
    if (v.rpcPort !== undefined) flags.rpc = { port: parsePort(v.rpcPort, '--rpc-port') }
    if (v.passwordFile !== undefined) flags.keys = { passwordFile: resolve(v.passwordFile) }
    if (v.logLevel !== undefined && isLogLevel(v.logLevel)) flags.log = { level: v.logLevel }
    if (typeof v.debug === 'string') flags.log = { ...flags.log, debug: v.debug }
    if (v.logFormat !== undefined && (LOG_FORMATS as readonly string[]).includes(v.logFormat)) flags.log = { ...flags.log, format: v.logFormat as LogFormat }
    if (v.logFile !== undefined) flags.log = { ...flags.log, file: resolve(v.logFile) }
    if (v.logMaxSize !== undefined) flags.log = { ...flags.log, maxFileBytes: flagInt(v.logMaxSize, '--log-max-size', 1) }
    if (v.logMaxFiles !== undefined) flags.log = { ...flags.log, maxFiles: flagInt(v.logMaxFiles, '--log-max-files', 0) }
    if (v.confirmations !== undefined) flags.trade = { confirmations: flagInt(v.confirmations, '--confirmations', 1) }
    if (v.metrics === true || v.metricsHost !== undefined || v.metricsPort !== undefined) {
      flags.metrics = {
        ...(v.metrics === true && { enabled: true }),
        ...(v.metricsHost !== undefined && { host: parseListenHost(v.metricsHost, '--metrics-host') }),
        ...(v.metricsPort !== undefined && { port: parsePort(v.metricsPort, '--metrics-port') })
      }
    }
    return flags
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message)
    throw err
  }
}

async function cmdDaemon (o: DaemonFlags): Promise<void> {
  const options = resolveOptions(datadirOf(o.datadir).path, flagsFrom(o))
  const log = options.log
  configureLogging({
    level: log.level,
    debug: log.debug,
    format: log.format,
    file: log.file === null ? null : { path: log.file, maxBytes: log.maxFileBytes, maxFiles: log.maxFiles }
  })
  const { SdteDaemon } = await import('./daemon.ts')
  const { onShutdownSignals } = await import('./shutdown.ts')
  const daemon = new SdteDaemon(options)
  onShutdownSignals(async () => await daemon.stop(), options.shutdownTimeoutMs)
  await daemon.start()
  out(`sdte daemon ${VERSION} started\n  peer id:     ${daemon.keys.peerId}\n  eth address: ${daemon.keys.ethAddress}\n  roles:       ${options.roles.join(', ')}\n  listening:   ${daemon.p2p.addresses().join('\n               ')}\n  control API: ${daemon.rpc.address} (token in ${options.datadir}/api-token)${daemon.monitor !== null ? `\n  metrics:     ${daemon.monitor.url}/metrics (health: /health, /ready)` : ''}`)
  await daemon.stopped
  // Whatever a library left open must not keep a stopped daemon alive (main sets the exit code meanwhile).
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref()
  // A role whose boot failed after the start (a node's enclave or CISC registration) stopped the daemon: exit 1
  // with its error, as a start that fails does.
  if (daemon.failure !== undefined) throw daemon.failure
  out('sdte daemon stopped')
}

/** `sdte init`: checks the options and the network file, then writes config.json and makes the keys. Starts nothing. */
async function cmdInit (o: DaemonFlags): Promise<void> {
  const dir = datadirOf(o.datadir).path
  const flags = flagsFrom(o)
  const options = resolveOptions(dir, flags)
  if (options.network !== null) {
    const { readNetworkFile } = await import('../contracts/index.ts')
    readNetworkFile(options.network)
  }
  const configFile = join(dir, 'config.json')
  const before: Record<string, unknown> = existsSync(configFile) ? JSON.parse(readFileSync(configFile, 'utf8')) : {}
  const config: Record<string, unknown> = { ...before }
  for (const [k, v] of Object.entries(flags)) {
    const cur = config[k]
    config[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? { ...cur, ...v } : v
  }
  validateConfigFile(config, configFile)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const { lockDatadir } = await import('./lock.ts')
  const lock = lockDatadir(dir)
  try {
    if (!existsSync(configFile) || Object.keys(flags).length > 0) writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
    configureLogging({ level: 'warn' })
    const { loadOrCreateKeys } = await import('./keys.ts')
    const keys = await loadOrCreateKeys(dir, options.keys)
    out(`sdte initialised ${dir}\n  peer id:     ${keys.peerId}\n  eth address: ${keys.ethAddress}\n  config:      ${configFile}\n  start it with: sdte daemon --datadir ${dir}`)
  } finally {
    lock.release()
  }
}

async function cmdId (o: { datadir?: string, json?: boolean }): Promise<void> {
  const dir = datadirOf(o.datadir).path
  const { readIdentity } = await import('./keys.ts')
  const id = readIdentity(dir)
  if (id.peerId === undefined || id.ethAddress === undefined) throw new ConfigError(`no keys in ${dir}: make them with sdte init --datadir ${dir}`)
  out(o.json === true ? JSON.stringify(id) : `peer id:     ${id.peerId}\neth address: ${id.ethAddress}`)
}

async function cmdConfigShow (o: DaemonFlags & { json?: boolean }): Promise<void> {
  const datadir = datadirOf(o.datadir)
  const { options, sources } = resolveOptionsWithSources(datadir.path, flagsFrom(o))
  const all: Record<string, string> = { datadir: datadir.source, ...sources }
  const valueOf = (path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], options)
  if (o.json === true) {
    out(JSON.stringify(Object.fromEntries(Object.entries(all).map(([path, source]) => [path, { value: valueOf(path), source }])), null, 2))
    return
  }
  const width = Math.max(...Object.keys(all).map(k => k.length))
  for (const [path, source] of Object.entries(all)) out(`${path.padEnd(width)}  ${JSON.stringify(valueOf(path))}  (${source})`)
}

/** The pid in DIR/daemon.lock, if a process of that pid runs. */
function daemonPid (dir: string): number | undefined {
  let pid: number
  try {
    pid = Number.parseInt(readFileSync(join(dir, LOCK_FILE), 'utf8'), 10)
  } catch {
    return undefined
  }
  return Number.isInteger(pid) && pid > 0 && processRunning(pid) ? pid : undefined
}

/**
 * Whether process `pid` still runs. An exited process its parent has not reaped yet (a zombie) counts as exited;
 * /proc says so on Linux, elsewhere a signal 0 is all there is (EPERM: it runs, as another user).
 */
function processRunning (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && existsSync('/proc/self/stat')) return false
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function notRunning (dir: string): DaemonNotRunningError {
  return new DaemonNotRunningError(`no daemon running in ${dir} (start one with: sdte daemon --datadir ${dir})`)
}

function clientOf (dir: string): RpcClient {
  if (!existsSync(join(dir, 'api'))) throw notRunning(dir)
  return RpcClient.fromDatadir(dir)
}

interface Info { peerId: string, addresses: string[], roles: string[], ethAddress: string, chainId: number | null, network: string | null, version: string }

async function cmdStatus (o: { datadir?: string, json?: boolean }): Promise<number> {
  const dir = datadirOf(o.datadir).path
  let info: Info
  let peers: unknown[]
  let client: RpcClient
  try {
    client = clientOf(dir)
    info = await client.call<Info>('admin_info')
    peers = await client.call<unknown[]>('admin_peers')
  } catch (err) {
    if (!(err instanceof DaemonNotRunningError)) throw err
    if (o.json === true) {
      out(JSON.stringify({ running: false, datadir: dir }))
      return EXIT_FAILURE
    }
    throw notRunning(dir)
  }
  const status = { running: true, datadir: dir, pid: daemonPid(dir) ?? null, api: client.url, ...info, peers: peers.length }
  if (o.json === true) {
    out(JSON.stringify(status, null, 2))
  } else {
    out(`sdte daemon ${info.version} running in ${dir} (pid ${status.pid ?? 'unknown'})\n  peer id:     ${info.peerId}\n  eth address: ${info.ethAddress}\n  roles:       ${info.roles.join(', ')}\n  network:     ${info.network === null ? 'none' : `${info.network} (chain ${info.chainId})`}\n  peers:       ${peers.length}\n  listening:   ${info.addresses.join('\n               ')}\n  control API: ${client.url}`)
  }
  return EXIT_OK
}

async function cmdStop (o: { datadir?: string }): Promise<void> {
  const dir = datadirOf(o.datadir).path
  const pid = daemonPid(dir)
  try {
    await clientOf(dir).call('admin_shutdown')
  } catch (err) {
    if (err instanceof DaemonNotRunningError) throw notRunning(dir)
    throw err
  }
  const until = Date.now() + STOP_WAIT_MS
  // The process, not the lock file: the daemon removes its lock before its process exits.
  const running = (): boolean => pid !== undefined && processRunning(pid)
  while (running() && Date.now() < until) await sleep(50)
  if (running()) throw new SdteError(`the daemon (pid ${pid}) was asked to stop but still runs after ${STOP_WAIT_MS / 1000} s`)
  out(`sdte daemon in ${dir} stopped${pid !== undefined ? ` (pid ${pid})` : ''}`)
}

/**
 * The dashboard's URL with the token in its fragment: a browser sends no fragment to the server (so
 * it is in no log) nor in a Referer, and the page takes it out of the address bar (docs/guide.md).
 */
async function cmdDashboard (o: { datadir?: string }): Promise<void> {
  const dir = datadirOf(o.datadir).path
  const client = clientOf(dir)
  try {
    await client.call('admin_info')
  } catch (err) {
    if (err instanceof DaemonNotRunningError) throw notRunning(dir)
    throw err
  }
  const token = readFileSync(join(dir, API_TOKEN_FILE), 'utf8').trim()
  out(`${client.url}#token=${encodeURIComponent(token)}`)
}

async function cmdRpc (method: string, paramsText: string | undefined, o: { datadir?: string, json?: boolean, readOnly?: boolean }): Promise<number> {
  let params: unknown[] | Record<string, unknown> | undefined
  if (paramsText !== undefined) {
    try {
      params = JSON.parse(paramsText)
    } catch (err) {
      throw new UsageError(`params must be JSON (an array or an object): ${(err as Error).message}`)
    }
    if (params === null || typeof params !== 'object') throw new UsageError('params must be a JSON array or object')
  }
  const dir = datadirOf(o.datadir).path
  try {
    const result = await RpcClient.fromDatadir(dir, { readOnly: o.readOnly === true }).call(method, params)
    out(JSON.stringify(result, null, 2))
    return EXIT_OK
  } catch (err) {
    if (o.json !== true) throw err
    // For scripts: the error as the control API gave it (docs/api.md), on stdout where the result would be.
    if (err instanceof RpcError) out(JSON.stringify({ error: err.toJSON() }))
    else if (err instanceof DaemonNotRunningError) out(JSON.stringify({ error: { code: null, message: err.message, data: { name: err.name } } }))
    else throw err
    return EXIT_FAILURE
  }
}

/**
 * Whether a record has reached its role's end (daemon/trades.ts TERMINAL_STATES): `finalized` ends a
 * seller's part, but a buyer goes on to fetch the result (`delivered`).
 */
function atItsEnd (r: WatchedRecord): boolean {
  return (TERMINAL_STATES[r.role as TradeRole] as readonly string[] | undefined)?.includes(r.state) ?? false
}

/** The ends that are not a success: `watch` exits 1 on them. */
const FAILED_ENDS = new Set(['refunded', 'failed'])

/** trade_get's `explanation` (daemon/ends.ts EndExplanation). */
interface WatchedEnd { kind: string, failed: true, summary: string, buyer: string, seller: string, node: string }

interface WatchedRecord {
  role: string
  state: string
  reason?: string
  timeline: Array<{ state: string, at: string, note?: string }>
  size?: number
  nodes?: Array<{ index: number, delivered: boolean, sentBytes: number }>
}

async function cmdWatch (tradeId: string, o: { datadir?: string, interval: string, json?: boolean }): Promise<number> {
  if (!/^0x[0-9a-fA-F]{64}$/.test(tradeId)) throw new UsageError(`TRADE-ID must be 0x and 64 hex digits, not "${tradeId}"`)
  const interval = Number(o.interval)
  if (!Number.isInteger(interval) || interval < WATCH_MIN_INTERVAL_MS) throw new UsageError(`--interval must be a whole number of ms, at least ${WATCH_MIN_INTERVAL_MS}`)
  const client = clientOf(datadirOf(o.datadir).path)
  // One line per event as it is seen: text for people, or (--json) one JSON object per line.
  const emit = (event: Record<string, unknown>, text: string): void => { out(o.json === true ? JSON.stringify(event) : text) }
  const seen = new Set<string>()
  const progress = new Map<string, number>()
  let chainSeen = ''
  let waiting = false
  while (true) {
    const v = await client.call<{ records: WatchedRecord[], chain: { state: string, nResults: number } | null, explanation: WatchedEnd | null }>('trade_get', { tradeId })
    for (const r of v.records) {
      for (const e of r.timeline) {
        const key = `${r.role}:${e.state}:${e.at}`
        if (seen.has(key)) continue
        seen.add(key)
        emit({ event: 'state', role: r.role, state: e.state, at: e.at, ...(e.note !== undefined && { note: e.note }) }, `${e.at} ${r.role} ${e.state}${e.note !== undefined ? `: ${e.note}` : ''}`)
      }
      for (const n of r.nodes ?? []) {
        const key = `${r.role}:${n.index}`
        if (progress.get(key) === n.sentBytes) continue
        progress.set(key, n.sentBytes)
        const at = new Date().toISOString()
        const of = r.size === undefined ? '' : ` of ${r.size}`
        emit({ event: 'progress', role: r.role, node: n.index, sentBytes: n.sentBytes, ...(r.size !== undefined && { size: r.size }), delivered: n.delivered, at },
          `${at} ${r.role} data to node ${n.index}: ${n.sentBytes}${of} bytes${n.delivered ? ' (delivered)' : ''}`)
      }
    }
    if (v.chain !== null && `${v.chain.state}/${v.chain.nResults}` !== chainSeen) {
      chainSeen = `${v.chain.state}/${v.chain.nResults}`
      const at = new Date().toISOString()
      emit({ event: 'chain', state: v.chain.state, nResults: v.chain.nResults, at }, `${at} chain ${v.chain.state} (${v.chain.nResults} result${v.chain.nResults === 1 ? '' : 's'})`)
    }
    if (v.records.length === 0 && !waiting) {
      waiting = true
      const at = new Date().toISOString()
      emit({ event: 'waiting', at }, `${at} this daemon takes no part in the trade yet: waiting`)
    }
    const ended = v.records.length > 0 ? v.records.every(atItsEnd) : v.chain !== null && v.chain.state !== 'open'
    if (ended) {
      // Why the trade ended without an output (daemon/ends.ts), then each of this daemon's roles in its own words.
      let failed = v.explanation !== null
      if (v.explanation !== null) emit({ event: 'explanation', ...v.explanation }, `why: ${v.explanation.summary}`)
      for (const r of v.records) {
        failed ||= FAILED_ENDS.has(r.state)
        emit({ event: 'end', role: r.role, state: r.state, ...(r.reason !== undefined && { reason: r.reason }) }, `${r.role}: ${r.state}${r.reason !== undefined ? ` (${r.reason})` : ''}`)
      }
      if (v.records.length === 0 && v.chain !== null) {
        failed ||= v.chain.state === 'refunded'
        emit({ event: 'end', role: 'chain', state: v.chain.state }, `chain: ${v.chain.state}`)
      }
      return failed ? EXIT_FAILURE : EXIT_OK
    }
    await sleep(interval)
  }
}

async function cmdDevnetUp (o: { dir: string, host?: string, announce?: string, port?: string, relay?: boolean, relayPort?: string, measurement?: string[], blockTime?: string, bootstrap?: string[], json?: boolean }): Promise<void> {
  const dir = resolve(o.dir)
  const blockTime = o.blockTime === undefined ? undefined : Number(o.blockTime)
  if (blockTime !== undefined && (!Number.isInteger(blockTime) || blockTime < 1)) throw new UsageError('--block-time must be a whole number of seconds, at least 1')
  let port: number | undefined
  let relayPort: number | undefined
  try {
    port = o.port === undefined ? undefined : parsePort(o.port, '--port')
    relayPort = o.relayPort === undefined ? undefined : parsePort(o.relayPort, '--relay-port')
    for (const [flag, ip] of [['--host', o.host], ['--announce', o.announce]] as const) if (ip !== undefined && isIP(ip) === 0) throw new UsageError(`${flag} must be an IP address`)
  } catch (err) { throw new UsageError((err as Error).message) }
  if ((o.host === '0.0.0.0' || o.host === '::') && o.announce === undefined) throw new UsageError('--host 0.0.0.0 listens on every address: give the one other hosts reach this one at with --announce IP')
  const { devnetUp, devnetDown } = await import('../contracts/tools/index.ts')
  const { computeMeasurement } = await import('../enclave/index.ts')
  let network = await devnetUp({ dir, host: o.host, announce: o.announce, port, measurements: o.measurement ?? [await computeMeasurement()], blockTime, bootstrap: o.bootstrap })
  if (o.relay !== false) {
    const { startDevnetRelay } = await import('./tools/index.ts')
    try {
      network = await startDevnetRelay(dir, { host: o.host ?? '127.0.0.1', announce: o.announce, port: relayPort })
    } catch (err) {
      await devnetDown(dir)
      throw err
    }
  }
  if (o.json === true) {
    out(JSON.stringify({ ...network, networkFile: join(dir, 'network.json') }, null, 2))
    return
  }
  out(`devnet up: chain ${network.chainId} at ${network.rpcUrl}\n  CISC ${network.contracts.CISC}\n  BDBC ${network.contracts.BDBC}\n  DTMC ${network.contracts.DTMC}\n  attestation root ${network.attestationRoot}\n  accepted enclave ${network.measurements.join(', ')}\n  bootstrap ${network.bootstrap.length > 0 ? network.bootstrap.join(', ') : '(none: daemons need --bootstrap)'}\n  network file ${dir}/network.json`)
}

async function cmdDevnetDown (o: { dir: string, json?: boolean }): Promise<void> {
  const { devnetDown } = await import('../contracts/tools/index.ts')
  const { stopDevnetRelay } = await import('./tools/index.ts')
  await stopDevnetRelay(resolve(o.dir))
  const stopped = await devnetDown(resolve(o.dir))
  out(o.json === true ? JSON.stringify({ stopped }) : stopped ? 'devnet stopped' : 'no devnet running there')
}

async function cmdDevnetStatus (o: { dir: string, json?: boolean }): Promise<number> {
  const dir = resolve(o.dir)
  const { devnetStatus } = await import('../contracts/tools/index.ts')
  const { devnetRelayPid } = await import('./tools/index.ts')
  const s = { ...await devnetStatus(dir), relayPid: devnetRelayPid(dir) ?? null }
  if (o.json === true) out(JSON.stringify(s, null, 2))
  else if (s.running) out(`devnet running in ${dir} (pid ${s.pid})${s.network !== undefined ? `: chain ${s.chainId ?? s.network.chainId} at ${s.network.rpcUrl}${s.blockNumber !== undefined ? `, block ${s.blockNumber}` : ''}; network file ${dir}/network.json` : ''}; relay ${s.relayPid !== null ? `running (pid ${s.relayPid})${s.network !== undefined ? ` at ${s.network.bootstrap[0] ?? '?'}` : ''}` : 'not running'}`)
  else process.stderr.write(`sdte: no devnet running in ${dir} (start one with: sdte devnet up --dir ${dir})\n`)
  return s.running ? EXIT_OK : EXIT_FAILURE
}

async function cmdDeploy (o: { rpc: string, keystore: string, passwordFile: string, attestationRoot: string, measurement?: string[], out: string, name?: string, bootstrap?: string[] }): Promise<void> {
  const { deployFromKeystore } = await import('../contracts/tools/index.ts')
  const { computeMeasurement } = await import('../enclave/index.ts')
  let password: string
  try {
    password = readFileSync(resolve(o.passwordFile), 'utf8').replace(/\r?\n$/, '')
  } catch (err) {
    throw new ConfigError(`cannot read the password file ${o.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const network = await deployFromKeystore({
    rpcUrl: o.rpc,
    keystorePath: resolve(o.keystore),
    password,
    attestationRoot: o.attestationRoot,
    measurements: o.measurement ?? [await computeMeasurement()],
    out: resolve(o.out),
    name: o.name,
    bootstrap: o.bootstrap
  })
  out(`deployed on chain ${network.chainId}: DTMC ${network.contracts.DTMC}; network file ${resolve(o.out)}`)
}

async function cmdDemo (o: { keep: boolean, dir?: string, analysis?: string, plain: boolean, records: string, nodes: string }): Promise<void> {
  const records = Number(o.records)
  const nodes = Number(o.nodes)
  if (!Number.isInteger(records) || records < 1 || records > 6_000_000) throw new UsageError('--records must be 1..6000000 (a dataset is at most 128 MiB)')
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) throw new UsageError('--nodes must be 1..9')
  const { runDemo, parseAnalysis } = await import('./tools/index.ts')
  let analysis
  try { analysis = parseAnalysis(o.analysis) } catch (err) { throw new UsageError((err as Error).message) }
  let stopping = false
  await runDemo({
    keep: o.keep,
    dir: o.dir,
    analysis,
    build: o.plain ? 'Plain' : 'Fast',
    records,
    nodes,
    out,
    onTestnet: (net) => {
      process.once('SIGINT', () => {
        if (stopping) return
        stopping = true
        out('\ninterrupted: stopping the testnet')
        void net.stop().finally(() => process.exit(130))
      })
    }
  })
  // Daemons left running (--keep) are not ours to wait for.
  process.exit(EXIT_OK)
}

const DEBUG_HELP = 'print the stack trace of an unexpected error'

/** The command tree. `run` receives each action's exit code. */
function program (argv: string[], setExit: (code: number) => void): Command {
  const act = <A extends unknown[]>(fn: (...args: A) => Promise<number | void>) => async (...args: A): Promise<void> => {
    setExit((await fn(...args)) ?? EXIT_OK)
  }
  const root = new Command('sdte')
    .description('SDTE: the secure data trading daemon and its tools')
    // The commit is looked up only when asked for.
    .version(argv.some(a => a === '-V' || a === '--version') ? versionText() : VERSION, '-V, --version', 'print the version, commit and Node version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (text, write) => { write(`sdte: ${text.replace(/^error: /, '')}`) } })
    .addHelpText('after', `
Options also come from DIR/config.json and SDTE_* environment variables; flags win (sdte config show).
Exit codes: ${EXIT_OK} ok, ${EXIT_FAILURE} the command failed, ${EXIT_USAGE} the command line is wrong.`)

  withDaemonFlags(root.command('daemon').description('run the daemon (in the foreground)'))
    .option('--debug <patterns>', 'log these namespaces at debug level (sdte:*, sdte:p2p,-sdte:rpc); also prints stack traces')
    .action(act(cmdDaemon))

  withDaemonFlags(root.command('init').description('make the datadir, its config.json (from these flags) and keys; starts nothing'))
    .option('--debug', DEBUG_HELP)
    .action(act(cmdInit))

  root.command('id').description('the peer id and Ethereum address of the keys in the datadir (no password needed)')
    .option('--datadir <dir>', DATADIR_HELP)
    .option('--json', 'print JSON')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdId))

  const config = root.command('config').description('the daemon\'s configuration')
  withDaemonFlags(config.command('show').description('the effective options and where each came from (default, config.json, env, flag)'))
    .option('--json', 'print JSON: { path: { value, source } }')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdConfigShow))

  root.command('status').description('whether the daemon of the datadir runs; who it is (exit 1 when none runs)')
    .option('--datadir <dir>', DATADIR_HELP)
    .option('--json', 'print JSON')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdStatus))

  root.command('stop').description('stop the daemon of the datadir gracefully and wait for it to exit')
    .option('--datadir <dir>', DATADIR_HELP)
    .option('--debug', DEBUG_HELP)
    .action(act(cmdStop))

  root.command('dashboard').description('the URL of the daemon\'s dashboard in a browser on this machine (it carries the API token: keep it to yourself)')
    .option('--datadir <dir>', DATADIR_HELP)
    .option('--debug', DEBUG_HELP)
    .action(act(cmdDashboard))

  root.command('rpc').description('call the control API of the daemon (docs/api.md; rpc_discover lists every method)')
    .argument('<method>', 'method name, e.g. admin_info')
    .argument('[params]', 'params as JSON: an array or an object')
    .option('--datadir <dir>', DATADIR_HELP)
    .option('--json', 'on an error, print it as JSON ({"error":{code,message,data}}) on stdout')
    .option('--read-only', 'with the read-only token (DIR/api-token-readonly): read methods only')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdRpc))

  root.command('watch').description('follow a trade: each state change and delivery progress as it happens; exit 1 if it fails or is refunded')
    .argument('<trade-id>', '0x and 64 hex digits')
    .option('--datadir <dir>', DATADIR_HELP)
    .option('--interval <ms>', 'how often to look', String(WATCH_DEFAULT_INTERVAL_MS))
    .option('--json', 'one JSON object per line per event')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdWatch))

  root.command('demo').description('a whole trade on a local testnet it starts itself (npm start)')
    .option('--keep', 'leave the testnet running', false)
    .option('--dir <dir>', 'where the testnet lives (default: a temporary directory)')
    .option('--analysis <name>', 'Stats, Histogram, FilterCount or LinearFit')
    .option('--plain', 'the plain (unoptimised) build of the analysis', false)
    .option('--records <n>', 'records per seller', '2000')
    .option('--nodes <n>', 'trusted nodes', '3')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdDemo))

  const devnet = root.command('devnet').description('a local chain (anvil) with the contracts, for testing')
  devnet.command('up').description('start anvil, deploy the contracts, write DIR/network.json')
    .requiredOption('--dir <dir>', 'the devnet\'s directory')
    .option('--host <ip>', 'the address the chain and the relay listen on (default 127.0.0.1: this host only; 0.0.0.0: every address, with --announce)')
    .option('--announce <ip>', 'the address other hosts reach them at, written into network.json (default: --host)')
    .option('--port <n>', 'anvil\'s port (default: any free port)')
    .option('--relay-port <n>', 'the relay\'s libp2p TCP port (default: any free port)')
    .option('--no-relay', 'start no relay (network.json then lists only the --bootstrap peers)')
    .option('--measurement <0x..>', 'an accepted enclave measurement (repeatable; default: this build\'s)', collect)
    .option('--block-time <s>', 'mine a block every s seconds (default: on each transaction)')
    .option('--bootstrap <multiaddr>', 'a bootstrap peer to write into network.json (repeatable)', collect)
    .option('--json', 'print the network file as JSON')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdDevnetUp))
  devnet.command('down').description('stop the devnet of DIR')
    .requiredOption('--dir <dir>', 'the devnet\'s directory')
    .option('--json', 'print JSON')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdDevnetDown))
  devnet.command('status').description('whether the devnet of DIR runs, and its chain\'s head (exit 1 when it does not)')
    .requiredOption('--dir <dir>', 'the devnet\'s directory')
    .option('--json', 'print JSON')
    .option('--debug', DEBUG_HELP)
    .action(act(cmdDevnetStatus))

  root.command('deploy').description('deploy the contracts on a chain from a keystore; write a network file')
    .requiredOption('--rpc <url>', 'the chain\'s JSON-RPC URL')
    .requiredOption('--keystore <file>', 'the deployer\'s encrypted JSON keystore')
    .requiredOption('--password-file <file>', 'file holding the keystore\'s password')
    .requiredOption('--attestation-root <address>', 'the attestation service\'s signing address')
    .option('--measurement <0x..>', 'an accepted enclave measurement (repeatable; default: this build\'s)', collect)
    .requiredOption('--out <file>', 'where to write the network file')
    .option('--name <name>', 'the network\'s name')
    .option('--bootstrap <multiaddr>', 'a bootstrap peer to write into the network file (repeatable)', collect)
    .option('--debug', DEBUG_HELP)
    .action(act(cmdDeploy))

  root.command('version').description('print the version, commit and Node version')
    .action(act(async () => { out(versionText()) }))

  return root
}

export async function main (argv: string[]): Promise<number> {
  let code = EXIT_OK
  let debug = false
  let command = ''
  const cli = program(argv, c => { code = c })
  cli.hook('preAction', (_root, action) => {
    const d = action.opts().debug as unknown
    debug = d !== undefined && d !== false
    for (let c: Command | null = action; c !== null && c.parent !== null; c = c.parent) command = `${c.name()} ${command}`
  })
  try {
    await cli.parseAsync(argv.length === 0 ? ['--help'] : argv, { from: 'user' })
    return code
  } catch (err) {
    const e = err as Error & { code?: unknown }
    // commander has printed its message (with "did you mean" where it has a guess) or the help.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE
    if (debug && e.stack !== undefined) {
      process.stderr.write(`sdte: ${e.stack}\n`)
    } else if (e instanceof UsageError) {
      process.stderr.write(`sdte: ${e.message} (see sdte ${command}--help)\n`)
    } else if (e instanceof RpcError) {
      process.stderr.write(`sdte: error ${e.code}${e.data?.name !== undefined ? ` (${e.data.name})` : ''}: ${e.message}\n`)
    } else if (e instanceof SdteError || typeof e.code === 'string') {
      // The errors a user can meet (a bad config, network file or datadir, a daemon not running, a
      // system error on a file they named) say what to do in their message.
      process.stderr.write(`sdte: ${e.message}\n`)
    } else {
      process.stderr.write(`sdte: unexpected ${e.name ?? 'error'}: ${e.message ?? String(e)} (run again with --debug for the stack trace)\n`)
    }
    return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const code = await main(process.argv.slice(2))
  if (code !== 0) process.exitCode = code
}
