// Namespaced component loggers: `logger('sdte:p2p')` gives { error, warn, info, debug, trace }.
// Levels come from SDTE_LOG (a level: error|warn|info|debug|trace, default info) and from DEBUG-style
// namespace patterns in SDTE_DEBUG or DEBUG (`sdte:*`, `sdte:p2p,sdte:rpc`, `-sdte:rpc` to exclude):
// a namespace matched there logs at debug and below. Lines go to stderr as
// `<iso time> <level> <namespace> <message> <json context>`.
//
// Never pass a secret (keys, seller data, buyer code, plaintext results) into a logger; `redact()`
// below is the last guard, it drops any context field whose name says it is secret.

//
// The daemon hands `componentLogger` to the parts it assembles (p2p host, enclave host, demand
// validator); those parts know only the types in config/logging.ts.
import { isLogLevel, type ComponentLogger, type LogLevel, type Logger } from '../config/index.ts'

export { isLogLevel, type LogLevel, type Logger, type ComponentLogger }

const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 }

interface LogSettings { level: LogLevel, include: RegExp[], exclude: RegExp[], sink: (line: string) => void }

function patternToRegExp (p: string): RegExp {
  return new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$')
}

function parsePatterns (spec: string | undefined): { include: RegExp[], exclude: RegExp[] } {
  const include: RegExp[] = []
  const exclude: RegExp[] = []
  for (const raw of (spec ?? '').split(/[\s,]+/)) {
    if (raw === '') continue
    if (raw.startsWith('-')) exclude.push(patternToRegExp(raw.slice(1)))
    else include.push(patternToRegExp(raw))
  }
  return { include, exclude }
}

const settings: LogSettings = {
  level: isLogLevel(process.env.SDTE_LOG) ? process.env.SDTE_LOG : 'info',
  ...parsePatterns(process.env.SDTE_DEBUG ?? process.env.DEBUG),
  sink: (line) => { process.stderr.write(line + '\n') }
}

/** Sets the global level and, optionally, DEBUG-style namespace patterns (e.g. from CLI flags). */
export function configureLogging (opts: { level?: LogLevel, debug?: string, sink?: (line: string) => void }): void {
  if (opts.level !== undefined) settings.level = opts.level
  if (opts.debug !== undefined) Object.assign(settings, parsePatterns(opts.debug))
  if (opts.sink !== undefined) settings.sink = opts.sink
}

const SECRET_FIELD = /key|secret|password|token|mnemonic|plaintext|data$|code$|result$/i

/** Drops context fields whose names say they hold a secret; stringifies bigints and bytes briefly. */
export function redact (ctx: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(ctx)) {
    if (SECRET_FIELD.test(k) && !/hash|id$|size|count|length|path$/i.test(k)) { out[k] = '[redacted]'; continue }
    if (typeof v === 'bigint') out[k] = v.toString()
    else if (v instanceof Uint8Array) out[k] = `<${v.length} bytes>`
    else if (v instanceof Error) out[k] = `${v.name}: ${v.message}`
    else out[k] = v
  }
  return out
}

function enabled (namespace: string, level: LogLevel): boolean {
  if (settings.exclude.some(r => r.test(namespace))) return LEVELS[level] <= LEVELS.warn
  if (LEVELS[level] <= LEVELS[settings.level]) return true
  return level === 'debug' && settings.include.some(r => r.test(namespace))
}

export function logger (namespace: string): Logger {
  const at = (level: LogLevel) => (msg: string, ctx?: Record<string, unknown>) => {
    if (!enabled(namespace, level)) return
    const extra = ctx === undefined ? '' : ' ' + JSON.stringify(redact(ctx))
    settings.sink(`${new Date().toISOString()} ${level.padEnd(5)} ${namespace} ${msg}${extra}`)
  }
  return { namespace, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), trace: at('trace') }
}

/** The daemon's loggers as the component logger its parts are handed. */
export const componentLogger: ComponentLogger = { forComponent: logger }
