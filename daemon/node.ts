// The sdte daemon: one process any participant runs. It takes the datadir lock first, then starts
// its parts in order (keys, store, network, p2p host, control API) and stops them in reverse.
// Roles (buyer, seller, node) add their services and control API methods on top of these parts.
import { mkdirSync, writeFileSync, unlinkSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { DaemonOptions } from '../config/options.ts'
import { readNetworkFile, type NetworkFile } from '../contracts/network.ts'
import { createP2PHost, type P2PHost } from '../p2p/host.ts'
import { logger } from './log.ts'
import { lockDatadir } from './lock.ts'
import { loadOrCreateKeys, writeSecretFile, type DaemonKeys } from './keys.ts'
import { Store } from './store.ts'
import { RpcServer } from './rpc/server.ts'
import { API_FILE, API_TOKEN_FILE } from './rpc/client.ts'
import { registerAdminMethods } from './methods/admin.ts'
import { registerNetMethods } from './methods/net.ts'
import { VERSION } from './version.ts'

const log = logger('sdte:daemon')

export type DaemonStatus = 'created' | 'starting' | 'started' | 'stopping' | 'stopped'

export class SdteDaemon {
  readonly options: DaemonOptions
  status: DaemonStatus = 'created'
  keys!: DaemonKeys
  store!: Store
  network: NetworkFile | null = null
  p2p!: P2PHost
  rpc!: RpcServer
  /** Resolves once the daemon has stopped (after `stop()` or `admin_shutdown`). */
  readonly stopped: Promise<void>
  private resolveStopped!: () => void
  /** Stop steps of started parts, run in reverse order of start. */
  private readonly closers: Array<{ name: string, close: () => Promise<void> | void }> = []

  constructor (options: DaemonOptions) {
    this.options = options
    this.stopped = new Promise(resolve => { this.resolveStopped = resolve })
  }

  get version (): string { return VERSION }

  async start (): Promise<void> {
    if (this.status !== 'created') throw new Error(`cannot start a daemon that is ${this.status}`)
    this.status = 'starting'
    const o = this.options
    try {
      mkdirSync(o.datadir, { recursive: true, mode: 0o700 })
      const lock = lockDatadir(o.datadir)
      this.closers.push({ name: 'lock', close: () => lock.release() })

      this.keys = await loadOrCreateKeys(o.datadir, o.keys)
      log.info('identity', { peerId: this.keys.peerId, ethAddress: this.keys.ethAddress, roles: o.roles })

      this.store = await Store.open(o.datadir)
      this.closers.push({ name: 'store', close: async () => await this.store.close() })

      if (o.network !== null) {
        this.network = readNetworkFile(o.network)
        log.info('network', { name: this.network.name, chainId: this.network.chainId, rpcUrl: this.network.rpcUrl })
      }

      this.p2p = await createP2PHost({
        listen: o.p2p.listen,
        bootstrap: [...o.p2p.bootstrap, ...(this.network?.bootstrap ?? [])],
        maxConnections: o.p2p.maxConnections
      }, { privateKey: this.keys.peerKey })
      await this.p2p.start()
      this.closers.push({ name: 'p2p', close: async () => await this.p2p.stop() })
      log.info('p2p host listening', { addresses: this.p2p.addresses() })

      await this.startControlApi()
      this.status = 'started'
      log.info('daemon started', { version: VERSION })
    } catch (err) {
      await this.closeParts()
      this.status = 'stopped'
      this.resolveStopped()
      throw err
    }
  }

  private async startControlApi (): Promise<void> {
    const o = this.options
    const token = randomBytes(32).toString('base64url')
    this.rpc = new RpcServer({ ...o.rpc, token, version: VERSION })
    registerAdminMethods(this.rpc, this)
    registerNetMethods(this.rpc, this)
    const url = await this.rpc.start()
    const apiFile = join(o.datadir, API_FILE)
    const tokenFile = join(o.datadir, API_TOKEN_FILE)
    // The token first, so that a client that sees `api` can always read its token.
    try { unlinkSync(tokenFile) } catch {}
    writeSecretFile(tokenFile, token)
    writeFileSync(apiFile, url + '\n', { mode: 0o600 })
    chmodSync(apiFile, 0o600)
    this.closers.push({
      name: 'control API',
      close: async () => {
        for (const f of [apiFile, tokenFile]) { try { unlinkSync(f) } catch {} }
        await this.rpc.stop()
      }
    })
  }

  private async closeParts (): Promise<void> {
    while (this.closers.length > 0) {
      const part = this.closers.pop()!
      try {
        await part.close()
      } catch (err) {
        log.warn('error while stopping', { part: part.name, err: err as Error })
      }
    }
  }

  /** Stops the parts in reverse order. Safe to call more than once. */
  async stop (): Promise<void> {
    if (this.status === 'stopping' || this.status === 'stopped') return await this.stopped
    this.status = 'stopping'
    log.info('stopping')
    await this.closeParts()
    this.status = 'stopped'
    log.info('stopped')
    this.resolveStopped()
  }
}
