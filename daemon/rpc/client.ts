// The control API client: finds a daemon through its datadir (`api` holds the URL, `api-token` the
// bearer token, `api-token-readonly` the read-only one) and calls methods. `sdte rpc` and the tests use it.
import { SdteError } from '../../config/index.ts'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { RpcError, type RpcErrorObject } from './errors.ts'
import { toJson } from './server.ts'

export const API_FILE = 'api'
export const API_TOKEN_FILE = 'api-token'
/** The read-only token: read methods only (daemon/rpc/server.ts), for a monitor that must not change anything. */
export const API_TOKEN_READONLY_FILE = 'api-token-readonly'

export class DaemonNotRunningError extends SdteError {
  override name = 'DaemonNotRunningError'
  override code = 'ERR_DAEMON_NOT_RUNNING'
}

export class RpcClient {
  readonly url: string
  private readonly token: string
  private nextId = 1
  private readonly timeoutMs: number

  constructor (url: string, token: string, opts: { timeoutMs?: number } = {}) {
    this.url = url
    this.token = token
    this.timeoutMs = opts.timeoutMs ?? 300_000
  }

  /** A client of the daemon in `datadir`; with `readOnly`, holding its read-only token. */
  static fromDatadir (datadir: string, opts: { timeoutMs?: number, readOnly?: boolean } = {}): RpcClient {
    let url: string
    let token: string
    try {
      url = readFileSync(join(datadir, API_FILE), 'utf8').trim()
      token = readFileSync(join(datadir, opts.readOnly === true ? API_TOKEN_READONLY_FILE : API_TOKEN_FILE), 'utf8').trim()
    } catch {
      throw new DaemonNotRunningError(`no daemon API found in ${datadir} (is the daemon running with --datadir ${datadir}?)`)
    }
    return new RpcClient(url, token, opts)
  }

  async call<T = unknown> (method: string, params?: unknown[] | Record<string, unknown>): Promise<T> {
    let res: Response
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
        body: toJson({ jsonrpc: '2.0', id: this.nextId++, method, ...(params !== undefined && { params }) }),
        signal: AbortSignal.timeout(this.timeoutMs)
      })
    } catch (err) {
      throw new DaemonNotRunningError(`cannot reach the daemon at ${this.url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`)
    }
    const text = await res.text()
    if (res.status !== 200) throw new RpcError(-32000 - res.status, `HTTP ${res.status}: ${text}`, { name: 'HttpError', status: res.status })
    const body = JSON.parse(text) as { result?: T, error?: RpcErrorObject }
    if (body.error !== undefined) throw RpcError.fromJSON(body.error)
    return body.result as T
  }
}
