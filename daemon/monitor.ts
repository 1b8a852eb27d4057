// The monitoring server (--metrics): GET /metrics (Prometheus text), GET /health and GET /ready. It is
// not the control API: no token, because it answers nothing that needs one. /health says the process
// answers; /ready whether the daemon can do its work (started, p2p listening, chain reachable, enclave
// up). Both answer only a status code and one word: which check failed, versions, addresses and peers
// stay out of them (the logs and /metrics say more, to whom the operator shows them). Listens on
// loopback unless told otherwise (options.metrics.host).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A /ready answer is reused this long: a flood of probes costs one chain call a second, not one each. */
export const READY_CACHE_MS = 1000
/** How long /ready waits for its checks (the chain, the enclave) before it answers not ready. */
export const READY_TIMEOUT_MS = 2000
/** Bounds of a monitoring request: it has no body, and a slow client is dropped. */
export const MONITOR_REQUEST_TIMEOUT_MS = 10_000
export const MONITOR_MAX_HEADER_BYTES = 8 * 1024
/** Concurrent connections the monitoring server keeps open (scrapers and probes are few). */
export const MONITOR_MAX_CONNECTIONS = 64

export interface MonitorOptions {
  host: string
  port: number
  /** The Prometheus exposition, or null when metrics are not collected. */
  metrics: (() => Promise<{ contentType: string, body: string }>) | null
  /** Whether the daemon is ready; a throw counts as not ready. */
  ready: () => Promise<boolean>
}

export class MonitorServer {
  private readonly options: MonitorOptions
  private readonly server: Server
  private cached: { at: number, ready: Promise<boolean> } | null = null
  url = ''

  constructor (options: MonitorOptions) {
    this.options = options
    this.server = createServer({ maxHeaderSize: MONITOR_MAX_HEADER_BYTES, requestTimeout: MONITOR_REQUEST_TIMEOUT_MS }, (req, res) => {
      this.handle(req, res).catch(() => { if (!res.headersSent) reply(res, 500, 'error') })
    })
    this.server.maxConnections = MONITOR_MAX_CONNECTIONS
    this.server.headersTimeout = MONITOR_REQUEST_TIMEOUT_MS
  }

  async start (): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    const a = this.server.address() as AddressInfo
    this.url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
    return this.url
  }

  async stop (): Promise<void> {
    await new Promise<void>(resolve => {
      this.server.close(() => { resolve() })
      this.server.closeAllConnections()
    })
  }

  private async isReady (): Promise<boolean> {
    const now = Date.now()
    if (this.cached === null || now - this.cached.at >= READY_CACHE_MS) {
      this.cached = { at: now, ready: this.options.ready().catch(() => false) }
    }
    return await this.cached.ready
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume()
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return reply(res, 405, 'method not allowed')
    }
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/health') return reply(res, 200, 'ok')
    if (path === '/ready') return (await this.isReady()) ? reply(res, 200, 'ready') : reply(res, 503, 'not ready')
    if (path === '/metrics' && this.options.metrics !== null) {
      const { contentType, body } = await this.options.metrics()
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : body)
      return
    }
    reply(res, 404, 'not found')
  }
}

function reply (res: ServerResponse, status: number, word: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
  res.end(word + '\n')
}
