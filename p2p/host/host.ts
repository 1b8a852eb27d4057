// The SDTE libp2p host: a libp2p node (libp2p.ts) with the small API the roles use: publish/subscribe
// with per-topic validators (gossip.ts), provide/find providers of `sdte:<kind>:<value>` keys (dht.ts),
// and protocol streams with limits and deadlines (here), under one start/stop lifecycle. Its options
// are in options.ts, its interface in types.ts.
import { PING_PROTOCOL } from '@libp2p/ping'
import { isPrivate } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { noMetrics, silentLogger, type ComponentLogger, type MetricsRegistry } from '../../config/index.ts'
import * as C from '../constants.ts'
import { DialFailedError, InvalidP2PInputError, P2PStateError, StreamTimeoutError } from '../errors.ts'
import { createDht } from './dht.ts'
import { createGossip } from './gossip.ts'
import { connectionLiveness } from './liveness.ts'
import { createSdteLibp2p, type Libp2pComponents } from './libp2p.ts'
import { libp2pLogger } from './logger.ts'
import { resolveP2PHostOptions, type P2PHostOptions } from './options.ts'
import { parseMultiaddr, parsePeerId } from './util.ts'
import { deadline, withDeadline } from '../deadline.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { P2PHost, P2PHostStatus, SdteLibp2p } from './types.ts'

/** What the host is handed rather than configured with: its identity, (libp2p's way) its logger and its metrics. */
export interface P2PHostComponents {
  privateKey: PrivateKey
  /** Ours and libp2p's lines (p2p/host/logger.ts). Default: silentLogger (a host used on its own logs nothing). */
  logger?: ComponentLogger
  /** Where the host makes its own metrics (gossip validation, peers). Default: noMetrics. */
  metrics?: MetricsRegistry
  /** libp2p's own metrics (e.g. @libp2p/prometheus-metrics on the same registry). Default: none. */
  libp2pMetrics?: Libp2pComponents['metrics']
}

/** Whether a connection address goes through a relay (a circuit-relay v2 address). */
export function isRelayed (address: string): boolean {
  return address.includes('/p2p-circuit')
}

