import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RpcServer } from '../../../daemon/rpc/server.ts'
import { RpcClient } from '../../../daemon/rpc/client.ts'
import { RpcError, appError } from '../../../daemon/rpc/errors.ts'
import { integer } from '../../../daemon/rpc/results.ts'
import { weiDigits } from '../../../daemon/rpc/params.ts'
import { AbiCoder } from 'ethers'
import { ChainRevertError } from '../../../contracts/client.ts'
import { DialFailedError, NoTopicPeersError, StreamTimeoutError } from '../../../p2p/errors.ts'
import { QuoteSignatureError } from '../../../enclave/quote.ts'

const TOKEN = 'test-token-0123456789'
const READ_ONLY_TOKEN = 'test-read-only-token-0123456789'
let server: RpcServer
let url: string
let counter = 0

async function post (body: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }, method = 'POST'): Promise<{ status: number, json: any }> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json', ...headers }, body: method === 'GET' ? undefined : body })
  const text = await res.text()
  return { status: res.status, json: text === '' ? null : JSON.parse(text) }
}

test.before(async () => {
  server = new RpcServer({
    host: '127.0.0.1', port: 0, token: TOKEN, readOnlyToken: READ_ONLY_TOKEN, maxBodyBytes: 1024, maxBatchLength: 4, requestTimeoutMs: 5000, version: 'test'
  })
  server.register({
    name: 'test_add',
    summary: 'adds',
    params: [{ name: 'a', type: 'integer', description: 'a' }, { name: 'b', type: 'integer', description: 'b', required: false }],
    result: integer('sum'),
    errors: [],
    handler: (p) => {
      // The params type is inferred from the declaration: a required integer, an optional one.
      const a: number = p.a
      const b: number | undefined = p.b
      // @ts-expect-error: not a declared param
      void p.c
      counter++
      return a + (b ?? 0)
    }
  })
  server.register({ name: 'test_boom', summary: 'throws', params: [], result: {}, errors: [], handler: () => { throw new Error('secret detail') } })
  server.register({ name: 'test_missing', summary: 'app error', params: [], result: {}, errors: ['NotFound'], handler: () => { throw appError('NotFound', 'no such thing') } })
  server.register({ name: 'test_revert', summary: 'a mapped error', params: [], result: {}, errors: [], handler: () => { throw new ChainRevertError('DTMC', 'finalize', 'SomeRevert', []) } })
  server.register({ name: 'test_dial', summary: 'a p2p error', params: [], result: {}, errors: [], handler: () => { throw new DialFailedError('no route') } })
  server.register({ name: 'test_topic', summary: 'a p2p error', params: [], result: {}, errors: [], handler: () => { throw new NoTopicPeersError('/sdte/debug/x') } })
  server.register({ name: 'test_frame', summary: 'a p2p error without its own row', params: [], result: {}, errors: [], handler: () => { throw new StreamTimeoutError('read', 10) } })
  server.register({ name: 'test_quote', summary: 'a subclass', params: [], result: {}, errors: [], handler: () => { throw new QuoteSignatureError('not the root') } })
  server.register({ name: 'test_wei', summary: 'wei', params: [{ name: 'v', type: 'wei', description: '' }], result: {}, errors: [], handler: (p) => p.v * 2n })
  server.register({
    name: 'test_narrowWei',
    summary: 'encodes a uint96',
    params: [{ name: 'v', type: 'wei', bits: 96, description: '' }],
    result: {},
    errors: [],
    handler: (p) => AbiCoder.defaultAbiCoder().decode(['uint96'], AbiCoder.defaultAbiCoder().encode(['uint96'], [p.v]))[0] as bigint
  })
  server.register({ name: 'test_read', summary: 'reads', params: [], result: {}, errors: [], readOnly: true, handler: () => 'read' })
  url = await server.start()
})

test.after(async () => { await server.stop() })

test('listens on loopback only', () => {
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
})

test('a good call, by position and by name; bigints come back as decimal strings', async () => {
  const client = new RpcClient(url, TOKEN)
  assert.is(await client.call('test_add', [2, 3]), 5)
  assert.is(await client.call('test_add', { a: 4 }), 4)
  assert.is(await client.call('test_wei', ['123456789012345678901234567890']), '246913578024691357802469135780')
})

test('no token and wrong token: HTTP 401, nothing runs', async () => {
  const before = counter
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params: [1] })
  assert.is((await post(body, {})).status, 401)
  assert.is((await post(body, { authorization: `Bearer ${TOKEN}x` })).status, 401)
  assert.is((await post(body, { authorization: 'Basic abc' })).status, 401)
  assert.is(counter, before)
})

test('GET: HTTP 405', async () => {
  const r = await post('', { authorization: `Bearer ${TOKEN}` }, 'GET')
  assert.is(r.status, 405)
})

test('malformed JSON: -32700', async () => {
  const r = await post('{"jsonrpc": "2.0", ')
  assert.is(r.status, 200)
  assert.is(r.json.error.code, -32700)
  assert.is(r.json.id, null)
})

