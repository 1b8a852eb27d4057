// The control API: JSON-RPC 2.0 over HTTP POST on 127.0.0.1, behind a bearer token.
// Limits: request body size (413), batch length (-32600), per-request timeout. A bad request gets
// its HTTP status or JSON-RPC error and changes nothing; a handler's unexpected exception becomes
// -32603 with the details in the log only; the errors a handler may let escape on purpose answer
// with their application code through one table (RPC_ERROR_TABLE in errors.ts). Methods are added
// with `register()` and their param schema; `rpc_discover` returns the OpenRPC document of every
// registered method, and each param's schema there is the one its request is checked against
// (params.ts schemaOf, schema.ts validate). Two tokens: the full one (DIR/api-token) calls every method;
// the read-only one (DIR/api-token-readonly) only the methods declared `readOnly`, which neither change
// state nor reveal secrets (as geth and Kubo scope theirs).
// A GET is answered only from `pages` (the dashboard, daemon/dashboard/): static files with the
// daemon's data in none of them, their script asking the API with the token as any client does.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { logger } from '../log.ts'
import type { RpcOptions } from '../../config/index.ts'
import { APP_ERRORS, RPC_INVALID_PARAMS, RpcError, appError, invalidRequest, methodNotFound, parseError, internalError, rpcErrorOf, type AppErrorName } from './errors.ts'
import { checkParams, describeParam, type ParamSpec, type ParamsOf } from './params.ts'
import { object, array, string, integer, boolean, type JsonSchema } from './results.ts'
import { assertSupported } from './schema.ts'

const log = logger('sdte:rpc')

export interface RpcServerOptions {
  /** Loopback only (config/rpc-defaults.ts RPC_HOST; config.json cannot change it). */
  host: RpcOptions['host']
  port: number
  token: string
  /** The read-only token: read methods only (undefined: none). */
  readOnlyToken?: string
  maxBodyBytes: number
  maxBatchLength: number
  requestTimeoutMs: number
  version: string
  /** A better answer than -32601 for a method this daemon does not serve (e.g. its role is not enabled). */
  unknownMethod?: (method: string) => RpcError | undefined
  /** Files answered to GET by URL path (the dashboard), with `pageHeaders` on each. */
  pages?: ReadonlyMap<string, { contentType: string, body: Buffer }>
  pageHeaders?: Readonly<Record<string, string>>
}

export interface MethodContext { signal: AbortSignal }

/**
 * One control API method, declared once: its params (the handler's params type is inferred from
 * them), the JSON Schema of its result and the application errors it may answer, all three served
 * by rpc_discover. Register it with `rpc.register({ ... })`; `params` needs no annotation.
 */
export interface MethodDef<P extends readonly ParamSpec[] = readonly ParamSpec[]> {
  name: string
  summary: string
  params: P
  /** What the handler returns, as JSON (results.ts helpers); `description` says it in words. */
  result: JsonSchema
  /** The application errors (daemon/rpc/errors.ts APP_ERRORS) this method may answer, besides the standard ones. */
  errors: readonly AppErrorName[]
  /** True for a method that neither changes state nor reveals secrets: the read-only token may call it. Default false. */
  readOnly?: boolean
  handler: (params: ParamsOf<P>, ctx: MethodContext) => Promise<unknown> | unknown
}

/** A registered method, its params type erased (the server checks params before calling). */
interface AnyMethodDef extends Omit<MethodDef, 'handler'> {
  handler: (params: any, ctx: MethodContext) => Promise<unknown> | unknown
}

/** Which token a request came with. */
export type Access = 'full' | 'read'

/** The JSON Schema of a JSON Schema as rpc_discover serves them (daemon/rpc/schema.ts subset). */
const SCHEMA_OBJECT = object({}, { description: 'a JSON Schema' })

/** The OpenRPC method object rpc_discover serves for each method. */
const METHOD_OBJECT = object({
  name: string(),
  summary: string(),
  paramStructure: { type: 'string', enum: ['either'] },
  params: array(object({ name: string(), description: string(), required: boolean(), schema: SCHEMA_OBJECT })),
  result: object({ name: string(), description: string(), schema: SCHEMA_OBJECT }),
  errors: array(object({ code: integer(), message: string() })),
  'x-read-only': boolean('the read-only token (api-token-readonly) may call it')
})

interface Request { jsonrpc: '2.0', id?: string | number | null, method: string, params?: unknown }
type Response = { jsonrpc: '2.0', id: string | number | null, result: unknown } | { jsonrpc: '2.0', id: string | number | null, error: object }

function isValidId (id: unknown): id is string | number | null {
  return id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))
}

/** JSON with bigints as decimal strings and bytes as 0x-hex. */
export function toJson (value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Uint8Array) return '0x' + Buffer.from(v).toString('hex')
    return v
  })
}

