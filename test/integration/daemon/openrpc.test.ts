// rpc_discover tells the truth, checked from outside as a client generator would: the OpenRPC
// document of each role validates with @open-rpc/schema-utils-js, every method lists its errors and
// has a real result schema, and every param is probed with values generated from its served schema.
// Which of those the schema allows is decided by schema-utils' own validator (ajv), never by this
// test; the daemon must agree: a value ajv allows is never the reason for -32602, one it forbids is.
// The probes run no handler (each request also carries an unknown param, so it fails validation
// whatever the probed value), so a write method's probes change nothing; the read methods then run
// once with allowed values and must answer without -32602 or -32603, their results valid against
// their schemas. Two real daemons: one with buyer, seller and node roles on a devnet, one relay
// without a network.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { startDaemon, waitNodeBooted, type DaemonProcess } from '../../helpers/daemon-process.ts'
import { devnetDown, devnetUp } from '../../../contracts/tools/index.ts'
import { computeMeasurement } from '../../../enclave/measurement.ts'
import { RpcClient, API_TOKEN_READONLY_FILE } from '../../../daemon/rpc/client.ts'
import { RpcError } from '../../../daemon/rpc/errors.ts'

// Through require, untyped: the package's types are .ts sources that fail this project's noUnusedLocals.
const openrpc = createRequire(import.meta.url)('@open-rpc/schema-utils-js') as {
  validateOpenRPCDocument: (doc: unknown) => true | Error
  MethodCallValidator: new (doc: unknown) => { validate: (method: string, params: unknown) => unknown, ajvValidator: { validate: (schema: unknown, v: unknown) => boolean } }
}
const { MethodCallValidator, validateOpenRPCDocument } = openrpc

const dir = mkdtempSync(join(tmpdir(), 'sdte-openrpc-'))
const CONFIG = { keys: { scryptN: 1024 } }
/** A param nobody declares: every probe request carries it, so that no handler runs. */
const PROBE = 'xProbe'
/** Longest string a probe sends (the control API's body limit is far above it; a 2 MiB hex is not). */
const MAX_PROBE_LENGTH = 100_000

type Schema = Record<string, any>
interface Method { name: string, params: Array<{ name: string, required: boolean, schema: Schema }>, result: { schema: Schema }, errors: Array<{ code: number, message: string }>, 'x-read-only': boolean }
interface Doc { openrpc: string, methods: Method[] }

let all: DaemonProcess
let relay: DaemonProcess

test.before(async () => {
  const network = join(dir, 'devnet', 'network.json')
  await devnetUp({ dir: join(dir, 'devnet'), measurements: [computeMeasurement()] })
  ;[all, relay] = await Promise.all([
    startDaemon(join(dir, 'all'), { args: ['--role', 'buyer,seller,node', '--network', network], config: CONFIG, timeoutMs: 60_000 }),
    startDaemon(join(dir, 'relay'), { args: ['--role', 'relay'], config: CONFIG, timeoutMs: 60_000 })
  ])
  await waitNodeBooted(all, 60_000) // node_enclave answers its result, not Unavailable
})

test.after(async () => {
  await Promise.all([all?.stop(), relay?.stop()])
  await devnetDown(join(dir, 'devnet'))
  rmSync(dir, { recursive: true, force: true })
})