test('invalid requests: -32600', async () => {
  for (const body of ['42', '"x"', JSON.stringify({ id: 1, method: 'test_add' }), JSON.stringify({ jsonrpc: '2.0', id: 1, method: 5 }), JSON.stringify({ jsonrpc: '2.0', id: {}, method: 'test_add' }), '[]']) {
    const r = await post(body)
    assert.is(r.json.error.code, -32600, body)
  }
})

test('unknown method: -32601 with a stable name', async () => {
  const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'nope_nothing' }))
  assert.is(r.json.id, 7)
  assert.is(r.json.error.code, -32601)
  assert.is(r.json.error.data.name, 'MethodNotFound')
})

test('wrong param types: -32602 naming the param', async () => {
  const cases: Array<[unknown, string]> = [[['x'], 'a'], [{ a: 1, b: 'two' }, 'b'], [{}, 'a'], [{ a: 1, c: 2 }, 'c'], [[1, 2, 3], '(params)'], [{ a: 1.5 }, 'a'], [{ a: null }, 'a'], [{ a: 1, b: null }, 'b'], [[1, null], 'b'], [{ a: '1' }, 'a']]
  for (const [params, param] of cases) {
    const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params }))
    assert.is(r.json.error.code, -32602, JSON.stringify(params))
    assert.is(r.json.error.data.param, param)
  }
  const w = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_wei', params: ['-1'] }))
  assert.is(w.json.error.code, -32602)
  // Every bad param is listed, so that a client fixes them all at once.
  const all = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params: { b: 'x', c: 1 } }))
  assert.equal(all.json.error.data.params.map((b: { param: string }) => b.param).sort(), ['a', 'b', 'c'])
})

test('params that is not an array or an object (null, a string, a number) is not a JSON-RPC 2.0 request: -32600', async () => {
  const before = counter
  for (const params of [null, 'str', 5, true]) {
    const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params }))
    assert.is(r.json.error.code, -32600, JSON.stringify(params))
  }
  assert.is(counter, before)
})

test('the Bearer scheme is case-insensitive (RFC 7235); the token is not', async () => {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params: [1] })
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    assert.is((await post(body, { authorization: `${scheme} ${TOKEN}` })).json.result, 1, scheme)
  }
  assert.is((await post(body, { authorization: `Bearer\t${TOKEN}` })).json.result, 1, 'a tab separates too')
  assert.is((await post(body, { authorization: `Bearer ${TOKEN.toUpperCase()}` })).status, 401)
  assert.is((await post(body, { authorization: `Bearer${TOKEN}` })).status, 401)
  assert.is((await post(body, { authorization: `Bearer ${TOKEN} extra` })).status, 401)
})

test('wei params: a value the schema allows always fits its width (no -32603 overflow); one digit more is -32602', async () => {
  const client = new RpcClient(url, TOKEN)
  const max = '9'.repeat(weiDigits(256))
  assert.is(weiDigits(256), 77)
  assert.is(weiDigits(96), 28)
  assert.is(weiDigits(64), 19)
  // The handler ABI-encodes the value in its width, as the roles do on the way to the contracts.
  assert.is(await client.call('test_narrowWei', ['9'.repeat(28)]), '9'.repeat(28))
  assert.is(await client.call('test_wei', [max]), (BigInt(max) * 2n).toString())
  for (const [method, v] of [['test_wei', '1' + '0'.repeat(77)], ['test_narrowWei', '9'.repeat(29)], ['test_wei', '1'.repeat(78)], ['test_wei', ''], ['test_wei', 12]] as const) {
    const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: [v] }))
    assert.is(r.json.error?.code, -32602, `${method} ${String(v).length} digits`)
  }
})

test('the read-only token calls read methods only; a write method answers -32009 Forbidden and does not run', async () => {
  const ro = new RpcClient(url, READ_ONLY_TOKEN)
  assert.is(await ro.call('test_read', []), 'read')
  assert.is((await ro.call<any>('rpc_discover')).openrpc, '1.2.6')
  const before = counter
  try {
    await ro.call('test_add', [1])
    assert.unreachable('a write method ran with the read-only token')
  } catch (err) {
    assert.instance(err, RpcError)
    assert.is((err as RpcError).code, -32009)
    assert.is((err as RpcError).data?.name, 'Forbidden')
    assert.match((err as RpcError).message, /test_add needs the full token/)
  }
  assert.is(counter, before)
  assert.is(await new RpcClient(url, TOKEN).call('test_read', []), 'read', 'the full token calls read methods too')
  assert.throws(() => new RpcServer({ host: '127.0.0.1', port: 0, token: 't', readOnlyToken: 't', maxBodyBytes: 1, maxBatchLength: 1, requestTimeoutMs: 1, version: 'x' }), /must differ/)
})

test('handler exceptions: -32603 without the detail; app errors keep their code and name', async () => {
  const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_boom' }))
  assert.is(r.json.error.code, -32603)
  assert.not.match(JSON.stringify(r.json), /secret detail/)
  const m = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'test_missing' }))
  assert.is(m.json.error.code, -32001)
  assert.is(m.json.error.data.name, 'NotFound')
  try {
    await new RpcClient(url, TOKEN).call('test_missing')
    assert.unreachable()
  } catch (err) {
    assert.instance(err, RpcError)
    assert.is((err as RpcError).data?.name, 'NotFound')
  }
})