export class RpcServer {
  private readonly options: RpcServerOptions
  private readonly methods = new Map<string, AnyMethodDef>()
  private server: Server | null = null
  private url = ''
  private readonly token: Buffer
  private readonly readOnlyToken: Buffer | null

  constructor (options: RpcServerOptions) {
    this.options = options
    this.token = Buffer.from(options.token)
    this.readOnlyToken = options.readOnlyToken === undefined ? null : Buffer.from(options.readOnlyToken)
    if (this.readOnlyToken?.equals(this.token) === true) throw new Error('the read-only token must differ from the full token')
    this.register({
      name: 'rpc_discover',
      summary: 'The OpenRPC document of every method this daemon serves.',
      params: [],
      result: object({
        openrpc: string('1.2.6'),
        info: object({ title: string(), version: string() }),
        methods: array(METHOD_OBJECT)
      }, { description: 'an OpenRPC 1.2 document' }),
      errors: [],
      readOnly: true,
      handler: () => this.openRpcDocument()
    })
  }

  register<const P extends readonly ParamSpec[]> (def: MethodDef<P>): void {
    if (this.methods.has(def.name)) throw new Error(`method ${def.name} registered twice`)
    if (!/^[a-z]+_[A-Za-z]+$/.test(def.name)) throw new Error(`method name ${def.name} is not namespace_method`)
    // Only what the validator checks may be served as a param's schema, or the two could disagree.
    for (const p of def.params) assertSupported(describeParam(p).schema as JsonSchema, `${def.name}/${p.name}`)
    this.methods.set(def.name, def)
  }

  methodNames (): string[] { return [...this.methods.keys()].sort() }

  openRpcDocument (): object {
    return {
      openrpc: '1.2.6',
      info: { title: 'sdte control API', version: this.options.version },
      methods: this.methodNames().map(name => {
        const m = this.methods.get(name)!
        return {
          name,
          summary: m.summary,
          paramStructure: 'either',
          params: m.params.map(describeParam),
          result: { name: 'result', description: m.result.description ?? '', schema: m.result },
          errors: [
            ...(m.params.length > 0 ? [{ code: RPC_INVALID_PARAMS, message: 'InvalidParams' }] : []),
            ...(m.readOnly === true ? [] : [{ code: APP_ERRORS.Forbidden, message: 'Forbidden' }]),
            ...m.errors.map(e => ({ code: APP_ERRORS[e], message: e }))
          ],
          'x-read-only': m.readOnly === true
        }
      })
    }
  }

