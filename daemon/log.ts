// Namespaced component loggers: `logger('sdte:p2p')` gives { error, warn, info, debug, trace }.
// Levels come from SDTE_LOG (a level: error|warn|info|debug|trace, default info) and from DEBUG-style
// namespace patterns in SDTE_DEBUG or DEBUG (`sdte:*`, `sdte:p2p,sdte:rpc`, `-sdte:rpc` to exclude,
// `libp2p:*` for libp2p's own lines): a namespace matched there logs at debug and below.
//
// One pipeline: our lines and libp2p's (the p2p host hands libp2p a logger made from componentLogger,
// p2p/host/logger.ts) go to stderr and, with --log-file, to a rotating file (log-file.ts), either as
// `<iso time> <level> <namespace> <message> <json context>` (format human) or as one JSON object a
// line, {"time","level","ns","msg",...context} (format json).
//
// Never pass a secret (keys, seller data, buyer code, plaintext results) into a logger; `redact()`
// below is the last guard, it drops any context field whose name says it is secret.
//
// The daemon hands `componentLogger` to the parts it assembles (p2p host, enclave host, demand
// validator); those parts know only the types in config/logging.ts.
import { isLogLevel, type ComponentLogger, type LogFormat, type LogLevel, type Logger } from '../config/index.ts'
import { RotatingLogFile, type LogFileOptions } from './log-file.ts'

export { isLogLevel, type LogLevel, type Logger, type ComponentLogger }

const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 }

interface LogSettings { level: LogLevel, include: RegExp[], exclude: RegExp[], format: LogFormat, sink: (line: string) => void, file: RotatingLogFile | null }

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
  format: 'human',
  sink: (line) => { process.stderr.write(line + '\n') },
  file: null
}

/**
 * Sets the global level and, optionally, DEBUG-style namespace patterns (e.g. from CLI flags), the
 * line format and the log file (null: none; a file already open is closed).
 */
export function configureLogging (opts: { level?: LogLevel, debug?: string, format?: LogFormat, sink?: (line: string) => void, file?: LogFileOptions | null }): void {
  if (opts.level !== undefined) settings.level = opts.level
  if (opts.debug !== undefined) Object.assign(settings, parsePatterns(opts.debug))
  if (opts.format !== undefined) settings.format = opts.format
  if (opts.sink !== undefined) settings.sink = opts.sink
  if (opts.file !== undefined) {
    settings.file?.close()
    settings.file = opts.file === null ? null : new RotatingLogFile(opts.file)
  }
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

function line (namespace: string, level: LogLevel, msg: string, ctx: Record<string, unknown> | undefined): string {
  const time = new Date().toISOString()
  const fields = ctx === undefined ? undefined : redact(ctx)
  if (settings.format === 'json') {
    const obj: Record<string, unknown> = { time, level, ns: namespace, msg }
    // Context fields never overwrite the line's own.
    for (const [k, v] of Object.entries(fields ?? {})) if (!(k in obj)) obj[k] = v
    return JSON.stringify(obj)
  }
  return `${time} ${level.padEnd(5)} ${namespace} ${msg}${fields === undefined ? '' : ' ' + JSON.stringify(fields)}`
}

export function logger (namespace: string): Logger {
  const at = (level: LogLevel) => (msg: string, ctx?: Record<string, unknown>) => {
    if (!enabled(namespace, level)) return
    const text = line(namespace, level, msg, ctx)
    settings.sink(text)
    settings.file?.write(text)
  }
  return {
    namespace,
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    enabled: (level) => enabled(namespace, level)
  }
}

/** The daemon's loggers as the component logger its parts are handed. */
export const componentLogger: ComponentLogger = { forComponent: logger }
