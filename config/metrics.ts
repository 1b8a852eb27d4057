// The metrics types every part shares. The daemon owns the one registry (daemon/metrics.ts, Prometheus
// through prom-client) and hands a MetricsRegistry to the parts it assembles (the p2p host, the chain
// client), the way it hands them a ComponentLogger; a part never imports another part's registry.
// Metric names are `sdte_<part>_<what>` with Prometheus' unit suffixes (docs/guide.md, "Metrics").

export type MetricLabels = Record<string, string>

export interface Counter {
  inc: (labels?: MetricLabels, value?: number) => void
}

export interface Histogram {
  observe: (labels: MetricLabels, value: number) => void
}

export interface Gauge {
  set: (labels: MetricLabels, value: number) => void
}

/**
 * Makes (or returns the already made) metric of a name. A part makes its metrics once, when it is
 * built; `collect` of a gauge runs at each scrape and sets its current values.
 */
export interface MetricsRegistry {
  counter: (name: string, help: string, labelNames?: readonly string[]) => Counter
  histogram: (name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) => Histogram
  gauge: (name: string, help: string, labelNames: readonly string[], collect?: (g: Gauge) => void | Promise<void>) => Gauge
}

/** The registry of a part used on its own (tests, benchmarks) when nobody hands it one: records nothing. */
export const noMetrics: MetricsRegistry = {
  counter: () => ({ inc: () => {} }),
  histogram: () => ({ observe: () => {} }),
  gauge: () => ({ set: () => {} })
}
