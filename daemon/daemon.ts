// The sdte daemon: one process any participant runs. It takes the datadir lock first, then starts
// its parts in order (monitoring server, keys, store, network, p2p host, control API) and stops them
// in reverse.
// Roles (buyer, seller, node) add their services and control API methods on top of these parts.
import { mkdirSync, writeFileSync, unlinkSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { DaemonOptions } from '../config/index.ts'
import { readNetworkFile, type NetworkFile } from '../contracts/index.ts'
import { ChainClient, MAX_REORG_DEPTH } from '../contracts/index.ts'
import { fundDevAccount } from '../contracts/index.ts'
import { createP2PHost, resolveP2PHostOptions, type P2PHost } from '../p2p/index.ts'
import { offerProtocol } from '../p2p/index.ts'
import { attestProtocol } from '../p2p/index.ts'
import { dataProtocol } from '../p2p/index.ts'
import { resultProtocol } from '../p2p/index.ts'
import { DEMAND_TOPIC, createDemandValidator, createPostedDemands } from '../p2p/index.ts'
import { ConfigError, SdteError, noMetrics } from '../config/index.ts'
import { TradeBook } from './trades.ts'
import type { Role, RoleContext } from './roles/context.ts'
import type { EnclaveHost } from '../enclave/index.ts'
import { registerChainMethods } from './methods/chain.ts'
import { registerTradeMethods } from './methods/trade.ts'
import { componentLogger, logger } from './log.ts'
import { lockDatadir } from './lock.ts'
import { memoryReleaser, receiveCollector, type MemoryReleaser } from './memory.ts'
import { loadOrCreateKeys, writeSecretFile, type DaemonKeys } from './keys.ts'
import { Store } from './store.ts'
import { RpcServer } from './rpc/server.ts'
import { appError } from './rpc/errors.ts'
import { API_FILE, API_TOKEN_FILE, API_TOKEN_READONLY_FILE } from './rpc/client.ts'
import { registerAdminMethods, NO_BOOTSTRAP_WARNING } from './methods/admin.ts'
import { registerNetMethods } from './methods/net.ts'
import { dashboardPages, DASHBOARD_HEADERS } from './dashboard/index.ts'
import { VERSION } from './version.ts'
import { createMetrics, daemonMetrics, type DaemonMetrics, type MetricsSetup } from './metrics.ts'
import { MonitorServer, READY_TIMEOUT_MS } from './monitor.ts'
import { RefuseRequest } from '../p2p/index.ts'
import { decodeDemand, DemandInvalidError } from '../p2p/index.ts'

const log = logger('sdte:daemon')

/** How often a daemon with a trading role withdraws a credit left on DTMC (e.g. a withdrawal a reorganisation dropped). */
export const CREDIT_SWEEP_INTERVAL_MS = 30_000

/** What a daemon on a devnet tops its own account up to at start (anvil_setBalance). */
export const DEVNET_ACCOUNT_FUNDS = 1000n * 10n ** 18n

export type DaemonStatus = 'created' | 'starting' | 'started' | 'stopping' | 'stopped'

/** start() on a daemon that is already starting, running or stopped. */
export class DaemonStateError extends SdteError {
  override code = 'ERR_DAEMON_STATE'
}

export class SdteDaemon {
  readonly options: DaemonOptions
  status: DaemonStatus = 'created'
  keys!: DaemonKeys
  store!: Store
  network: NetworkFile | null = null
  /** The bootstrap peers dialed at start: --bootstrap and the network file's. */
  bootstrap: string[] = []
  chain: ChainClient | null = null
  p2p!: P2PHost
  rpc!: RpcServer
  trades!: TradeBook
  roles: Role[] = []
  /** What the daemon and its parts measure; recorded nowhere unless options.metrics.enabled. */
  metrics: DaemonMetrics = daemonMetrics(noMetrics)
  /** /metrics, /health and /ready, when options.metrics.enabled. */
  monitor: MonitorServer | null = null
  /** Resolves once the daemon has stopped (after `stop()` or `admin_shutdown`). */
  readonly stopped: Promise<void>
  private resolveStopped!: () => void
  /**
   * Resolves once every role's boot (Role.boot: a node's enclave and CISC registration, run after the control API
   * opened) has ended well; rejects with the boot's error, or if the daemon stops first.
   */
  readonly booted: Promise<void>
  private resolveBooted!: () => void
  private rejectBooted!: (err: Error) => void
  /** Why a started daemon stopped by itself: a role's boot failed (the CLI exits with it, as with a failed start). */
  failure: Error | undefined
  /** Gives the memory of ended work back once the daemon is quiet (daemon/memory.ts); made once the store is open. */
  private releaser: MemoryReleaser | undefined
  /** Work ended whose memory is free now (a trade transition, a node's idle enclave thread stopped). */
  private readonly released = (): void => { this.releaser?.poke() }
  /** Stop steps of started parts, run in reverse order of start. */
  private readonly closers: Array<{ name: string, close: () => Promise<void> | void }> = []

  constructor (options: DaemonOptions) {
    this.options = options
    this.stopped = new Promise(resolve => { this.resolveStopped = resolve })
    this.booted = new Promise((resolve, reject) => { this.resolveBooted = resolve; this.rejectBooted = reject })
    // Nobody need wait for it (a relay's, or a daemon that stops): its rejection is not an unhandled one.
    this.booted.catch(() => {})
  }

  get version (): string { return VERSION }

  async start (): Promise<void> {
    if (this.status !== 'created') throw new DaemonStateError(`cannot start a daemon that is ${this.status}`)
    this.status = 'starting'
    const o = this.options
    // Where start-up time goes (issue 13, start to admin_info; bench/trade/startup-phases.ts reads these):
    // the end of each phase, ms since the process began.
    const phase = (name: string): void => { log.debug('start phase', { phase: name, ms: Math.round(performance.now()) }) }
    phase('modules loaded')
    try {
      // What can be checked is checked before the datadir or a key is made: a start that fails on its
      // options or its network file leaves nothing behind.
      const trading = o.roles.filter(r => r !== 'relay')
      let nodeRole: typeof import('./roles/trusted-node/index.ts') | undefined
      if (o.network !== null) {
        this.network = readNetworkFile(o.network)
        if (o.roles.includes('node')) {
          nodeRole = await import('./roles/trusted-node/index.ts')
          nodeRole.TrustedNodeRole.checkOptions(o, this.network)
        }
      } else if (trading.length > 0) {
        throw new ConfigError(`the ${trading.join(', ')} role needs a network: --network FILE (from sdte devnet up or sdte deploy)`)
      }
      const p2pOptions = {
        listen: o.p2p.listen,
        bootstrap: [...o.p2p.bootstrap, ...(this.network?.bootstrap ?? [])],
        announce: o.p2p.announce,
        mode: o.p2p.mode !== 'auto' ? o.p2p.mode : this.network === null || this.network.devnet ? 'local' as const : 'public' as const,
        relayReservation: o.p2p.relayReservation,
        // The relay role serves circuit-relay v2 reservations (hosts behind NATs are reached through it).
        relayServer: o.roles.includes('relay'),
        maxConnections: o.p2p.maxConnections
      }
      resolveP2PHostOptions(p2pOptions)
      this.bootstrap = p2pOptions.bootstrap
      phase('options checked')

      mkdirSync(o.datadir, { recursive: true, mode: 0o700 })
      const lock = lockDatadir(o.datadir)
      this.closers.push({ name: 'lock', close: () => lock.release() })

      // First, so that /health answers (and /ready says not yet) while the rest starts.
      let setup: MetricsSetup | null = null
      if (o.metrics.enabled) {
        setup = await createMetrics()
        this.metrics = setup.daemon
        await this.startMonitor(setup)
      }

      this.keys = await loadOrCreateKeys(o.datadir, o.keys)
      log.info('identity', { peerId: this.keys.peerId, ethAddress: this.keys.ethAddress, roles: o.roles })
      phase('keys')

      this.store = await Store.open(o.datadir)
      this.closers.push({ name: 'store', close: async () => await this.store.close() })

      this.trades = new TradeBook(this.store.trades, this.metrics, logger('sdte:trades'))
      this.metrics.watchTrades(async () => await this.trades.list())
      const releaser = memoryReleaser(logger('sdte:memory'))
      this.releaser = releaser
      this.closers.push({ name: 'memory release', close: () => { releaser.stop() } })
      phase('store')

      // A node's enclave worker boots (its thread loads the EVM) while the chain client and the p2p host
      // start, on the other core; the node role takes it when it starts (and its stop closes it).
      let enclaveAhead: Promise<EnclaveHost> | undefined
      if (nodeRole !== undefined && this.network !== null) {
        const opening = nodeRole.TrustedNodeRole.openEnclave({ options: o, network: this.network, store: this.store, keys: this.keys, released: this.released })
        // A failure surfaces where the role awaits it; until then it is not an unhandled rejection.
        opening.catch(() => {})
        enclaveAhead = opening
        this.closers.push({ name: 'enclave', close: async () => { await (await opening.catch(() => null))?.close() } })
      }

      if (this.network !== null) {
        log.info('network', { name: this.network.name, chainId: this.network.chainId, rpcUrl: this.network.rpcUrl })
        if (this.network.devnet) await fundDevAccount(this.network.rpcUrl, this.keys.ethAddress, DEVNET_ACCOUNT_FUNDS)
        const chain = await ChainClient.connect({ network: this.network, signer: this.keys.ethWallet.privateKey, metrics: this.metrics.registry, confirmations: o.trade.confirmations })
        this.chain = chain
        this.closers.push({ name: 'chain', close: () => chain.close() })
        phase('chain')
      }

      this.p2p = await createP2PHost(p2pOptions, {
        privateKey: this.keys.peerKey,
        logger: componentLogger,
        metrics: this.metrics.registry,
        ...(setup !== null && { libp2pMetrics: setup.libp2p })
      })
      await this.p2p.start()
      this.closers.push({ name: 'p2p', close: async () => await this.p2p.stop() })
      log.info('p2p host listening', { addresses: this.p2p.addresses() })
      phase('p2p')
      // Without a bootstrap peer a daemon finds nobody unless dialed: say so, with the fix. A relay is
      // usually the bootstrap peer itself, so for a relay only it is information.
      if (this.bootstrap.length === 0) {
        if (o.roles.every(r => r === 'relay')) log.info('no bootstrap peers: others find this daemon by dialing it (give its listening address as their --bootstrap)')
        else log.warn(NO_BOOTSTRAP_WARNING)
      }

      if (this.network !== null && this.chain !== null) await this.startRoles(this.network, this.chain, enclaveAhead)
      phase('roles')
      await this.startControlApi()
      phase('control API')
      this.status = 'started'
      log.info('daemon started', { version: VERSION })
    } catch (err) {
      await this.closeParts()
      this.status = 'stopped'
      this.rejectBooted(err as Error)
      this.resolveStopped()
      throw err
    }
    void this.bootRoles(phase)
  }

  /**
   * The roles' boots (Role.boot), after the control API opened, so that it answers without waiting for them. A boot
   * that fails stops the daemon with its error (`failure`; the CLI exits 1 with it, as it does when start() fails).
   */
  private async bootRoles (phase: (name: string) => void): Promise<void> {
    try {
      await Promise.all(this.roles.map(async r => await r.boot?.()))
    } catch (err) {
      this.rejectBooted(err as Error)
      if (this.status !== 'started') return
      this.failure = err as Error
      log.error('a role\'s boot failed after the control API opened (a node: its enclave or CISC registration): stopping', { err: err as Error })
      await this.stop()
      return
    }
    if (this.status !== 'started') {
      this.rejectBooted(new DaemonStateError('the daemon stopped before its roles booted'))
      return
    }
    phase('roles booted')
    this.resolveBooted()
  }

  /** The roles, the trade protocols they serve, the demand topic, and the ticker that advances trades. */
  private async startRoles (network: NetworkFile, chain: ChainClient, enclaveAhead?: Promise<EnclaveHost>): Promise<void> {
    const ctx: RoleContext = {
      options: this.options,
      keys: this.keys,
      store: this.store,
      trades: this.trades,
      metrics: this.metrics,
      network,
      chain,
      p2p: this.p2p,
      offer: offerProtocol(this.p2p),
      attest: attestProtocol(this.p2p),
      data: dataProtocol(this.p2p),
      result: resultProtocol(this.p2p),
      wake: (role) => { const r = this.roles.find(x => x.name === role); if (r !== undefined) this.advanceRole(r) },
      received: receiveCollector(),
      released: this.released
    }
    for (const name of this.options.roles) {
      // Each role's code is loaded only by a daemon that runs it (a relay loads none; the roles' graphs
      // are most of a daemon's modules): test/unit/architecture.test.ts keeps them off the static graph.
      const role = name === 'buyer'
        ? new (await import('./roles/buyer/index.ts')).BuyerRole(ctx)
        : name === 'seller'
          ? new (await import('./roles/seller/index.ts')).SellerRole(ctx)
          : name === 'node' ? new (await import('./roles/trusted-node/index.ts')).TrustedNodeRole(ctx, enclaveAhead) : null
      if (role === null) continue
      await role.start()
      this.roles.push(role)
      this.closers.push({ name: `${name} role`, close: async () => await role.stop() })
    }
    // A demand counts only once its buyer posted its hash to BDBC (docs/threat-model.md, reflected demand spam).
    // BDBC's DemandPosted logs are read once a block, ahead of the gossip; a demand not seen so is read alone.
    const posted = createPostedDemands({
      fromBlock: network.deployBlock,
      reorgDepth: MAX_REORG_DEPTH,
      read: async (fromBlock, toBlock) => await chain.bdbc.demands({ fromBlock, toBlock }),
      readOne: async (buyer, demandHash) => (await chain.bdbc.demands({ buyer, demandHash, fromBlock: network.deployBlock }))[0]?.blockNumber ?? null
    }, { logger: componentLogger })
    const unwatchPosted = chain.onBlock(n => { posted.onBlock(n) })
    this.closers.push({ name: 'posted demands', close: () => unwatchPosted() })
    // Scan what is on the record already (a chain that mines only on transactions may not make a block soon).
    chain.blockNumber().then(n => { posted.onBlock(n) }, (err: unknown) => { log.debug('no block number for the posted demands yet', { err: err as Error }) })
    const validator = createDemandValidator({
      chainId: network.chainId,
      dtmc: network.contracts.DTMC,
      isPosted: posted.isPosted
    }, { logger: componentLogger })
    const buyer = this.roles.find(r => r.onOffer !== undefined)
    await ctx.offer.start({
      onOffer: buyer?.onOffer?.bind(buyer),
      onSolicit: async (remote, demand) => {
        // A solicited demand skipped the gossip validator: the same checks (but the seen set and the rate) here;
        // the soliciting peer must be the demand's buyer peer.
        try {
          await validator.verify(demand, remote)
        } catch (err) {
          if (err instanceof DemandInvalidError) throw new RefuseRequest('InvalidDemand', err.message)
          throw err
        }
        for (const role of this.roles) {
          const offer = await role.onSolicit?.(remote, demand)
          if (offer !== undefined && offer !== null) return offer
        }
        throw new RefuseRequest('NoOffer', 'nothing to offer for this demand')
      }
    })
    this.closers.push({ name: 'offer protocol', close: async () => await ctx.offer.stop() })

    // Every daemon on a network relays demands, and validates them before it does.
    const unsubscribe = this.p2p.subscribe(DEMAND_TOPIC, async (msg) => {
      const { demand, demandHash } = validator.accepted(msg.data) ?? decodeDemand(msg.data)
      // When this daemon had the demand (validated, before its roles): bench/network reads it to time propagation.
      log.info('demand received', { demandId: demand.demandId })
      for (const role of this.roles) {
        role.onDemand?.(demand, demandHash).catch((err: unknown) => { log.warn('demand handling failed', { role: role.name, err: err as Error }) })
      }
    }, (msg) => validator.validate(msg))
    this.closers.push({ name: 'demand topic', close: () => unsubscribe() })

    // The safety poll: every role ticks every trade.tickMs whatever happened. The events below advance
    // trades as soon as they can go on; this only bounds how long a missed event leaves one waiting.
    const timer = setInterval(() => { for (const r of this.roles) this.advanceRole(r) }, this.options.trade.tickMs)
    this.closers.push({ name: 'ticker', close: () => clearInterval(timer) })

    // Trade work that ended leaves garbage (a delivery's dataset, the chunks a node passed on) that an idle
    // daemon would keep: one full collection and a trim of the allocator once its trades have not changed state
    // for a while (daemon/memory.ts).
    const unlistenRelease = this.trades.onChange((t) => { if (t.updatedAt === t.timeline.at(-1)?.at) this.released() })
    this.closers.push({ name: 'memory release on transitions', close: () => { unlistenRelease() } })

    // Whatever DTMC credits this account and nobody withdrew is withdrawn now and then: a withdrawal a chain
    // reorganisation dropped after its trade was recorded paid (the roles withdraw once, when the trade ends).
    const sweep = setInterval(() => {
      void (async () => {
        if (await chain.dtmc.creditOf(this.keys.ethAddress) === 0n) return
        const { amount } = await chain.dtmc.withdraw()
        log.info('withdrew a credit left on DTMC', { amount })
      })().catch((err: unknown) => { log.debug('credit sweep failed (will retry)', { err: err as Error }) })
    }, CREDIT_SWEEP_INTERVAL_MS)
    sweep.unref()
    this.closers.push({ name: 'credit sweep', close: () => clearInterval(sweep) })

    if (this.options.trade.events) {
      // Each new block may hold what a trade waits for (DTMC's events, a deadline passed on the chain's clock).
      const unwatch = chain.onBlock(() => { for (const r of this.roles) this.advanceRole(r) })
      this.closers.push({ name: 'block events', close: () => unwatch() })
      // A trade that changed state may take its next step now (a transition or a new record, not a progress
      // update: those are written while a delivery goes, many times a second).
      const unlisten = this.trades.onChange((t) => {
        if (t.updatedAt !== t.timeline.at(-1)?.at) return
        const r = this.roles.find(x => x.name === t.role)
        if (r !== undefined) this.advanceRole(r)
      })
      this.closers.push({ name: 'trade events', close: () => unlisten() })
    }
  }

  /** Roles whose tick is running, and those asked to tick again meanwhile. */
  private readonly ticking = new Set<Role>()
  private readonly tickAgain = new Set<Role>()

  /**
   * Ticks a role now, or, when its tick is running, once more right after it: each role ticks on its own (a
   * slow one holds up only itself), and any number of events during a tick make one more, not one each.
   */
  private advanceRole (r: Role): void {
    if (this.status === 'stopping' || this.status === 'stopped') return
    if (this.ticking.has(r)) { this.tickAgain.add(r); return }
    this.ticking.add(r)
    r.tick()
      .catch((err: unknown) => { log.warn('tick failed', { role: r.name, err: err as Error }) })
      .finally(() => {
        this.ticking.delete(r)
        if (this.tickAgain.delete(r)) this.advanceRole(r)
      })
  }

  private async startMonitor (setup: MetricsSetup): Promise<void> {
    const monitor = new MonitorServer({
      host: this.options.metrics.host,
      port: this.options.metrics.port,
      metrics: async () => ({ contentType: setup.prometheus.contentType, body: await setup.prometheus.metrics() }),
      ready: async () => await this.ready()
    })
    const url = await monitor.start()
    this.monitor = monitor
    this.closers.push({ name: 'monitoring server', close: async () => await monitor.stop() })
    log.info('metrics served', { url: `${url}/metrics` })
  }

  /**
   * /ready: started, the p2p host listening, the chain answering, and every role's own check (the
   * node's enclave answering), all within READY_TIMEOUT_MS.
   */
  async ready (): Promise<boolean> {
    if (this.status !== 'started') return false
    if (this.p2p.status !== 'started' || this.p2p.addresses().length === 0) return false
    const chain = this.chain
    const checks = async (): Promise<boolean> => {
      if (chain !== null) await chain.blockNumber()
      for (const r of this.roles) if (r.ready !== undefined && !await r.ready()) return false
      return true
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<boolean>(resolve => { timer = setTimeout(() => { resolve(false) }, READY_TIMEOUT_MS) })
    try {
      return await Promise.race([checks(), timeout])
    } catch {
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  private async startControlApi (): Promise<void> {
    const o = this.options
    const token = randomBytes(32).toString('base64url')
    const readOnlyToken = randomBytes(32).toString('base64url')
    this.rpc = new RpcServer({
      ...o.rpc,
      token,
      readOnlyToken,
      version: VERSION,
      pages: dashboardPages(),
      pageHeaders: DASHBOARD_HEADERS,
      unknownMethod: (method) => {
        const role = /^(buyer|seller|node)_/.exec(method)?.[1]
        if (role === undefined || this.roles.some(r => r.name === role)) return undefined
        return appError('RoleNotEnabled', `this daemon does not run the ${role} role (start it with --role ${role}${this.network === null ? ' --network FILE' : ''})`, { role })
      }
    })
    registerAdminMethods(this.rpc, this)
    registerNetMethods(this.rpc, this)
    if (this.chain !== null) registerChainMethods(this.rpc, this.chain, this.keys.ethAddress)
    registerTradeMethods(this.rpc, this)
    for (const role of this.roles) role.registerMethods(this.rpc)
    const url = await this.rpc.start()
    const apiFile = join(o.datadir, API_FILE)
    const tokenFile = join(o.datadir, API_TOKEN_FILE)
    const readOnlyTokenFile = join(o.datadir, API_TOKEN_READONLY_FILE)
    // The tokens first, so that a client that sees `api` can always read its token.
    for (const [file, value] of [[tokenFile, token], [readOnlyTokenFile, readOnlyToken]]) {
      try { unlinkSync(file) } catch {}
      writeSecretFile(file, value)
    }
    writeFileSync(apiFile, url + '\n', { mode: 0o600 })
    chmodSync(apiFile, 0o600)
    this.closers.push({
      name: 'control API',
      close: async () => {
        for (const f of [apiFile, tokenFile, readOnlyTokenFile]) { try { unlinkSync(f) } catch {} }
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
    this.rejectBooted(new DaemonStateError('the daemon stopped before its roles booted'))
    log.info('stopping')
    await this.closeParts()
    this.status = 'stopped'
    log.info('stopped')
    this.resolveStopped()
  }
}
