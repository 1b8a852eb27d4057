// The sdte command line. It only maps flags onto the options tree and calls into the daemon, the
// control API client, or the devnet tools.
import { SdteError } from '../config/index.ts'
import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import { configureLogging, isLogLevel } from './log.ts'
import { ConfigError, parseP2PMode, parsePort, parseRoles, resolveOptions, type PartialOptions } from '../config/index.ts'
import { RpcClient, DaemonNotRunningError } from './rpc/client.ts'
import { RpcError } from './rpc/errors.ts'
import { VERSION } from './version.ts'
import { TERMINAL_STATES, type TradeRole } from './trades.ts'

const USAGE = `sdte ${VERSION}: secure data trading daemon

Usage:
  sdte daemon --datadir DIR [--role buyer|seller|node|relay]... [--listen MULTIADDR]...
              [--announce MULTIADDR]... [--p2p-mode auto|local|public] [--bootstrap MULTIADDR]... [--rpc-port N] [--network FILE] [--password-file FILE]
              [--log-level error|warn|info|debug|trace] [--debug PATTERNS]
  sdte rpc [--datadir DIR] METHOD [JSON-PARAMS]   call the control API of the daemon in DIR
  sdte watch [--datadir DIR] TRADE-ID             follow a trade (states, delivery progress) to each role's end
  sdte demo [--keep] [--dir DIR] [--analysis Stats|Histogram|FilterCount|LinearFit] [--plain]
            [--records N] [--nodes N]    a whole trade on a local testnet it starts itself (npm start)
  sdte devnet up --dir DIR [--port N] [--measurement 0x..]... [--block-time S] [--bootstrap MULTIADDR]...
                                         start anvil, deploy, write DIR/network.json
  sdte devnet down --dir DIR | status --dir DIR
  sdte deploy --rpc URL --keystore FILE --password-file FILE --attestation-root ADDRESS
              [--measurement 0x..]... --out network.json [--name NAME] [--bootstrap MULTIADDR]...
  sdte help | version

Options may also come from DIR/config.json and SDTE_* environment variables (flags win).
The datadir defaults to $SDTE_DATADIR or ./.sdte.`

export class UsageError extends SdteError {
  override name = 'UsageError'
  override code = 'ERR_USAGE'
}

function datadirOf (value: string | undefined): string {
  return resolve(value ?? process.env.SDTE_DATADIR ?? '.sdte')
}

async function cmdDaemon (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      datadir: { type: 'string' },
      role: { type: 'string', multiple: true },
      listen: { type: 'string', multiple: true },
      bootstrap: { type: 'string', multiple: true },
      announce: { type: 'string', multiple: true },
      'p2p-mode': { type: 'string' },
      'rpc-port': { type: 'string' },
      network: { type: 'string' },
      'password-file': { type: 'string' },
      'log-level': { type: 'string' },
      debug: { type: 'string' }
    },
    strict: true,
    allowPositionals: false
  })
  const flags: PartialOptions = {}
  if (values.role !== undefined) flags.roles = parseRoles(values.role, '--role')
  if (values.network !== undefined) flags.network = resolve(values.network)
  if (values.listen !== undefined || values.bootstrap !== undefined || values.announce !== undefined || values['p2p-mode'] !== undefined) {
    flags.p2p = {
      ...(values.listen !== undefined && { listen: values.listen }),
      ...(values.bootstrap !== undefined && { bootstrap: values.bootstrap }),
      ...(values.announce !== undefined && { announce: values.announce }),
      ...(values['p2p-mode'] !== undefined && { mode: parseP2PMode(values['p2p-mode'], '--p2p-mode') })
    }
  }
  if (values['rpc-port'] !== undefined) flags.rpc = { port: parsePort(values['rpc-port'], '--rpc-port') }
  if (values['password-file'] !== undefined) flags.keys = { passwordFile: resolve(values['password-file']) }
  if (values['log-level'] !== undefined) {
    if (!isLogLevel(values['log-level'])) throw new UsageError('--log-level must be one of error, warn, info, debug, trace')
    flags.log = { level: values['log-level'] }
  }
  if (values.debug !== undefined) flags.log = { ...flags.log, debug: values.debug }

  const options = resolveOptions(datadirOf(values.datadir), flags)
  configureLogging({ level: options.log.level, debug: options.log.debug })
  const { SdteDaemon } = await import('./daemon.ts')
  const { onShutdownSignals } = await import('./shutdown.ts')
  const daemon = new SdteDaemon(options)
  onShutdownSignals(async () => await daemon.stop(), options.shutdownTimeoutMs)
  await daemon.start()
  process.stdout.write(`sdte daemon ${VERSION} started\n  peer id:     ${daemon.keys.peerId}\n  eth address: ${daemon.keys.ethAddress}\n  roles:       ${options.roles.join(', ')}\n  listening:   ${daemon.p2p.addresses().join('\n               ')}\n  control API: ${daemon.rpc.address} (token in ${options.datadir}/api-token)\n`)
  await daemon.stopped
  process.stdout.write('sdte daemon stopped\n')
  // Whatever a library left open must not keep a stopped daemon alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref()
}

