// The logging types every part shares. The daemon owns the one logger implementation (daemon/log.ts)
// and hands a ComponentLogger to the parts it assembles (the p2p host, the enclave host, the demand
// validator), the way libp2p hands its components a `logger`; a part never reaches for a global logger.

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace'

/** How a line is written: `human` (time level namespace message {context}) or `json` (one object a line). */
export type LogFormat = 'human' | 'json'
export const LOG_FORMATS: readonly LogFormat[] = ['human', 'json']

/** The levels, most severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace']

export function isLogLevel (s: unknown): s is LogLevel {
  return typeof s === 'string' && (LOG_LEVELS as readonly string[]).includes(s)
}

/** One component's logger. Never pass a secret (keys, seller data, buyer code, results) in `ctx`. */
export interface Logger {
  error: (msg: string, ctx?: Record<string, unknown>) => void
  warn: (msg: string, ctx?: Record<string, unknown>) => void
  info: (msg: string, ctx?: Record<string, unknown>) => void
  debug: (msg: string, ctx?: Record<string, unknown>) => void
  trace: (msg: string, ctx?: Record<string, unknown>) => void
  /** Whether a line of this level would be written: lets a caller skip building a costly one. */
  enabled: (level: LogLevel) => boolean
  namespace: string
}

/** Makes a component's logger from its namespace (`sdte:p2p`); what a part is handed. */
export interface ComponentLogger {
  forComponent: (namespace: string) => Logger
}

/** The logger of a part used on its own (tests, benchmarks) when nobody hands it one: drops every line. */
export const silentLogger: ComponentLogger = {
  forComponent: (namespace) => {
    const drop = (): void => {}
    return { namespace, error: drop, warn: drop, info: drop, debug: drop, trace: drop, enabled: () => false }
  }
}