/** Strings that match the patterns the control API uses, and strings that nearly do. A new pattern needs a row. */
const PATTERN_SAMPLES: Record<string, { near: string[], far: string[] }> = {
  '^0x([0-9a-fA-F]{2})*$': { near: ['0x', '0x00', '0xAbCd', '0x' + 'ff'.repeat(32)], far: ['0x0', '00', '0xzz', 'abc', '0x 00'] },
  '^0x[0-9a-fA-F]{40}$': { near: ['0x' + 'aB'.repeat(20), '0x' + '00'.repeat(20)], far: ['0x' + 'a'.repeat(39), '0x' + 'a'.repeat(41), '0x' + 'g'.repeat(40), 'a'.repeat(42)] },
  '^0x[0-9a-fA-F]{64}$': { near: ['0x' + '1F'.repeat(32)], far: ['0x' + '1'.repeat(63), '0x' + '1'.repeat(65), '0x' + 'z'.repeat(64), '1'.repeat(66)] },
  '^[A-Za-z0-9._-]{1,64}$': { near: ['a', 'weather.v2_x-1', 'x'.repeat(64)], far: ['x'.repeat(65), 'has space', 'slash/tag', 'é'] },
  '^sdte:[a-z][a-z0-9-]*:[\\x21-\\x7e]+$': { near: ['sdte:dataset:weather', 'sdte:node:0xee', 'sdte:a:' + '!'.repeat(249)], far: ['sdte:Dataset:x', 'sdte:dataset:', 'sdte:dataset:a b', 'other:dataset:x', 'sdte:dataset:é'] },
  '^\\/sdte\\/debug\\/[A-Za-z0-9._-]{1,64}$': { near: ['/sdte/debug/chat', '/sdte/debug/' + 'x'.repeat(64)], far: ['/sdte/debug/', '/sdte/bdbc/1', '/sdte/debug/a b', '/sdte/debug/' + 'x'.repeat(65)] },
  '^-?[0-9]{1,19}$': { near: ['0', '-5', '9'.repeat(19), '-' + '9'.repeat(19)], far: ['9'.repeat(20), '--1', '1.5', '+1', '-', ' 1', '0x10'] },
  '^/': { near: ['/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzh8bKQBUAvNmNNM2vPwZ3R5EucR1WfZ3TgDfbBqfxV9', '/'], far: ['ip4/127.0.0.1/tcp/1', ' /ip4', ''] }
}

function stringsFor (s: Schema): unknown[] {
  const out: unknown[] = []
  const min = s.minLength ?? 0
  const max = s.maxLength as number | undefined
  if (Array.isArray(s.enum)) out.push(...s.enum, 'not-' + String(s.enum[0]), String(s.enum[0]).toUpperCase())
  const wei = typeof s.pattern === 'string' ? /^\^\[0-9\]\{1,(\d+)\}\$$/.exec(s.pattern) : null
  if (wei !== null) {
    const digits = Number(wei[1])
    out.push('0', '007', '9'.repeat(digits), '1' + '0'.repeat(digits), '9'.repeat(digits + 1), '-1', '1.5', '1e3', ' 1', '0x10')
  } else if (typeof s.pattern === 'string') {
    const samples = PATTERN_SAMPLES[s.pattern]
    assert.ok(samples !== undefined, `no probe samples for pattern ${s.pattern as string}`)
    out.push(...samples.near, ...samples.far)
  } else {
    out.push('x'.repeat(Math.max(1, min)), 'plain text')
  }
  out.push('')
  if (max !== undefined && max + 1 <= MAX_PROBE_LENGTH) {
    // At the limit and one over, counting code points as JSON Schema does (an emoji is two UTF-16 units).
    out.push('x'.repeat(max), 'x'.repeat(max + 1), '😀'.repeat(max), '😀'.repeat(max + 1))
  }
  return out
}

/** Values to probe a schema with: some it allows, some it forbids, by construction from its keywords. */
function candidates (s: Schema, depth = 0): unknown[] {
  const types: string[] = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type]
  const out: unknown[] = [null, true, 'str', 7, -1, 1.5, [], {}]
  for (const t of types) {
    if (t === 'string') out.push(...stringsFor(s))
    if (t === 'integer' || t === 'number') {
      const lo = s.minimum as number | undefined
      const hi = s.maximum as number | undefined
      out.push(0, 1, '1', 1e21, Number.MAX_SAFE_INTEGER + 2)
      if (lo !== undefined) out.push(lo, lo - 1, lo + 0.5)
      if (hi !== undefined) out.push(hi, hi + 1)
      if (lo !== undefined && hi !== undefined) out.push(Math.floor((lo + hi) / 2))
    }
    if (t === 'boolean') out.push(false, 'true', 0)
    if (t === 'array' && depth < 3) {
      const items = candidates(s.items ?? {}, depth + 1)
      out.push(...items.slice(0, 12).map(v => [v]))
      if (typeof s.maxItems === 'number') {
        const good = items.find(v => typeof v === 'string' && v.startsWith('0x') && v.length === 66) ?? items[0]
        out.push(Array(s.maxItems).fill(good), Array(s.maxItems + 1).fill(good))
      }
    }
    if (t === 'object' && depth < 3) {
      out.push({ [PROBE]: 1 })
      for (const [k, p] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
        for (const v of candidates(p, depth + 1)) out.push({ [k]: v })
      }
    }
  }
  return out
}