async function cmdRpc (argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { datadir: { type: 'string' } },
    strict: true,
    allowPositionals: true
  })
  const [method, paramsText, ...rest] = positionals
  if (method === undefined || rest.length > 0) throw new UsageError('usage: sdte rpc [--datadir DIR] METHOD [JSON-PARAMS]')
  let params: unknown[] | Record<string, unknown> | undefined
  if (paramsText !== undefined) {
    try {
      params = JSON.parse(paramsText)
    } catch (err) {
      throw new UsageError(`params must be JSON (an array or an object): ${(err as Error).message}`)
    }
    if (params === null || typeof params !== 'object') throw new UsageError('params must be a JSON array or object')
  }
  const client = RpcClient.fromDatadir(datadirOf(values.datadir))
  const result = await client.call(method, params)
  process.stdout.write(JSON.stringify(result, null, 2) + '\n')
}

/**
 * Whether a record has reached its role's end (daemon/trades.ts TERMINAL_STATES): `finalized` ends a
 * seller's part, but a buyer goes on to fetch the result (`delivered`).
 */
function atItsEnd (r: WatchedRecord): boolean {
  return (TERMINAL_STATES[r.role as TradeRole] as readonly string[] | undefined)?.includes(r.state) ?? false
}

interface WatchedRecord {
  role: string
  state: string
  reason?: string
  timeline: Array<{ state: string, at: string, note?: string }>
  size?: number
  nodes?: Array<{ index: number, delivered: boolean, sentBytes: number }>
}

async function cmdWatch (argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { datadir: { type: 'string' }, interval: { type: 'string', default: '500' } },
    strict: true,
    allowPositionals: true
  })
  const [tradeId, ...rest] = positionals
  if (tradeId === undefined || rest.length > 0 || !/^0x[0-9a-fA-F]{64}$/.test(tradeId)) throw new UsageError('usage: sdte watch [--datadir DIR] TRADE-ID (0x + 64 hex digits)')
  const interval = Number(values.interval)
  if (!Number.isInteger(interval) || interval < 100) throw new UsageError('--interval must be at least 100 (ms)')
  const client = RpcClient.fromDatadir(datadirOf(values.datadir))
  const seen = new Set<string>()
  const progress = new Map<string, number>()
  while (true) {
    const v = await client.call<{ records: WatchedRecord[] }>('trade_get', { tradeId })
    for (const r of v.records) {
      for (const e of r.timeline) {
        const key = `${r.role}:${e.state}:${e.at}`
        if (seen.has(key)) continue
        seen.add(key)
        process.stdout.write(`${e.at} ${r.role} ${e.state}${e.note !== undefined ? `: ${e.note}` : ''}\n`)
      }
      for (const n of r.nodes ?? []) {
        const key = `${r.role}:${n.index}`
        if (progress.get(key) === n.sentBytes) continue
        progress.set(key, n.sentBytes)
        const of = r.size === undefined ? '' : ` of ${r.size}`
        process.stdout.write(`${new Date().toISOString()} ${r.role} data to node ${n.index}: ${n.sentBytes}${of} bytes${n.delivered ? ' (delivered)' : ''}\n`)
      }
    }
    if (v.records.length > 0 && v.records.every(atItsEnd)) {
      for (const r of v.records) process.stdout.write(`${r.role}: ${r.state}${r.reason !== undefined ? ` (${r.reason})` : ''}\n`)
      return
    }
    await new Promise(resolve => setTimeout(resolve, interval))
  }
}

async function cmdDevnet (argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string' },
      port: { type: 'string' },
      measurement: { type: 'string', multiple: true },
      'block-time': { type: 'string' },
      bootstrap: { type: 'string', multiple: true }
    },
    strict: true,
    allowPositionals: true
  })
  const [action, ...rest] = positionals
  if (!['up', 'down', 'status'].includes(action) || rest.length > 0) throw new UsageError('usage: sdte devnet up|down|status --dir DIR')
  if (values.dir === undefined) throw new UsageError('--dir DIR is required')
  const dir = resolve(values.dir)
  const { devnetUp, devnetDown, devnetStatus } = await import('../contracts/tools/index.ts')
  if (action === 'up') {
    const { computeMeasurement } = await import('../enclave/index.ts')
    const blockTime = values['block-time'] === undefined ? undefined : Number(values['block-time'])
    if (blockTime !== undefined && (!Number.isInteger(blockTime) || blockTime < 1)) throw new UsageError('--block-time must be a whole number of seconds, at least 1')
    const network = await devnetUp({
      dir,
      port: values.port === undefined ? undefined : parsePort(values.port, '--port'),
      measurements: values.measurement ?? [computeMeasurement()],
      blockTime,
      bootstrap: values.bootstrap
    })
    process.stdout.write(`devnet up: chain ${network.chainId} at ${network.rpcUrl}\n  CISC ${network.contracts.CISC}\n  BDBC ${network.contracts.BDBC}\n  DTMC ${network.contracts.DTMC}\n  attestation root ${network.attestationRoot}\n  accepted enclave ${network.measurements.join(', ')}\n  network file ${dir}/network.json\n`)
  } else if (action === 'down') {
    process.stdout.write(await devnetDown(dir) ? 'devnet stopped\n' : 'no devnet running there\n')
  } else {
    process.stdout.write(JSON.stringify(await devnetStatus(dir), null, 2) + '\n')
  }
}

