// The sdte command line. It only maps flags onto the options tree and calls into the daemon, the
// control API client, or the devnet tools.
import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import { configureLogging, isLogLevel } from './log.ts'
import { ConfigError, parsePort, parseRoles, resolveOptions, type PartialOptions } from '../config/options.ts'
import { RpcClient, DaemonNotRunningError } from './rpc/client.ts'
import { RpcError } from './rpc/errors.ts'
import { VERSION } from './version.ts'

const USAGE = `sdte ${VERSION}: secure data trading daemon

Usage:
  sdte daemon --datadir DIR [--role buyer|seller|node|relay]... [--listen MULTIADDR]...
              [--bootstrap MULTIADDR]... [--rpc-port N] [--network FILE] [--password-file FILE]
              [--log-level error|warn|info|debug|trace] [--debug PATTERNS]
  sdte rpc [--datadir DIR] METHOD [JSON-PARAMS]   call the control API of the daemon in DIR
  sdte help | version

Options may also come from DIR/config.json and SDTE_* environment variables (flags win).
The datadir defaults to $SDTE_DATADIR or ./.sdte.`

export class UsageError extends Error {
  override name = 'UsageError'
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
  if (values.listen !== undefined || values.bootstrap !== undefined) {
    flags.p2p = {
      ...(values.listen !== undefined && { listen: values.listen }),
      ...(values.bootstrap !== undefined && { bootstrap: values.bootstrap })
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
  const { SdteDaemon } = await import('./node.ts')
  const { onShutdownSignals } = await import('./process.ts')
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

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'daemon': await cmdDaemon(rest); return 0
      case 'rpc': await cmdRpc(rest); return 0
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