  async start (): Promise<string> {
    const server = createServer((req, res) => { void this.onRequest(req, res) })
    server.requestTimeout = this.options.requestTimeoutMs
    server.headersTimeout = Math.min(this.options.requestTimeoutMs, 30_000)
    server.maxHeadersCount = 64
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.options.port, this.options.host, () => { server.off('error', reject); resolve() })
    })
    this.server = server
    const addr = server.address() as AddressInfo
    this.url = `http://${this.options.host}:${addr.port}/`
    log.info('control API listening', { url: this.url })
    return this.url
  }

  get address (): string { return this.url }

  async stop (): Promise<void> {
    const server = this.server
    if (server === null) return
    this.server = null
    await new Promise<void>(resolve => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }

  /** Which token the request carries, or null. The auth scheme is case-insensitive (RFC 7235 section 2.1). */
  private access (req: IncomingMessage): Access | null {
    const header = req.headers.authorization
    const m = typeof header === 'string' ? /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null
    if (m === null) return null
    const given = Buffer.from(m[1])
    if (given.length === this.token.length && timingSafeEqual(given, this.token)) return 'full'
    const ro = this.readOnlyToken
    if (ro !== null && given.length === ro.length && timingSafeEqual(given, ro)) return 'read'
    return null
  }

  private send (res: ServerResponse, status: number, body: string | null, headers: Record<string, string> = {}): void {
    if (res.headersSent) return
    res.writeHead(status, { ...(body !== null && { 'content-type': 'application/json' }), ...headers })
    res.end(body ?? undefined)
  }

  /**
   * A GET of a page. Only under the names the server is bound to: a page that a web site's name
   * resolving to 127.0.0.1 (DNS rebinding) brought the browser to is refused, so that no other
   * origin ever gets the dashboard's script to run as this one.
   */
  private servePage (req: IncomingMessage, res: ServerResponse, pages: NonNullable<RpcServerOptions['pages']>): void {
    req.resume()
    const port = (this.server?.address() as AddressInfo | null)?.port
    const host = req.headers.host
    if (host !== `${this.options.host}:${port}` && host !== `localhost:${port}`) {
      this.send(res, 403, toJson({ error: `the dashboard answers at http://${this.options.host}:${port}/ only` }))
      return
    }
    const page = pages.get(new URL(req.url ?? '/', 'http://localhost').pathname)
    if (page === undefined) {
      this.send(res, 404, toJson({ error: 'no such page (the dashboard is at /)' }))
      return
    }
    res.writeHead(200, { ...this.options.pageHeaders, 'content-type': page.contentType, 'content-length': String(page.body.length) })
    res.end(req.method === 'HEAD' ? undefined : page.body)
  }

  private async onRequest (req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const pages = this.options.pages
      if ((req.method === 'GET' || req.method === 'HEAD') && pages !== undefined) {
        this.servePage(req, res, pages)
        return
      }
      if (req.method !== 'POST') {
        const allow = pages !== undefined ? 'GET, HEAD, POST' : 'POST'
        this.send(res, 405, toJson({ error: `the control API accepts ${allow} only` }), { allow })
        req.resume()
        return
      }
      const access = this.access(req)
      if (access === null) {
        this.send(res, 401, toJson({ error: 'missing or wrong bearer token (see <datadir>/api-token)' }), { 'www-authenticate': 'Bearer' })
        req.resume()
        return
      }
      const declared = Number(req.headers['content-length'] ?? 0)
      if (declared > this.options.maxBodyBytes) {
        this.send(res, 413, toJson({ error: `request body over ${this.options.maxBodyBytes} bytes` }), { connection: 'close' })
        req.destroy()
        return
      }
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of req) {
        size += (chunk as Buffer).length
        if (size > this.options.maxBodyBytes) {
          this.send(res, 413, toJson({ error: `request body over ${this.options.maxBodyBytes} bytes` }), { connection: 'close' })
          req.destroy()
          return
        }
        chunks.push(chunk as Buffer)
      }
      const body = await this.handleBody(Buffer.concat(chunks).toString('utf8'), access)
      if (body === null) this.send(res, 204, null)
      else this.send(res, 200, body)
    } catch (err) {
      log.error('control API request failed', { err: err as Error })
      this.send(res, 500, toJson({ error: 'internal error' }))
    }
  }

  /** Handles one HTTP body: a request or a batch. Returns the response text, or null if nothing is due. */
  async handleBody (text: string, access: Access): Promise<string | null> {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      return toJson({ jsonrpc: '2.0', id: null, error: parseError((err as Error).message).toJSON() })
    }
    if (Array.isArray(parsed)) {
      if (parsed.length === 0) return toJson({ jsonrpc: '2.0', id: null, error: invalidRequest('empty batch').toJSON() })
      if (parsed.length > this.options.maxBatchLength) {
        return toJson({ jsonrpc: '2.0', id: null, error: invalidRequest(`batch of ${parsed.length} over the limit of ${this.options.maxBatchLength}`).toJSON() })
      }
      const responses = (await Promise.all(parsed.map(async r => await this.handleOne(r, access)))).filter((r): r is Response => r !== null)
      return responses.length === 0 ? null : toJson(responses)
    }
    const response = await this.handleOne(parsed, access)
    return response === null ? null : toJson(response)
  }

  private async handleOne (raw: unknown, access: Access): Promise<Response | null> {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      return { jsonrpc: '2.0', id: null, error: invalidRequest('a request must be a JSON object').toJSON() }
    }
    const r = raw as Partial<Request> & Record<string, unknown>
    const id = isValidId(r.id) ? r.id : null
    if (r.jsonrpc !== '2.0') return { jsonrpc: '2.0', id, error: invalidRequest('"jsonrpc" must be "2.0"').toJSON() }
    if ('id' in r && !isValidId(r.id)) return { jsonrpc: '2.0', id: null, error: invalidRequest('"id" must be a string, a number or null').toJSON() }
    if (typeof r.method !== 'string' || r.method === '') return { jsonrpc: '2.0', id, error: invalidRequest('"method" must be a string').toJSON() }
    // JSON-RPC 2.0 section 4.2: params, when present, is a structured value (an array or an object).
    if ('params' in r && (r.params === null || typeof r.params !== 'object')) return { jsonrpc: '2.0', id, error: invalidRequest('"params" must be an array or an object when present').toJSON() }
    const isNotification = !('id' in r)
    try {
      const method = this.methods.get(r.method)
      if (method === undefined) throw this.options.unknownMethod?.(r.method) ?? methodNotFound(r.method.slice(0, 100))
      if (access === 'read' && method.readOnly !== true) {
        throw appError('Forbidden', `${r.method} needs the full token (<datadir>/api-token): the read-only token calls read methods only`, { method: r.method })
      }
      const params = checkParams(method.params, r.params)
      const signal = AbortSignal.timeout(this.options.requestTimeoutMs)
      const result = await method.handler(params, { signal })
      return isNotification ? null : { jsonrpc: '2.0', id, result: result ?? null }
    } catch (err) {
      if (isNotification) return null
      const mapped = rpcErrorOf(err)
      if (mapped !== undefined) return { jsonrpc: '2.0', id, error: mapped.toJSON() }
      log.error('method failed', { method: r.method, err: err as Error })
      return { jsonrpc: '2.0', id, error: internalError().toJSON() }
    }
  }
}