export async function createP2PHost (options: P2PHostOptions, components: P2PHostComponents): Promise<P2PHost> {
  const opts = resolveP2PHostOptions(options)
  const logger = components.logger ?? silentLogger
  const log = logger.forComponent('sdte:p2p')
  const metrics = components.metrics ?? noMetrics
  const node: SdteLibp2p = await createSdteLibp2p(opts, components.privateKey, {
    logger: libp2pLogger(logger),
    ...(components.libp2pMetrics !== undefined && { metrics: components.libp2pMetrics })
  })
  metrics.gauge('sdte_p2p_peers', 'Peers this host has a connection to', [], (g) => { g.set({}, node.getPeers().length) })

  const selfId = node.peerId.toString()
  let status: P2PHostStatus = 'stopped'
  const listenAddrsByPeer = new Map<string, string[]>()
  let redialTimer: ReturnType<typeof setInterval> | undefined
  let gossipRepairTimer: ReturnType<typeof setInterval> | undefined
  let livenessTimer: ReturnType<typeof setInterval> | undefined
  // Aborted by stop(): ends in-flight DHT work and bootstrap dials. Renewed by start().
  let lifetime = new AbortController()

  node.addEventListener('peer:identify', (evt) => {
    listenAddrsByPeer.set(evt.detail.peerId.toString(), evt.detail.listenAddrs.map(String))
  })
  node.addEventListener('peer:disconnect', (evt) => {
    listenAddrsByPeer.delete(evt.detail.toString())
  })

  function requireStarted (what: string): void {
    if (status !== 'started') throw new P2PStateError(`${what}: host is ${status}`)
  }

  function withPeerId (address: string): string {
    return address.includes('/p2p/') ? address : `${address}/p2p/${selfId}`
  }

  async function redialBootstrap (): Promise<void> {
    if (status !== 'started' || node.getConnections().length > 0) return
    for (const address of opts.bootstrap) {
      const target = multiaddr(address)
      if (address.endsWith(`/p2p/${selfId}`)) continue
      try {
        await withDeadline(opts.dialTimeoutMs, [lifetime.signal], async (signal) => await node.dial(target, { signal }))
      } catch (err) {
        log.debug('bootstrap dial failed', { address, error: err })
      }
    }
  }

  /** Resolves once we hold a direct (not relayed) connection to the peer; rejects when signal aborts. */
  async function directConnection (peerId: string, signal: AbortSignal): Promise<void> {
    const isDirect = (): boolean => node.getConnections().some(c => c.remotePeer.toString() === peerId && c.status === 'open' && c.limits === undefined && !isRelayed(c.remoteAddr.toString()))
    if (isDirect()) return
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        node.removeEventListener('connection:open', onOpen)
        signal.removeEventListener('abort', onAbort)
      }
      const onOpen = (): void => { if (isDirect()) { done(); resolve() } }
      const onAbort = (): void => { done(); reject(new DialFailedError(`no direct connection to ${peerId} (reachable only via a relay)`)) }
      node.addEventListener('connection:open', onOpen)
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) onAbort()
    })
  }

  const gossip = createGossip(node, opts, log, metrics, requireStarted)
  const liveness = connectionLiveness(() => node.getConnections(), PING_PROTOCOL, log, {
    maxFailedPings: opts.connectionMaxFailedPings,
    timeoutMs: opts.connectionPingTimeoutMs
  })
  const unresponsive = metrics.counter('sdte_p2p_connections_unresponsive_total', 'Connections closed as their peer answered none of CONNECTION_MAX_FAILED_PINGS pings in a row', [])
  const dht = createDht(node, opts, log, { selfId, status: () => status, requireStarted, lifetime: () => lifetime.signal })

  const host: P2PHost = {
    peerId: selfId,
    options: Object.freeze({ ...opts }),
    node,
    get status () { return status },
    held: () => ({ providerRecords: dht.providerRecords(), gossip: gossip.caches() }),

    async start () {
      if (status !== 'stopped') throw new P2PStateError(`start: host is ${status}`)
      status = 'starting'
      lifetime = new AbortController()
      try {
        await node.start()
      } catch (err) {
        status = 'stopped'
        throw err
      }
      status = 'started'
      log.debug('p2p host started', { peerId: selfId, addresses: host.addresses() })
      gossipRepairTimer = setInterval(() => {
        gossip.repairStreams().catch((err: unknown) => { log.debug('gossip stream repair failed', { error: err }) })
      }, C.GOSSIP_STREAM_REPAIR_INTERVAL_MS)
      gossipRepairTimer.unref()
      livenessTimer = setInterval(() => {
        const round = liveness.round()
        if (round.closed > 0) unresponsive.inc({}, round.closed)
      }, opts.connectionPingIntervalMs)
      livenessTimer.unref()
      if (opts.bootstrap.length > 0) {
        redialTimer = setInterval(() => { void redialBootstrap() }, opts.bootstrapRedialIntervalMs)
        redialTimer.unref()
      }
    },

    async stop () {
      if (status !== 'started') return
      status = 'stopping'
      clearInterval(redialTimer)
      clearInterval(gossipRepairTimer)
      clearInterval(livenessTimer)
      dht.cancelReprovide()
      lifetime.abort(new P2PStateError('host stopping'))
      gossip.unsubscribeAll()
      await dht.settled()
      await node.stop()
      status = 'stopped'
      log.debug('p2p host stopped', { peerId: selfId })
    },

    addresses () {
      return node.getMultiaddrs().map(a => withPeerId(a.toString()))
    },

    reachability () {
      const addrs = node.getMultiaddrs()
      if (addrs.some(a => !isRelayed(a.toString()) && !isPrivate(a))) return 'public'
      if (addrs.some(a => isRelayed(a.toString()))) return 'relayed'
      return addrs.length > 0 ? 'local' : 'none'
    },

    peers () {
      const byPeer = new Map<string, Set<string>>()
      for (const conn of node.getConnections()) {
        const id = conn.remotePeer.toString()
        if (!byPeer.has(id)) byPeer.set(id, new Set())
        byPeer.get(id)?.add(conn.remoteAddr.toString())
      }
      return [...byPeer.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([peerId, seen]) => ({
        peerId,
        addresses: listenAddrsByPeer.get(peerId) ?? [...seen],
        direct: [...seen].some(a => !isRelayed(a))
      }))
    },

    async connect (address, { signal } = {}) {
      requireStarted('connect')
      const ma = parseMultiaddr(address)
      try {
        const conn = await withDeadline(opts.dialTimeoutMs, [signal], async (s) => await node.dial(ma, { signal: s }))
        return { peerId: conn.remotePeer.toString() }
      } catch (err) {
        if (signal?.aborted === true) throw signal.reason
        throw new DialFailedError(`could not connect to ${address}: ${(err as Error).message}`, { cause: err })
      }
    },

    protocolId (name, version) {
      if (!/^[a-z][a-z0-9-]{0,31}$/.test(name) || !/^[0-9][0-9.]{0,15}$/.test(String(version))) {
        throw new InvalidP2PInputError('protocol name must be lowercase [a-z0-9-], version digits and dots')
      }
      return `${opts.protocolPrefix}/${name}/${version}`
    },

    publish: gossip.publish,
    subscribe: gossip.subscribe,
    topicPeers: gossip.topicPeers,
    gossipScore: gossip.gossipScore,
    provide: dht.provide,
    findProviders: dht.findProviders,

    async handle (protocol, handler, handleOptions = {}) {
      const timeoutMs = handleOptions.timeoutMs ?? opts.handlerTimeoutMs
      await node.handle(protocol, async (stream, connection) => {
        // Not AbortSignal.timeout, which Node keeps alive until it fires: see p2p/deadline.ts.
        const d = deadline(timeoutMs)
        const onDeadline = (): void => {
          if (stream.status === 'open') stream.abort(new StreamTimeoutError(`handler for ${protocol}`, timeoutMs))
        }
        d.signal.addEventListener('abort', onDeadline, { once: true })
        const remotePeer = connection.remotePeer.toString()
        try {
          await handler(stream, { remotePeer, connection, signal: d.signal })
          if (stream.status === 'open' && stream.writeStatus === 'writable') await stream.close({ signal: d.signal })
        } catch (err) {
          // A misbehaving remote is routine, not an operator problem: debug, not warn.
          log.debug('protocol handler failed', { protocol, remotePeer, error: err })
          if (stream.status === 'open') stream.abort(err instanceof Error ? err : new Error(String(err)))
        } finally {
          d.signal.removeEventListener('abort', onDeadline)
          d.clear()
        }
      }, {
        maxInboundStreams: handleOptions.maxInboundStreams ?? opts.maxInboundStreams,
        maxOutboundStreams: handleOptions.maxOutboundStreams ?? opts.maxOutboundStreams
      })
    },

    async unhandle (protocol) {
      await node.unhandle(protocol)
    },

    async hangUp (peerId) {
      requireStarted('hangUp')
      await node.hangUp(parsePeerId(peerId))
    },

    async dialProtocol (peerId, protocol, { signal } = {}) {
      requireStarted('dialProtocol')
      const id = parsePeerId(peerId)
      try {
        try {
          return await withDeadline(opts.dialTimeoutMs, [signal], async (s) => await node.dialProtocol(id, protocol, { signal: s }))
        } catch (err) {
          // Reached only through a relay: our protocols do not run on a relayed (limited) connection,
          // but the peer's DCUtR turns it into a direct one when we can be dialled; wait for that.
          if ((err as Error).name !== 'LimitedConnectionError') throw err
          await withDeadline(opts.directUpgradeWaitMs, [signal], async (s) => { await directConnection(id.toString(), s) })
          return await withDeadline(opts.dialTimeoutMs, [signal], async (s) => await node.dialProtocol(id, protocol, { signal: s }))
        }
      } catch (err) {
        if (signal?.aborted === true) throw signal.reason
        throw new DialFailedError(`could not open ${protocol} to ${peerId}: ${(err as Error).message}`, { cause: err })
      }
    }
  }

  return host
}
