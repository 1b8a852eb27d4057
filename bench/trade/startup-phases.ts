// Where a daemon's start-up goes (issue 13, start to admin_info): each role's daemon restarted on one datadir,
// its `start phase` debug lines (daemon/daemon.ts: ms since the process began at the end of each phase) read
// from its stderr, with the spawn-to-admin_info time the probe sees (as bench/trade/daemon.ts measures it).
// A node boots its enclave and registers after admin_info (Role.boot): its daemon is stopped only once its
// `roles booted` phase is logged, which the figures include.
//
//   node bench/trade/startup-phases.ts [--runs R] [--roles relay,buyer,seller,node]
//
// Prints one JSON object on stdout: per role, the median of each phase's end and of the probe's time (ms).
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { CLI, ROOT, daemonEnv } from '../../daemon/tools/child-daemons.ts'
import { RpcClient, API_FILE } from '../../daemon/rpc/client.ts'
import { STARTUP_POLL_MS, STARTUP_TIMEOUT_MS, median } from './daemon.ts'
import type { RoleName } from '../../config/index.ts'

const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '5' }, roles: { type: 'string', default: 'relay,buyer,seller,node' } } })
const RUNS = Number(flags.runs)
const ROLES = flags.roles.split(',') as RoleName[]
const say = (msg: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

/** The daemon's phase logged once its roles' boots (a node's enclave and CISC registration) ended well. */
const BOOTED_PHASE = 'roles booted'

interface Run { phases: Record<string, number>, answeredMs: number }

/** One start: spawn, poll admin_info until it answers, read the phases, stop. */
async function startOnce (datadir: string, role: RoleName, networkPath: string, bootstrap: string): Promise<Run> {
  rmSync(join(datadir, API_FILE), { force: true })
  const t0 = performance.now()
  const child = spawn(process.execPath, [CLI, 'daemon', '--datadir', datadir, '--role', role, '--network', networkPath, '--bootstrap', bootstrap, '--log-format', 'json'], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: daemonEnv({ ...process.env, SDTE_LOG: 'warn', SDTE_DEBUG: 'sdte:daemon' })
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  let exited = false
  const exit = once(child, 'exit').then(() => { exited = true })
  let answeredMs = NaN
  try {
    for (;;) {
      if (exited) throw new Error(`the ${role} daemon exited before its control API answered:\n${stderr}`)
      if (performance.now() - t0 > STARTUP_TIMEOUT_MS) throw new Error(`the ${role} daemon did not answer in ${STARTUP_TIMEOUT_MS} ms`)
      if (existsSync(join(datadir, API_FILE))) {
        try {
          await RpcClient.fromDatadir(datadir, { timeoutMs: 2000 }).call('admin_info')
          answeredMs = performance.now() - t0
          break
        } catch {}
      }
      await new Promise(resolve => setTimeout(resolve, STARTUP_POLL_MS))
    }
    // A node's boot follows admin_info: wait for its end (bounded), so that it is measured and not cut short.
    while (role === 'node' && !stderr.includes(`"phase":"${BOOTED_PHASE}"`)) {
      if (exited) throw new Error(`the ${role} daemon exited before its roles booted:\n${stderr}`)
      if (performance.now() - t0 > STARTUP_TIMEOUT_MS) throw new Error(`the ${role} daemon did not boot in ${STARTUP_TIMEOUT_MS} ms`)
      await new Promise(resolve => setTimeout(resolve, STARTUP_POLL_MS))
    }
    const phases: Record<string, number> = {}
    for (const line of stderr.split('\n')) {
      if (!line.includes('start phase')) continue
      try {
        const l = JSON.parse(line) as { phase?: string, ms?: number }
        if (l.phase !== undefined && l.ms !== undefined) phases[l.phase] = l.ms
      } catch {}
    }
    return { phases, answeredMs }
  } finally {
    if (!exited) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exit
      clearTimeout(timer)
    }
  }
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-bench-phases-'))
  const out: Record<string, unknown> = { load: loadavg()[0], runs: RUNS }
  say(`starting a devnet and a relay in ${dir}`)
  const net = await LocalTestnet.start({ dir, buyers: 0, sellers: 0, nodes: 0 })
  try {
    const bootstrap = net.relay.info.addresses[0]
    for (const role of ROLES) {
      const datadir = join(dir, `phases-${role}`)
      mkdirSync(datadir, { recursive: true, mode: 0o700 })
      writeFileSync(join(datadir, 'config.json'), JSON.stringify({ keys: { scryptN: 1024 } }))
      await startOnce(datadir, role, net.networkPath, bootstrap) // the first start: keys, CISC registration
      const runs: Run[] = []
      for (let i = 0; i < RUNS; i++) runs.push(await startOnce(datadir, role, net.networkPath, bootstrap))
      const figures: Record<string, number> = {}
      for (const name of Object.keys(runs[0].phases)) figures[name] = Math.round(median(runs.map(r => r.phases[name])))
      figures['admin_info answered (probe)'] = Math.round(median(runs.map(r => r.answeredMs)))
      out[role] = figures
      say(`  ${role}: ${JSON.stringify(figures)}`)
    }
  } finally {
    await net.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  out.loadAfter = loadavg()[0]
  process.stdout.write(JSON.stringify(out, null, 1) + '\n')
}

await main()
