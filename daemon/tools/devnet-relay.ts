// The relay `sdte devnet up` starts beside the chain, so that a devnet is a network other hosts can
// join with nothing but its network file: the relay listens on the address the operator chose, and
// its multiaddr goes into network.json's `bootstrap` (a daemon started with `--network` dials it).
//
//   DIR/relay/          its datadir (keys, store, daemon.log)
//   DIR/relay.pid       its process, stopped by `sdte devnet down`
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readNetworkFile, writeNetworkFile, type NetworkFile } from '../../contracts/index.ts'
import { freePort } from '../../contracts/tools/index.ts'
import { startDaemon } from './child-daemons.ts'

/** How long the relay may take to start (keys, store, chain funding, p2p host). */
export const DEVNET_RELAY_START_TIMEOUT_MS = 60_000

const pidFile = (dir: string): string => join(dir, 'relay.pid')

export interface DevnetRelayOptions {
  /** The address it listens on (an IP; 0.0.0.0 for every address, then `announce` is needed). */
  host: string
  /** The address other hosts reach it at; default `host`. */
  announce?: string
  /** Its libp2p TCP port; absent or 0: a free one. */
  port?: number
}

/**
 * Starts the relay of the devnet in DIR (detached: it outlives the command) on the devnet's network file,
 * and writes its multiaddr first in the file's `bootstrap`. Returns the network file as written.
 */
export async function startDevnetRelay (dir: string, o: DevnetRelayOptions): Promise<NetworkFile> {
  const networkPath = join(dir, 'network.json')
  const port = o.port !== undefined && o.port !== 0 ? o.port : await freePort(o.host)
  const announce = o.announce ?? o.host
  const ip = (a: string): string => a.includes(':') ? 'ip6' : 'ip4'
  const p = await startDaemon(join(dir, 'relay'), {
    args: [
      '--role', 'relay', '--network', networkPath,
      '--listen', `/${ip(o.host)}/${o.host}/tcp/${port}`,
      ...(announce !== o.host ? ['--announce', `/${ip(announce)}/${announce}/tcp/${port}`] : [])
    ],
    // A devnet's relay key guards nothing of value: a cheap keystore, as the testnets use.
    config: { keys: { scryptN: 1024 } },
    detached: true,
    timeoutMs: DEVNET_RELAY_START_TIMEOUT_MS
  })
  p.child.unref()
  writeFileSync(pidFile(dir), `${p.child.pid}\n`)
  try {
    const info = await p.rpc.call<{ peerId: string }>('admin_info')
    const multiaddr = `/${ip(announce)}/${announce}/tcp/${port}/p2p/${info.peerId}`
    const network = readNetworkFile(networkPath)
    const updated = { ...network, bootstrap: [multiaddr, ...network.bootstrap.filter(b => b !== multiaddr)] }
    writeNetworkFile(networkPath, updated)
    return updated
  } catch (err) {
    await stopDevnetRelay(dir)
    throw err
  }
}

/** The relay's pid when it runs. */
export function devnetRelayPid (dir: string): number | undefined {
  if (!existsSync(pidFile(dir))) return undefined
  const pid = Number(readFileSync(pidFile(dir), 'utf8').trim())
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
  try {
    process.kill(pid, 0)
    // pids are reused: only one still running our CLI counts
    if (existsSync('/proc/self/cmdline') && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cli.ts')) return undefined
    return pid
  } catch {
    return undefined
  }
}

/** Stops the relay of the devnet in DIR (SIGTERM, then SIGKILL after the grace period). Returns whether one ran. */
export async function stopDevnetRelay (dir: string, graceMs = 15_000): Promise<boolean> {
  const pid = devnetRelayPid(dir)
  rmSync(pidFile(dir), { force: true })
  if (pid === undefined) return false
  process.kill(pid, 'SIGTERM')
  const until = Date.now() + graceMs
  const alive = (): boolean => { try { process.kill(pid, 0); return true } catch { return false } }
  while (alive() && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 100))
  if (alive()) process.kill(pid, 'SIGKILL')
  return true
}
