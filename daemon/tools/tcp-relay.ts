// A small TCP relay for testnets: forwards each connection it accepts to a target, holding every
// chunk for a fixed delay in each direction (this kernel has no netem) and, optionally, cutting a
// connection after a random number of bytes (a lossy link seen from TCP: a reset, not a retransmit).
// Endpoints are `HOST:PORT` or a Unix socket path (anything with a `/`), so the same relay also
// carries a namespaced daemon's control API out of its network namespace (Unix sockets live in the
// filesystem, which namespaces share).
//
// A relay in front of a daemon makes every inbound connection come from the relay's own address,
// which a daemon holds against its peers (gossipsub's IP colocation score, libp2p's per-host inbound
// rate): with `sourcePrefix` the relay connects from PREFIX.<last byte of the inbound peer's IPv4>
// instead, one local address per remote host (the namespace harness adds them, netns.ts).
//
// As a process (run inside a namespace with `ip netns exec NS`), one relay or several:
//   node daemon/tools/tcp-relay.ts LISTEN TARGET [--delay-ms N] [--cut-probability P] [--source-prefix A.B.C] [--delay-file F] [--and LISTEN TARGET ...]
// It prints `listening` once all accept connections; on SIGUSR2 each relay with --delay-file takes
// its new delay from that file (and it prints `delay set`).
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { readFileSync, rmSync } from 'node:fs'

/** Bytes held in a relay's delay line per direction before it stops reading the sender (backpressure). */
export const TCP_RELAY_MAX_QUEUED_BYTES = 4 * 1024 * 1024

export interface TcpRelayOptions {
  listen: string
  target: string
  /** Held for this long in each direction. Default 0. */
  delayMs?: number
  /** Chance (0..1) that a connection is cut after a random number of bytes, at most CUT_WITHIN_BYTES. Default 0. */
  cutProbability?: number
  /** (As a process) a file holding the delay in ms, read again on SIGUSR2: the delay of a running network changes. */
  delayFile?: string
  /** Connect to the target from `${sourcePrefix}.<last byte of the inbound peer's IPv4 address>` (a local address). */
  sourcePrefix?: string
}

/** A cut connection dies within this many bytes. */
export const CUT_WITHIN_BYTES = 64 * 1024

export class TcpRelayOptionsError extends Error {
  override name = 'TcpRelayOptionsError'
}

function endpoint (spec: string): { path: string } | { host: string, port: number } {
  if (spec.includes('/')) return { path: spec }
  const m = /^(.+):(\d{1,5})$/.exec(spec)
  if (m === null || Number(m[2]) > 65535) throw new TcpRelayOptionsError(`not HOST:PORT or a socket path: ${spec}`)
  return { host: m[1], port: Number(m[2]) }
}

/**
 * One direction of a relayed connection, delayed; cuts both sockets once `budget` bytes have passed.
 * Chunks wait in one line, each due at max(the previous one's due, its arrival + the delay), so the
 * stream keeps its order when the delay changes while the relay runs (setTcpRelayDelay).
 */
function delayedPipe (from: Socket, to: Socket, delay: { ms: number }, budget: { left: number }, cut: () => void): void {
  let queued = 0
  const line: Array<{ due: number, chunk: Buffer | null }> = []
  let timer: ReturnType<typeof setTimeout> | null = null
  const flush = (): void => {
    timer = null
    // Timers may fire up to a millisecond early.
    const now = performance.now() + 1
    while (line.length > 0 && line[0].due <= now) {
      const { chunk } = line.shift()!
      if (chunk === null) { to.end(); continue }
      queued -= chunk.length
      if (!to.destroyed) to.write(chunk)
    }
    if (queued <= TCP_RELAY_MAX_QUEUED_BYTES && from.isPaused()) from.resume()
    if (line.length > 0) timer = setTimeout(flush, line[0].due - performance.now())
  }
  const push = (chunk: Buffer | null): void => {
    const due = Math.max(line.at(-1)?.due ?? 0, performance.now() + delay.ms)
    line.push({ due, chunk })
    timer ??= setTimeout(flush, due - performance.now())
  }
  from.on('data', (chunk: Buffer) => {
    budget.left -= chunk.length
    if (budget.left < 0) { cut(); return }
    queued += chunk.length
    if (queued > TCP_RELAY_MAX_QUEUED_BYTES) from.pause()
    push(chunk)
  })
  from.on('end', () => push(null))
}

/** The current delay of each relay started here. */
const relayDelays = new WeakMap<Server, { ms: number }>()

/** Changes a running relay's delay (ms, each direction); chunks already waiting keep their due time. */
export function setTcpRelayDelay (server: Server, delayMs: number): void {
  const delay = relayDelays.get(server)
  if (delay === undefined) throw new TcpRelayOptionsError('not a relay started here')
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new TcpRelayOptionsError('delayMs must be >= 0')
  delay.ms = delayMs
}