test('errors in the error table answer with their application code, name and code', async () => {
  const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'test_revert' }))
  assert.is(r.json.error.code, -32005)
  assert.is(r.json.error.data.name, 'ChainReverted')
  assert.is(r.json.error.data.error, 'SomeRevert')
  assert.is(r.json.error.data.code, 'ERR_CHAIN_REVERTED')
  const cases: Array<[string, number, string, string]> = [
    ['test_dial', -32006, 'PeerUnreachable', 'DialFailedError'],
    ['test_topic', -32007, 'Unavailable', 'NoTopicPeersError'],
    ['test_frame', -32006, 'PeerUnreachable', 'StreamTimeoutError'],
    ['test_quote', -32008, 'Rejected', 'QuoteSignatureError']
  ]
  for (const [method, code, name, error] of cases) {
    const e = (await post(JSON.stringify({ jsonrpc: '2.0', id: 4, method }))).json.error
    assert.is(e.code, code, method)
    assert.is(e.data.name, name, method)
    assert.is(e.data.error, error, method)
    assert.match(e.data.code, /^ERR_[A-Z_]+$/, method)
  }
})

test('oversized body: HTTP 413', async () => {
  const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params: { a: 1, pad: 'x'.repeat(2000) } }))
  assert.is(r.status, 413)
})

test('batches: mixed good and junk answered one by one; too long refused; notifications get no answer', async () => {
  const before = counter
  const r = await post(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'test_add', params: [1, 1] }, 17, { jsonrpc: '1.0', id: 3, method: 'test_add' }, { jsonrpc: '2.0', method: 'test_add', params: [1] }]))
  assert.is(r.json.length, 3)
  assert.is(r.json[0].result, 2)
  assert.is(r.json[1].error.code, -32600)
  assert.is(r.json[2].error.code, -32600)
  assert.is(counter, before + 2, 'the good call and the notification ran')
  const long = await post(JSON.stringify(Array.from({ length: 5 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'test_add', params: [1] }))))
  assert.is(long.json.error.code, -32600)
  assert.is(counter, before + 2, 'nothing of a too-long batch ran')
  const n = await post(JSON.stringify({ jsonrpc: '2.0', method: 'test_add', params: [1] }))
  assert.is(n.status, 204)
})

test('rpc_discover lists every method with its params', async () => {
  const doc = await new RpcClient(url, TOKEN).call<any>('rpc_discover')
  assert.is(doc.openrpc, '1.2.6')
  const names = doc.methods.map((m: { name: string }) => m.name)
  assert.equal(names, ['rpc_discover', 'test_add', 'test_boom', 'test_dial', 'test_frame', 'test_missing', 'test_narrowWei', 'test_quote', 'test_read', 'test_revert', 'test_topic', 'test_wei'])
  const add = doc.methods.find((m: { name: string }) => m.name === 'test_add')
  assert.equal(add.params.map((p: { name: string, required: boolean }) => [p.name, p.required]), [['a', true], ['b', false]])
  assert.equal(add.result, { name: 'result', description: 'sum', schema: { type: 'integer', description: 'sum' } })
  // Every method lists the errors it may answer: -32602 when it takes params, -32009 unless it is a read method.
  assert.equal(add.errors, [{ code: -32602, message: 'InvalidParams' }, { code: -32009, message: 'Forbidden' }])
  assert.is(add['x-read-only'], false)
  const missing = doc.methods.find((m: { name: string }) => m.name === 'test_missing')
  assert.equal(missing.errors, [{ code: -32009, message: 'Forbidden' }, { code: -32001, message: 'NotFound' }])
  const read = doc.methods.find((m: { name: string }) => m.name === 'test_read')
  assert.equal(read.errors, [])
  assert.is(read['x-read-only'], true)
  // The served param schema carries every limit the server applies.
  assert.equal(add.params[0].schema, { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER })
  const discover = doc.methods.find((m: { name: string }) => m.name === 'rpc_discover')
  assert.equal(discover.result.schema.required, ['openrpc', 'info', 'methods'])
})

test('a param schema with a keyword the server does not check cannot be registered (it would be served but not enforced)', () => {
  const s = new RpcServer({ host: '127.0.0.1', port: 0, token: 't', maxBodyBytes: 1, maxBatchLength: 1, requestTimeoutMs: 1, version: 'x' })
  const register = (schema: Record<string, unknown>): void => s.register({ name: 'test_x', summary: '', params: [{ name: 'o', type: 'object', schema, description: '' }], result: {}, errors: [], handler: () => null })
  assert.throws(() => register({ type: 'object', properties: { when: { type: 'string', format: 'date-time' } } }), /keyword format is not checked/)
  assert.throws(() => register({ type: 'object', patternProperties: {} }), /keyword patternProperties/)
  register({ type: 'object', properties: { n: { type: 'integer', minimum: 0 } }, additionalProperties: false })
})

test('still answers after all of that', async () => {
  assert.is(await new RpcClient(url, TOKEN).call('test_add', [40, 2]), 42)
})

test.run()
