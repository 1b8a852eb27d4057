// Starts sdte daemons as separate OS processes (for the demo, the end-to-end tests and the
// benchmarks), and stops them for sure.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { APP_ERRORS, RpcClient, RpcError } from '../index.ts'
import { DAEMON_NODE_OPTIONS, DAEMON_PROCESS_ENV } from '../../config/index.ts'

export const ROOT = new URL('../..', import.meta.url).pathname
export const CLI = join(ROOT, 'daemon', 'cli.ts')
/** Where a daemon started here writes its output, in its datadir. */
export const LOG_FILE = 'daemon.log'

export interface DaemonProcess {
  datadir: string
  child: ChildProcess
  rpc: RpcClient
  /** Everything the process wrote to stdout and stderr so far (from DIR/daemon.log). */
  output: () => string
  exited: Promise<number | null>
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

export interface StartOptions {
  args?: string[]
  env?: Record<string, string>
  /** In its own process group, so it can outlive its parent. Default false. */
  detached?: boolean
  /** Written to DIR/config.json before start (only if given). */
  config?: Record<string, unknown>
  timeoutMs?: number
  /** A command prefix the daemon runs under, e.g. ['ip', 'netns', 'exec', NS] (which execs it: same pid). */
  wrap?: string[]
}

export async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      lastErr = err
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out waiting for ${what}${lastErr !== undefined ? `: ${(lastErr as Error).message}` : ''}`)
}

/** Preloaded by every daemon the tools start, as bin/sdte does: strips (and keeps) the types of our .ts files. */
export const STRIP_TYPES = join(ROOT, 'bin', 'strip-types.js')

/**
 * The environment a daemon process starts with, as bin/sdte makes it: `env` with the daemon's process settings
 * (config/daemon-defaults.ts DAEMON_PROCESS_ENV, DAEMON_NODE_OPTIONS) and bin/strip-types.js preloaded, where
 * `env` does not set them already.
 */
export function daemonEnv (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...DAEMON_PROCESS_ENV, ...env }
  let options = env.NODE_OPTIONS ?? ''
  if (!options.includes(STRIP_TYPES)) options = `--import="${STRIP_TYPES}"${options !== '' ? ` ${options}` : ''}`
  for (const flag of [...DAEMON_NODE_OPTIONS].reverse()) {
    if (!` ${options} `.includes(` ${flag.split('=')[0]}`)) options = `${flag} ${options}`
  }
  out.NODE_OPTIONS = options
  return out
}

/** Runs the CLI to completion (e.g. `sdte rpc ...`), returning its exit code and output. */
export async function runCli (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
}

export async function startDaemon (datadir: string, opts: StartOptions = {}): Promise<DaemonProcess> {
  mkdirSync(datadir, { recursive: true, mode: 0o700 })
  if (opts.config !== undefined) writeFileSync(join(datadir, 'config.json'), JSON.stringify(opts.config))
  // Output goes to DIR/daemon.log, not a pipe: a daemon outlives a parent that exits (sdte demo --keep).
  const logPath = join(datadir, LOG_FILE)
  const fd = openSync(logPath, 'a', 0o600)
  const command = [...(opts.wrap ?? []), process.execPath, CLI, 'daemon', '--datadir', datadir, ...(opts.args ?? [])]
  const child = spawn(command[0], command.slice(1), {
    cwd: ROOT,
    env: daemonEnv({ ...process.env, ...opts.env }),
    stdio: ['ignore', fd, fd],
    detached: opts.detached ?? false
  })
  closeSync(fd)
  const start = statSync(logPath).size
  const readOutput = (): string => {
    try { return readFileSync(logPath).subarray(start).toString() } catch { return '' }
  }
  let out = ''
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  let exitCode: number | null | undefined
  void exited.then(c => { exitCode = c })
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (exitCode !== undefined) return exitCode
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const code = await exited
    clearTimeout(timer)
    return code
  }
  try {
    await waitFor(`daemon in ${datadir} to start`, () => {
      out = readOutput()
      if (exitCode !== undefined) throw new Error(`daemon exited with ${exitCode}:\n${out}`)
      return out.includes('control API:') && existsSync(join(datadir, 'api'))
    }, opts.timeoutMs ?? 30_000)
  } catch (err) {
    await stop('SIGKILL')
    throw err
  }
  return { datadir, child, rpc: RpcClient.fromDatadir(datadir), output: readOutput, exited, stop }
}

/** How often waitNodeBooted asks a starting node's node_enclave (ms). */
export const NODE_BOOT_POLL_MS = 20

/**
 * Waits, up to `timeoutMs`, until a node daemon's enclave booted and it registered in CISC (node_enclave answers
 * instead of Unavailable): a node answers admin_info before that, and offers nothing until then. A node whose boot
 * failed exits with its error: this throws it with the daemon's output. On a timeout the daemon is killed.
 */
export async function waitNodeBooted (p: DaemonProcess, timeoutMs: number): Promise<void> {
  let exitCode: number | null | undefined
  void p.exited.then(c => { exitCode = c })
  const until = Date.now() + timeoutMs
  for (;;) {
    try {
      await p.rpc.call('node_enclave')
      return
    } catch (err) {
      if (exitCode !== undefined) throw new Error(`the node in ${p.datadir} exited with ${exitCode} before it booted:\n${p.output()}`)
      if (!(err instanceof RpcError && err.code === APP_ERRORS.Unavailable)) throw err
      if (Date.now() > until) {
        await p.stop('SIGKILL')
        throw new Error(`the node in ${p.datadir} did not boot its enclave and register within ${timeoutMs} ms (see its output)`)
      }
    }
    await new Promise(resolve => setTimeout(resolve, NODE_BOOT_POLL_MS))
  }
}