/** Starts a relay in this process; resolves once it listens. */
export async function startTcpRelay (o: TcpRelayOptions): Promise<Server> {
  const delayMs = o.delayMs ?? 0
  const cutProbability = o.cutProbability ?? 0
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new TcpRelayOptionsError('delayMs must be >= 0')
  if (!(cutProbability >= 0 && cutProbability <= 1)) throw new TcpRelayOptionsError('cutProbability must be in 0..1')
  const target = endpoint(o.target)
  const listen = endpoint(o.listen)
  const sourcePrefix = o.sourcePrefix
  if (sourcePrefix !== undefined && !/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(sourcePrefix)) throw new TcpRelayOptionsError(`sourcePrefix must be A.B.C: ${sourcePrefix}`)
  const delay = { ms: delayMs }
  const server = createServer(inbound => {
    const lastByte = /(\d{1,3})$/.exec(inbound.remoteAddress ?? '')?.[1]
    const outbound = createConnection({ ...target, ...(sourcePrefix !== undefined && lastByte !== undefined && { localAddress: `${sourcePrefix}.${lastByte}` }) })
    const budget = { left: Math.random() < cutProbability ? Math.floor(Math.random() * CUT_WITHIN_BYTES) : Infinity }
    const cut = (): void => { inbound.resetAndDestroy(); outbound.resetAndDestroy() }
    inbound.on('error', () => outbound.destroy())
    outbound.on('error', () => inbound.destroy())
    inbound.on('close', () => setTimeout(() => outbound.destroy(), delay.ms))
    outbound.on('close', () => setTimeout(() => inbound.destroy(), delay.ms))
    delayedPipe(inbound, outbound, delay, budget, cut)
    delayedPipe(outbound, inbound, delay, budget, cut)
  })
  relayDelays.set(server, delay)
  if ('path' in listen) rmSync(listen.path, { force: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    if ('path' in listen) server.listen(listen.path, resolve)
    else server.listen(listen.port, listen.host, resolve)
  })
  return server
}

/** The relays one command line asks for: `LISTEN TARGET [options]`, groups separated by `--and`. */
export function parseTcpRelayArgs (argv: string[]): TcpRelayOptions[] {
  const groups: string[][] = [[]]
  for (const a of argv) {
    if (a === '--and') groups.push([])
    else groups[groups.length - 1].push(a)
  }
  return groups.map(([listen, target, ...rest]) => {
    if (listen === undefined || target === undefined || listen.startsWith('--') || target.startsWith('--')) throw new TcpRelayOptionsError('each relay is LISTEN TARGET [options]')
    const str = (name: string): string | undefined => {
      const i = rest.indexOf(name)
      return i >= 0 ? rest[i + 1] : undefined
    }
    const num = (name: string): number | undefined => {
      const v = str(name)
      return v !== undefined ? Number(v) : undefined
    }
    return { listen, target, delayMs: num('--delay-ms'), cutProbability: num('--cut-probability'), sourcePrefix: str('--source-prefix'), delayFile: str('--delay-file') }
  })
}

/** The command-line arguments of one relay (parseTcpRelayArgs reads them back). */
export function tcpRelayArgs (o: TcpRelayOptions): string[] {
  return [o.listen, o.target, '--delay-ms', String(o.delayMs ?? 0), '--cut-probability', String(o.cutProbability ?? 0), ...(o.sourcePrefix !== undefined ? ['--source-prefix', o.sourcePrefix] : []), ...(o.delayFile !== undefined ? ['--delay-file', o.delayFile] : [])]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let relays: TcpRelayOptions[]
  try {
    relays = parseTcpRelayArgs(process.argv.slice(2))
  } catch {
    process.stderr.write('usage: node daemon/tools/tcp-relay.ts LISTEN TARGET [--delay-ms N] [--cut-probability P] [--source-prefix A.B.C] [--delay-file F] [--and LISTEN TARGET ...]\n')
    process.exit(2)
  }
  // Several relays in one process: each Node process costs about 65 MB resident.
  const servers = new Map<Server, string>()
  for (const r of relays) {
    const server = await startTcpRelay(r)
    if (r.delayFile !== undefined) servers.set(server, r.delayFile)
  }
  process.on('SIGUSR2', () => {
    for (const [server, file] of servers) {
      try { setTcpRelayDelay(server, Number(readFileSync(file, 'utf8').trim())) } catch (err) { process.stderr.write(`delay not changed: ${(err as Error).message}\n`) }
    }
    process.stdout.write('delay set\n')
  })
  process.stdout.write('listening\n')
  process.on('SIGTERM', () => process.exit(0))
}
