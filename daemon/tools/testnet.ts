// A local testnet of separate processes: a devnet (anvil + contracts), a relay, and the buyers,
// sellers and trusted nodes asked for, each a daemon with its own datadir, bootstrapped from the
// relay. The demo, the end-to-end tests and the trade benchmark all run on it.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { devnetDown, devnetUp } from '../../contracts/tools/index.ts'
import type { NetworkFile } from '../../contracts/index.ts'
import type { RoleName } from '../../config/index.ts'
import { computeMeasurement } from '../../enclave/index.ts'
import { startDaemon, waitNodeBooted, type DaemonProcess } from './child-daemons.ts'
import type { RpcClient } from '../index.ts'

export interface LocalTestnetOptions {
  dir: string
  buyers?: number
  sellers?: number
  nodes?: number
  /** Extra config.json fields for node i (e.g. a test-only fault switch). */
  nodeConfig?: (index: number) => Record<string, unknown>
  /** Extra config.json fields for every daemon. */
  config?: Record<string, unknown>
  /** Extra environment of every daemon (e.g. SDTE_LOG). */
  env?: Record<string, string>
  /** Address the chain (anvil) listens on. Default 127.0.0.1. */
  chainHost?: string
  /** Seconds between blocks; absent: a block per transaction. */
  blockTime?: number
  /** How long one daemon may take to start (a loaded machine, many daemons). Default 60 s. */
  startTimeoutMs?: number
  /** Where each daemon runs (its own network namespace, say); default: here, on loopback. */
  place?: (name: string, role: TestnetDaemon['role']) => DaemonPlacement
}

/** Where and how one daemon of a testnet runs. */
export interface DaemonPlacement {
  /** Command prefix, e.g. ['ip', 'netns', 'exec', NS]. */
  wrap?: string[]
  /** More daemon arguments (--listen, --announce). */
  args?: string[]
  /** A control API client for it, when the one from its datadir cannot reach it (another namespace). */
  client?: (datadir: string) => Promise<RpcClient>
}

interface Info { peerId: string, addresses: string[], ethAddress: string }

export interface TestnetDaemon extends DaemonProcess {
  name: string
  role: RoleName
  info: Info
}

export class LocalTestnet {
  readonly dir: string
  readonly network: NetworkFile
  readonly daemons: TestnetDaemon[] = []
  private readonly place: LocalTestnetOptions['place']

  private constructor (dir: string, network: NetworkFile, place: LocalTestnetOptions['place']) {
    this.dir = dir
    this.network = network
    this.place = place
  }

  /** Daemons of a role in name order (buyer1, buyer2, ...), whatever order they started in. */
  private ofRole (role: TestnetDaemon['role']): TestnetDaemon[] {
    return this.daemons.filter(d => d.role === role).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
  }

  get relay (): TestnetDaemon { return this.ofRole('relay')[0] }
  get buyers (): TestnetDaemon[] { return this.ofRole('buyer') }
  get sellers (): TestnetDaemon[] { return this.ofRole('seller') }
  get nodes (): TestnetDaemon[] { return this.ofRole('node') }
  get networkPath (): string { return join(this.dir, 'devnet', 'network.json') }

  /** Brings up the devnet, then the relay, then every other daemon in parallel. */
  static async start (o: LocalTestnetOptions): Promise<LocalTestnet> {
    mkdirSync(o.dir, { recursive: true })
    const network = await devnetUp({ dir: join(o.dir, 'devnet'), measurements: [await computeMeasurement()], host: o.chainHost, blockTime: o.blockTime })
    const net = new LocalTestnet(o.dir, network, o.place)
    try {
      await net.add('relay', 'relay', {}, o)
      const plan: Array<[string, TestnetDaemon['role'], Record<string, unknown>]> = [
        ...Array.from({ length: o.buyers ?? 1 }, (_, i) => [`buyer${i + 1}`, 'buyer', {}] as [string, TestnetDaemon['role'], Record<string, unknown>]),
        ...Array.from({ length: o.sellers ?? 2 }, (_, i) => [`seller${i + 1}`, 'seller', {}] as [string, TestnetDaemon['role'], Record<string, unknown>]),
        ...Array.from({ length: o.nodes ?? 3 }, (_, i) => [`node${i + 1}`, 'node', o.nodeConfig?.(i) ?? {}] as [string, TestnetDaemon['role'], Record<string, unknown>])
      ]
      await Promise.all(plan.map(async ([name, role, extra]) => await net.add(name, role, extra, o)))
    } catch (err) {
      await net.stop()
      throw err
    }
    return net
  }

  /** Starts one more daemon (or restarts one on its datadir) on this testnet. */
  async add (name: string, role: TestnetDaemon['role'], extra: Record<string, unknown>, o: Pick<LocalTestnetOptions, 'config' | 'env' | 'startTimeoutMs'> = {}): Promise<TestnetDaemon> {
    const bootstrap = role === 'relay' ? [] : ['--bootstrap', this.relay.info.addresses[0]]
    const config = { keys: { scryptN: 1024 }, ...o.config, ...extra }
    const place = this.place?.(name, role) ?? {}
    const p = await startDaemon(join(this.dir, name), {
      args: ['--role', role, '--network', this.networkPath, ...bootstrap, ...(place.args ?? [])],
      config,
      env: o.env,
      wrap: place.wrap,
      timeoutMs: o.startTimeoutMs ?? 60_000
    })
    if (place.client !== undefined) {
      try {
        p.rpc = await place.client(p.datadir)
      } catch (err) {
        await p.stop('SIGKILL')
        throw err
      }
    }
    const info = await p.rpc.call<Info>('admin_info')
    // A node answers admin_info before its enclave booted and it registered in CISC: a testnet's node is one that can offer.
    if (role === 'node') await waitNodeBooted(p, o.startTimeoutMs ?? 60_000)
    const d: TestnetDaemon = Object.assign(p, { name, role, info })
    const i = this.daemons.findIndex(x => x.name === name)
    if (i >= 0) this.daemons[i] = d
    else this.daemons.push(d)
    return d
  }

  /** Stops every daemon (SIGTERM, then SIGKILL after a grace period) and the devnet. */
  async stop (): Promise<void> {
    await Promise.all(this.daemons.map(async d => await d.stop('SIGTERM')))
    await devnetDown(join(this.dir, 'devnet'))
  }
}
