// libp2p's logs go through the daemon's logger: libp2p is handed a `logger` component made from the
// ComponentLogger the host was handed, so its lines share our sinks, levels, formats and namespace
// patterns (`SDTE_DEBUG=libp2p:*`). libp2p logs debug-style, `log('dialing %a', addr)`, mostly about
// routine network events (a failed dial is `log.error`): all of it is written at our debug level
// (trace for `log.trace`), so it shows only when asked for.
import { inspect } from 'node:util'
import type { ComponentLogger } from '../../config/index.ts'
import type { ComponentLogger as Libp2pComponentLogger, Logger as Libp2pLogger } from '@libp2p/interface'

const INSPECT = { depth: 2, breakLength: Infinity } as const

function asText (v: unknown): string {
  if (typeof v === 'string') return v
  if (v instanceof Error) return `${v.name}: ${v.message}`
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  // Peer ids, multiaddrs and CIDs print themselves; plain objects and arrays are inspected.
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && (v as object).toString !== Object.prototype.toString) return String(v)
  return inspect(v, INSPECT)
}

/** Renders a debug-style line: %s %d %o %O %j and libp2p's own %p (peer) %a (multiaddr) %b %t %c %k %e %m. */
export function renderLibp2pLine (formatter: unknown, args: unknown[]): string {
  if (typeof formatter !== 'string') return [formatter, ...args].map(asText).join(' ')
  let i = 0
  const line = formatter.replace(/%([a-zA-Z%])/g, (m, c: string) => {
    if (c === '%') return '%'
    if (i >= args.length) return m
    const v = args[i++]
    if (c === 'd' || c === 'i') return String(Number(v))
    if (c === 'o' || c === 'O' || c === 'j') return inspect(v, INSPECT)
    return asText(v)
  })
  return [line, ...args.slice(i).map(asText)].join(' ')
}

export function libp2pLogger (ours: ComponentLogger): Libp2pComponentLogger {
  const forComponent = (name: string): Libp2pLogger => {
    const l = ours.forComponent(name)
    const at = (level: 'debug' | 'trace') => (formatter: unknown, ...args: unknown[]): void => {
      if (l.enabled(level)) l[level](renderLibp2pLine(formatter, args))
    }
    const log = Object.assign(at('debug'), {
      error: at('debug'),
      trace: at('trace'),
      newScope: (scope: string) => forComponent(`${name}:${scope}`)
    })
    // libp2p reads `enabled` before building a costly line.
    Object.defineProperty(log, 'enabled', { get: () => l.enabled('debug'), enumerable: true })
    return log as Libp2pLogger
  }
  return { forComponent }
}