/** The names of the bad params a -32602 answer lists (empty for any other answer). */
async function badParams (client: RpcClient, method: string, params: Record<string, unknown>): Promise<string[]> {
  try {
    await client.call(method, params)
    return []
  } catch (err) {
    if (!(err instanceof RpcError) || err.code !== -32602) return []
    return (err.data?.params as Array<{ param: string }>).map(b => b.param)
  }
}

/** Every object schema under `s` says what it holds (properties or additionalProperties). */
function vagueObjects (s: Schema, at: string): string[] {
  if (typeof s !== 'object' || s === null) return []
  const here = s.type === 'object' && s.properties === undefined && s.additionalProperties === undefined ? [at] : []
  return [...here, ...Object.entries(s).flatMap(([k, v]) => typeof v === 'object' && v !== null ? vagueObjects(v as Schema, `${at}/${k}`) : [])]
}

async function discover (d: DaemonProcess): Promise<Doc> {
  return await d.rpc.call<Doc>('rpc_discover')
}

test('rpc_discover of every role is a valid OpenRPC document; every method lists its errors and has a real result schema', async () => {
  for (const [d, roles] of [[all, ['buyer', 'seller', 'node', 'cisc', 'chain']], [relay, []]] as const) {
    const doc = await discover(d)
    const valid = validateOpenRPCDocument(doc)
    assert.ok(valid === true, `${d.datadir}: ${valid === true ? '' : valid.message}`)
    const namespaces = new Set(doc.methods.map(m => m.name.split('_')[0]))
    for (const r of roles) assert.ok(namespaces.has(r), `${r}_* served`)
    if (d === relay) for (const r of ['buyer', 'seller', 'node', 'chain']) assert.not.ok(namespaces.has(r), `relay serves no ${r}_*`)
    for (const m of doc.methods) {
      assert.ok(Array.isArray(m.errors), m.name)
      assert.is(m.errors.some(e => e.code === -32602), m.params.length > 0, `${m.name} lists -32602 iff it takes params`)
      assert.is(m.errors.some(e => e.code === -32009), !m['x-read-only'], `${m.name} lists -32009 iff the read-only token may not call it`)
      assert.ok(Object.keys(m.result.schema).some(k => k === 'type' || k === 'oneOf' || k === 'const'), `${m.name}: its result has a schema`)
      assert.equal(vagueObjects(m.result.schema, m.name), [], `${m.name}: every object in its result says what it holds`)
    }
  }
})

test('every param of every method, probed with values its schema allows and forbids: the daemon agrees with ajv', async () => {
  let probes = 0
  for (const d of [all, relay]) {
    const doc = await discover(d)
    const ajv = new MethodCallValidator(doc)
    for (const m of doc.methods) {
      for (const p of m.params) {
        let allowed = 0
        let forbidden = 0
        for (const v of candidates(p.schema)) {
          const errors = ajv.validate(m.name, { [p.name]: v }) as Array<{ paramIndex: unknown }>
          const ajvForbids = errors.some(e => e.paramIndex === p.name)
          const bad = await badParams(d.rpc, m.name, { [p.name]: v, [PROBE]: true })
          assert.ok(bad.includes(PROBE), `${m.name}: the probe param is refused`)
          const serverForbids = bad.includes(p.name)
          assert.is(serverForbids, ajvForbids, `${m.name}.${p.name} = ${JSON.stringify(v)?.slice(0, 80)}: ajv ${ajvForbids ? 'forbids' : 'allows'} it, the daemon ${serverForbids ? 'refuses' : 'accepts'} it`)
          if (ajvForbids) forbidden++
          else allowed++
          probes++
        }
        assert.ok(allowed > 0 && forbidden > 0, `${m.name}.${p.name}: probed with both (${allowed} allowed, ${forbidden} forbidden)`)
      }
    }
  }
  assert.ok(probes > 500, `${probes} probes`)
})

