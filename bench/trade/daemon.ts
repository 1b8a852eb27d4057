// The daemon's footprint: resident memory of a process from /proc/<pid>/status, and the start-up
// time of one idle daemon (spawn to its control API answering admin_info) against the start-up of
// the same Node binary doing nothing (`node -e 0`) and loading the daemon's modules only.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import { CLI, ROOT, daemonEnv } from '../../daemon/tools/child-daemons.ts'
import { RpcClient, API_FILE } from '../../daemon/rpc/client.ts'
import type { RoleName } from '../../config/index.ts'

/** How often the start-up probe asks the control API (ms): the resolution of the figure. */
export const STARTUP_POLL_MS = 5
/** Give up on a daemon that has not answered after this long. */
export const STARTUP_TIMEOUT_MS = 60_000

export interface Memory {
  /** Resident set now, KiB. */
  rssKiB: number
  /** Peak resident set since the process started (VmHWM), KiB. */
  peakKiB: number
}

/** VmRSS and VmHWM of a live process (Linux). */
export function memoryOf (pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)
    if (m === null) throw new Error(`/proc/${pid}/status has no ${name}`)
    return Number(m[1])
  }
  return { rssKiB: field('VmRSS'), peakKiB: field('VmHWM') }
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Wall time of a process from spawn to exit, ms. */
async function timeProcess (args: string[]): Promise<number> {
  const t0 = performance.now()
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'ignore' })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`${args.join(' ')} exited with ${code}`)
  return performance.now() - t0
}

export interface StartupOptions {
  /** Where the daemon's datadir goes (created). */
  dir: string
  role: RoleName
  /** network.json of the testnet, and the relay to bootstrap from. */
  networkPath: string
  bootstrap: string
  runs: number
}

export interface StartupFigures {
  role: string
  /** The very first start: creates the keys (scrypt N=1024) and, for a seller or node, registers in CISC. */
  firstMs: number
  /** Restarts of the same datadir, each from spawn to admin_info answering. */
  restartsMs: number[]
  /** Resident memory of the idle daemon once it answered (last restart). */
  idle: Memory
}

/** Spawns the daemon, polls admin_info every STARTUP_POLL_MS, returns the time and the live process. */
async function startAndTime (o: StartupOptions, datadir: string): Promise<{ ms: number, stop: () => Promise<void>, pid: number }> {
  rmSync(join(datadir, API_FILE), { force: true })
  const t0 = performance.now()
  const child = spawn(process.execPath, [CLI, 'daemon', '--datadir', datadir, '--role', o.role, '--network', o.networkPath, '--bootstrap', o.bootstrap], {
    cwd: ROOT, stdio: 'ignore', env: daemonEnv({ ...process.env, SDTE_LOG: 'warn' })
  })
  let exited = false
  const exit = once(child, 'exit').then(() => { exited = true })
  const stop = async (): Promise<void> => {
    if (exited) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exit
    clearTimeout(timer)
  }
  try {
    for (;;) {
      if (exited) throw new Error(`the ${o.role} daemon in ${datadir} exited before its control API answered`)
      if (performance.now() - t0 > STARTUP_TIMEOUT_MS) throw new Error(`the ${o.role} daemon in ${datadir} did not answer in ${STARTUP_TIMEOUT_MS} ms`)
      if (existsSync(join(datadir, API_FILE))) {
        try {
          await RpcClient.fromDatadir(datadir, { timeoutMs: 2000 }).call('admin_info')
          return { ms: performance.now() - t0, stop, pid: child.pid! }
        } catch {}
      }
      await new Promise(resolve => setTimeout(resolve, STARTUP_POLL_MS))
    }
  } catch (err) {
    await stop()
    throw err
  }
}

export async function measureStartup (o: StartupOptions): Promise<StartupFigures> {
  const datadir = join(o.dir, `startup-${o.role}`)
  mkdirSync(datadir, { recursive: true, mode: 0o700 })
  writeFileSync(join(datadir, 'config.json'), JSON.stringify({ keys: { scryptN: 1024 } }))
  const first = await startAndTime(o, datadir)
  await first.stop()
  const restartsMs: number[] = []
  let idle: Memory = { rssKiB: NaN, peakKiB: NaN }
  for (let i = 0; i < o.runs; i++) {
    const run = await startAndTime(o, datadir)
    restartsMs.push(run.ms)
    if (i === o.runs - 1) idle = memoryOf(run.pid)
    await run.stop()
  }
  return { role: o.role, firstMs: first.ms, restartsMs, idle }
}

/** `node -e 0`, and Node importing daemon/daemon.ts (every module a daemon loads, nothing started), each `runs` times. */
export async function baselineStartup (runs: number): Promise<{ nodeMs: number[], moduleLoadMs: number[] }> {
  const nodeMs: number[] = []
  const moduleLoadMs: number[] = []
  const daemonModule = join(ROOT, 'daemon', 'daemon.ts')
  for (let i = 0; i < runs; i++) {
    nodeMs.push(await timeProcess(['-e', '0']))
    moduleLoadMs.push(await timeProcess(['--input-type=module', '-e', `await import(${JSON.stringify(daemonModule)})`]))
  }
  return { nodeMs, moduleLoadMs }
}
