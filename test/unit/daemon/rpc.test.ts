import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RpcServer } from '../../../daemon/rpc/server.ts'
import { RpcClient } from '../../../daemon/rpc/client.ts'
import { RpcError, appError } from '../../../daemon/rpc/errors.ts'
import { integer } from '../../../daemon/rpc/results.ts'
import { ChainRevertError } from '../../../contracts/client.ts'
import { DialFailedError, NoTopicPeersError, StreamTimeoutError } from '../../../p2p/errors.ts'
import { QuoteSignatureError } from '../../../enclave/quote.ts'

const TOKEN = 'test-token-0123456789'
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
    host: '127.0.0.1', port: 0, token: TOKEN, maxBodyBytes: 1024, maxBatchLength: 4, requestTimeoutMs: 5000, version: 'test'
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
  const cases: Array<[unknown, string]> = [[['x'], 'a'], [{ a: 1, b: 'two' }, 'b'], [{}, 'a'], [{ a: 1, c: 2 }, 'c'], [[1, 2, 3], '(params)'], ['str', '(params)'], [{ a: 1.5 }, 'a']]
  for (const [params, param] of cases) {
    const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params }))
    assert.is(r.json.error.code, -32602, JSON.stringify(params))
    assert.is(r.json.error.data.param, param)
  }
  const w = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_wei', params: ['-1'] }))
  assert.is(w.json.error.code, -32602)
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
  assert.equal(names, ['rpc_discover', 'test_add', 'test_boom', 'test_dial', 'test_frame', 'test_missing', 'test_quote', 'test_revert', 'test_topic', 'test_wei'])
  const add = doc.methods.find((m: { name: string }) => m.name === 'test_add')
  assert.equal(add.params.map((p: { name: string, required: boolean }) => [p.name, p.required]), [['a', true], ['b', false]])
  assert.equal(add.result, { name: 'result', description: 'sum', schema: { type: 'integer', description: 'sum' } })
  assert.equal(add.errors, [])
  const missing = doc.methods.find((m: { name: string }) => m.name === 'test_missing')
  assert.equal(missing.errors, [{ code: -32001, message: 'NotFound' }])
  const discover = doc.methods.find((m: { name: string }) => m.name === 'rpc_discover')
  assert.equal(discover.result.schema.required, ['openrpc', 'info', 'methods'])
})

test('still answers after all of that', async () => {
  assert.is(await new RpcClient(url, TOKEN).call('test_add', [40, 2]), 42)
})

test.run()