test('read methods run with allowed values: no -32602, no -32603, and results valid against their served schemas', async () => {
  const doc = await discover(all)
  const ajv = new MethodCallValidator({ ...doc, methods: doc.methods.map(m => ({ ...m, paramStructure: 'by-name', params: [{ name: 'result', required: true, schema: m.result.schema }] })) })
  const reads = doc.methods.filter(m => m['x-read-only'] && m.name !== 'net_findProviders')
  assert.ok(reads.length >= 10, reads.map(m => m.name).join(', '))
  for (const m of reads) {
    const params: Record<string, unknown> = {}
    for (const p of m.params) {
      const v = candidates(p.schema).find(c => ajv.ajvValidator.validate(p.schema, c) === true && !(typeof c === 'string' && c.length > 70))
      if (p.required) params[p.name] = v
    }
    try {
      const result = await all.rpc.call(m.name, params)
      const errors = ajv.validate(m.name, { result }) as unknown[]
      assert.equal(errors, [], `${m.name}: its result matches its schema: ${JSON.stringify(result).slice(0, 300)}`)
    } catch (err) {
      assert.instance(err, RpcError, `${m.name}: ${String(err)}`)
      const code = (err as RpcError).code
      assert.ok(code !== -32602 && code !== -32603, `${m.name}: ${code} ${(err as RpcError).message}`)
      assert.ok(m.errors.some(e => e.code === code), `${m.name} answered ${code}, which it lists`)
    }
  }
})

test('docs/api.md documents every served method as rpc_discover serves it: params in order with required, application errors, read methods', async () => {
  const api = readFileSync(new URL('../../../docs/api.md', import.meta.url), 'utf8')
  const sections = new Map(api.split(/^#### /m).slice(1).map(part => [/^`(\w+)`/.exec(part)?.[1] ?? '', part]))
  const methods = new Map<string, Method>()
  for (const d of [all, relay]) for (const m of (await discover(d)).methods) methods.set(m.name, m)
  for (const m of methods.values()) {
    const doc = sections.get(m.name)
    assert.ok(doc !== undefined, `docs/api.md has a section for ${m.name}`)
    const rows = [...doc.matchAll(/^\| `(\w+)` \|.*\| (yes|no) \|[^|]*\|$/gm)].map(r => [r[1], r[2] === 'yes'])
    assert.equal(rows, m.params.map(p => [p.name, p.required]), `${m.name}: its params table`)
    const errorsLine = /^Errors: (.*)$/m.exec(doc)?.[1] ?? ''
    const documented = [...errorsLine.matchAll(/\((-320\d\d)\)/g)].map(e => Number(e[1])).sort()
    const served = m.errors.map(e => e.code).filter(c => c !== -32602 && c !== -32009).sort()
    assert.equal(documented, served, `${m.name}: its Errors line`)
  }
  const readList = /The read-only token calls only the read methods[^:]*:([\s\S]*?)\(`x-read-only/.exec(api)?.[1] ?? ''
  const documentedReads = [...readList.matchAll(/`(\w+_\w+)`/g)].map(r => r[1]).sort()
  assert.equal(documentedReads, [...methods.values()].filter(m => m['x-read-only']).map(m => m.name).sort(), 'the read methods docs/api.md lists')
})

test('the read-only token (DIR/api-token-readonly, 0600): read methods answer, write methods are refused with -32009', async () => {
  const file = join(all.datadir, API_TOKEN_READONLY_FILE)
  assert.is(statSync(file).mode & 0o777, 0o600)
  assert.is.not(readFileSync(file, 'utf8').trim(), readFileSync(join(all.datadir, 'api-token'), 'utf8').trim())
  const ro = RpcClient.fromDatadir(all.datadir, { readOnly: true })
  assert.ok(((await ro.call<{ peerId: string }>('admin_info')).peerId).length > 0)
  assert.ok(Array.isArray(await ro.call('trade_list')))
  const doc = await discover(all)
  for (const m of doc.methods.filter(m => !m['x-read-only'])) {
    try {
      await ro.call(m.name, {})
      assert.unreachable(`${m.name} ran with the read-only token`)
    } catch (err) {
      assert.instance(err, RpcError)
      assert.is((err as RpcError).code, -32009, m.name)
      assert.match((err as RpcError).message, /needs the full token/)
    }
  }
  assert.ok(((await all.rpc.call<{ peerId: string }>('admin_info')).peerId).length > 0, 'still up: admin_shutdown was refused')
})

test.run()