async function cmdDeploy (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rpc: { type: 'string' },
      keystore: { type: 'string' },
      'password-file': { type: 'string' },
      'attestation-root': { type: 'string' },
      measurement: { type: 'string', multiple: true },
      out: { type: 'string' },
      name: { type: 'string' },
      bootstrap: { type: 'string', multiple: true }
    },
    strict: true
  })
  for (const k of ['rpc', 'keystore', 'password-file', 'attestation-root', 'out'] as const) {
    if (values[k] === undefined) throw new UsageError(`--${k} is required`)
  }
  const { readFileSync } = await import('node:fs')
  const { deployFromKeystore } = await import('../contracts/tools/index.ts')
  const { computeMeasurement } = await import('../enclave/index.ts')
  const network = await deployFromKeystore({
    rpcUrl: values.rpc!,
    keystorePath: resolve(values.keystore!),
    password: readFileSync(resolve(values['password-file']!), 'utf8').replace(/\r?\n$/, ''),
    attestationRoot: values['attestation-root']!,
    measurements: values.measurement ?? [computeMeasurement()],
    out: resolve(values.out!),
    name: values.name,
    bootstrap: values.bootstrap
  })
  process.stdout.write(`deployed on chain ${network.chainId}: DTMC ${network.contracts.DTMC}; network file ${resolve(values.out!)}\n`)
}

async function cmdDemo (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      keep: { type: 'boolean', default: false },
      dir: { type: 'string' },
      analysis: { type: 'string' },
      plain: { type: 'boolean', default: false },
      records: { type: 'string', default: '2000' },
      nodes: { type: 'string', default: '3' }
    },
    strict: true
  })
  const { runDemo, parseAnalysis } = await import('./tools/index.ts')
  const records = Number(values.records)
  const nodes = Number(values.nodes)
  if (!Number.isInteger(records) || records < 1 || records > 6_000_000) throw new UsageError('--records must be 1..6000000 (a dataset is at most 128 MiB)')
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) throw new UsageError('--nodes must be 1..9')
  let analysis
  try { analysis = parseAnalysis(values.analysis) } catch (err) { throw new UsageError((err as Error).message) }
  let stopping = false
  await runDemo({
    keep: values.keep,
    dir: values.dir,
    analysis,
    build: values.plain ? 'Plain' : 'Fast',
    records,
    nodes,
    out: (line) => { process.stdout.write(line + '\n') },
    onTestnet: (net) => {
      process.once('SIGINT', () => {
        if (stopping) return
        stopping = true
        process.stdout.write('\ninterrupted: stopping the testnet\n')
        void net.stop().finally(() => process.exit(130))
      })
    }
  })
  // Daemons left running (--keep) are not ours to wait for.
  process.exit(0)
}

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'daemon': await cmdDaemon(rest); return 0
      case 'rpc': await cmdRpc(rest); return 0
      case 'watch': await cmdWatch(rest); return 0
      case 'devnet': await cmdDevnet(rest); return 0
      case 'demo': await cmdDemo(rest); return 0
      case 'deploy': await cmdDeploy(rest); return 0
      case 'version': case '--version': process.stdout.write(VERSION + '\n'); return 0
      case undefined: case 'help': case '--help': case '-h': process.stdout.write(USAGE + '\n'); return 0
      default: throw new UsageError(`unknown command "${command}"`)
    }
  } catch (err) {
    const e = err as Error & { code?: unknown }
    if (e instanceof UsageError || e.name === 'TypeError' && typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`sdte: ${e.message}\n\n${USAGE}\n`)
      return 2
    }
    if (e instanceof RpcError) {
      process.stderr.write(`sdte: error ${e.code}${e.data?.name !== undefined ? ` (${e.data.name})` : ''}: ${e.message}\n`)
      return 1
    }
    if (e instanceof ConfigError || e instanceof DaemonNotRunningError || typeof e.code === 'string') {
      process.stderr.write(`sdte: ${e.message}\n`)
      return 1
    }
    process.stderr.write(`sdte: ${e.stack ?? e.message}\n`)
    return 1
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const code = await main(process.argv.slice(2))
  if (code !== 0) process.exitCode = code
}
