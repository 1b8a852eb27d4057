// The daemon's metrics: one Prometheus registry (prom-client) holding libp2p's own metrics
// (@libp2p/prometheus-metrics), Node's process metrics and ours. The parts are handed `registry`
// (config/metrics.ts MetricsRegistry) and make their own metrics there (p2p: gossip validation,
// peers; contracts: transactions, gas, errors); the daemon's own (trades, deliveries, enclave runs)
// are made here. Served by the monitoring server (daemon/monitor.ts) at /metrics.
// prom-client and @libp2p/prometheus-metrics are loaded by createMetrics, only when metrics are enabled.
import type { Registry, Counter as PromCounter, Gauge as PromGauge, Histogram as PromHistogram } from 'prom-client'
import type { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Counter, Gauge, Histogram, MetricLabels, MetricsRegistry } from '../config/index.ts'
import type { TradeRecord } from './trades.ts'

/** Buckets (seconds) of how long a trade stays in one state: from a tick to a slow chain's hour. */
export const PHASE_DURATION_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const
/** Buckets of the gas one enclave run used: 10k to 2G, by powers of ten and their halves. */
export const ENCLAVE_GAS_BUCKETS = [1e4, 5e4, 1e5, 5e5, 1e6, 5e6, 1e7, 5e7, 1e8, 5e8, 1e9, 2e9] as const
/** Buckets (seconds) of one enclave run's wall time. */
export const ENCLAVE_RUN_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300] as const

function promRegistry (registry: Registry, prom: typeof import('prom-client')): MetricsRegistry {
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined
  return {
    counter (name, help, labelNames = []) {
      const c = existing<PromCounter>(name) ?? new prom.Counter({ name, help, labelNames: [...labelNames], registers: [registry] })
      return { inc: (labels?: MetricLabels, value = 1) => { labels === undefined ? c.inc(value) : c.inc(labels, value) } }
    },
    histogram (name, help, labelNames, buckets) {
      const h = existing<PromHistogram>(name) ?? new prom.Histogram({ name, help, labelNames: [...labelNames], buckets: [...buckets], registers: [registry] })
      return { observe: (labels, value) => { h.observe(labels, value) } }
    },
    gauge (name, help, labelNames, collect) {
      const wrap = (g: PromGauge): Gauge => ({ set: (labels, value) => { g.set(labels, value) } })
      const g = existing<PromGauge>(name) ?? new prom.Gauge({
        name,
        help,
        labelNames: [...labelNames],
        registers: [registry],
        ...(collect !== undefined && {
          async collect (this: PromGauge) {
            this.reset()
            await collect(wrap(this))
          }
        })
      })
      return wrap(g)
    }
  }
}

/** What the daemon itself measures (the parts measure theirs through `registry`). */
export interface DaemonMetrics {
  /** Handed to the parts. */
  registry: MetricsRegistry
  /** State changes of trades (a new trade counts as a change into its first state). */
  tradeTransitions: Counter
  /** Seconds a trade spent in a state (`phase`) before it left it. */
  tradePhaseSeconds: Histogram
  /** Seller data bytes delivered into enclaves: `role` seller counts what it sent, node what its enclave took. */
  bytesDelivered: Counter
  /** Enclave runs by outcome: a DTMC result status (ok, reverted, out_of_gas, ...) or over_budget / failed. */
  enclaveRuns: Counter
  enclaveRunGasCap: Histogram
  enclaveRunSeconds: Histogram
  /** The current number of trades by role and state, read from the trade book at each scrape. */
  watchTrades: (list: () => Promise<TradeRecord[]>) => void
}

export function daemonMetrics (registry: MetricsRegistry): DaemonMetrics {
  let listTrades: (() => Promise<TradeRecord[]>) | undefined
  registry.gauge('sdte_trades', 'Trades this daemon takes part in, by role and current state', ['role', 'state'], async (g) => {
    if (listTrades === undefined) return
    const counts = new Map<string, { role: string, state: string, n: number }>()
    for (const t of await listTrades()) {
      const k = `${t.role}/${t.state}`
      const c = counts.get(k) ?? { role: t.role, state: t.state, n: 0 }
      c.n++
      counts.set(k, c)
    }
    for (const c of counts.values()) g.set({ role: c.role, state: c.state }, c.n)
  })
  return {
    registry,
    tradeTransitions: registry.counter('sdte_trade_transitions_total', 'Trade state changes, by role and the state entered', ['role', 'state']),
    tradePhaseSeconds: registry.histogram('sdte_trade_phase_duration_seconds', 'Seconds a trade spent in a state before leaving it, by role and that state (phase)', ['role', 'phase'], PHASE_DURATION_BUCKETS),
    bytesDelivered: registry.counter('sdte_data_delivered_bytes_total', 'Seller data bytes delivered into enclaves (seller: sent; node: taken by its enclave)', ['role']),
    enclaveRuns: registry.counter('sdte_enclave_runs_total', 'Enclave runs of an analysis, by outcome', ['status']),
    enclaveRunGasCap: registry.histogram('sdte_enclave_run_gas_cap', 'The gas cap of an enclave run (the trade\'s; the gas used stays encrypted)', [], ENCLAVE_GAS_BUCKETS),
    enclaveRunSeconds: registry.histogram('sdte_enclave_run_duration_seconds', 'Wall time of an enclave run', [], ENCLAVE_RUN_SECONDS_BUCKETS),
    watchTrades: (list) => { listTrades = list }
  }
}

/** The daemon's Prometheus registry, what its parts are handed, and libp2p's metrics component on the same registry. */
export interface MetricsSetup {
  prometheus: Registry
  daemon: DaemonMetrics
  /** For createLibp2p's `metrics`: libp2p's own metrics (connections, streams, protocols, transfer) into `prometheus`. */
  libp2p: ReturnType<typeof prometheusMetrics>
}

export async function createMetrics (): Promise<MetricsSetup> {
  const prom = await import('prom-client')
  const { prometheusMetrics } = await import('@libp2p/prometheus-metrics')
  const prometheus = new prom.Registry()
  return {
    prometheus,
    daemon: daemonMetrics(promRegistry(prometheus, prom)),
    // @libp2p/prometheus-metrics also collects Node's process metrics (CPU, memory, event loop, GC) there.
    // It keeps libp2p's metrics in a module-wide map by name, so they are one set per process: right
    // for a daemon, its own process; a second libp2p in one process (tests) shares the first's.
    // preserveExistingMetrics: prom-client's global registry is not ours to clear.
    libp2p: prometheusMetrics({ registry: prometheus, preserveExistingMetrics: true })
  }
}
