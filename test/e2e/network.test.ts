// Three daemons as separate processes on loopback, each with a fresh datadir, bootstrapped from the
// first: they see each other, a DHT key provided by one is found by another, a gossip message
// published by one reaches the other two; the API refuses bad input and keeps answering; a daemon
// restarted on its datadir keeps its peer id and Ethereum address; a second daemon on a datadir is refused.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDaemon, runCli, waitFor, type DaemonProcess } from '../helpers/daemon-process.ts'
import { datasetKey } from '../../p2p/dht-keys.ts'

const FAST_KEYS = { keys: { scryptN: 1024 } }
/** Generous: a loaded CI machine starts a daemon in seconds, but not always. */
const START_TIMEOUT_MS = 90_000
const root = mkdtempSync(join(tmpdir(), 'sdte-net-'))
const daemons: DaemonProcess[] = []
interface Info { peerId: string, addresses: string[], ethAddress: string, roles: string[] }
interface Peer { peerId: string, addresses: string[] }
const infos: Info[] = []

test.before(async () => {
  try {
    const first = await startDaemon(join(root, 'd0'), { config: FAST_KEYS, args: ['--role', 'relay'], timeoutMs: START_TIMEOUT_MS })
    daemons.push(first)
    infos.push(await first.rpc.call<Info>('admin_info'))
    const boot = infos[0].addresses[0]
    const rest = await Promise.all([1, 2].map(async i => await startDaemon(join(root, `d${i}`), { config: FAST_KEYS, args: ['--role', 'relay', '--bootstrap', boot], timeoutMs: START_TIMEOUT_MS })))
    daemons.push(...rest)
    for (const d of rest) infos.push(await d.rpc.call<Info>('admin_info'))
  } catch (err) {
    // uvu does not print a failing hook's error: say it here.
    console.error('setup failed:', err)
    throw err
  }
})

test.after(async () => {
  await Promise.all(daemons.map(async d => await d.stop('SIGKILL')))
  rmSync(root, { recursive: true, force: true })
})

test('admin_info: identity, roles and dialable addresses', () => {
  assert.equal(infos.map(i => i.roles), [['relay'], ['relay'], ['relay']])
  assert.is(new Set(infos.map(i => i.peerId)).size, 3)
  for (const i of infos) {
    assert.match(i.ethAddress, /^0x[0-9a-fA-F]{40}$/)
    assert.ok(i.addresses.length > 0 && i.addresses.every(a => a.startsWith('/ip4/127.0.0.1/tcp/') && a.endsWith(`/p2p/${i.peerId}`)), i.addresses.join())
  }
})

test('bootstrapped peers see the first; admin_connect through the CLI joins the other two', async () => {
  for (const i of [1, 2]) {
    await waitFor(`d${i} to see d0`, async () => (await daemons[i].rpc.call<Peer[]>('admin_peers')).some(p => p.peerId === infos[0].peerId))
  }
  const cli = await runCli(['rpc', '--datadir', daemons[1].datadir, 'admin_connect', JSON.stringify([infos[2].addresses[0]])])
  assert.is(cli.code, 0, cli.stderr)
  assert.is(JSON.parse(cli.stdout).peerId, infos[2].peerId)
  for (const [a, b] of [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]) {
    await waitFor(`d${a} to see d${b}`, async () => (await daemons[a].rpc.call<Peer[]>('admin_peers')).some(p => p.peerId === infos[b].peerId))
  }
})

test('DHT: a key provided by one daemon is found by another', async () => {
  const key = datasetKey('weather-2026')
  const provide = await runCli(['rpc', '--datadir', daemons[1].datadir, 'net_provide', JSON.stringify({ key })])
  assert.is(provide.code, 0, provide.stderr)
  const found = await waitFor('provider record', async () => {
    const cli = await runCli(['rpc', '--datadir', daemons[2].datadir, 'net_findProviders', JSON.stringify({ key })])
    if (cli.code !== 0) throw new Error(cli.stderr)
    const providers = JSON.parse(cli.stdout) as Peer[]
    return providers.find(p => p.peerId === infos[1].peerId)
  }, 30_000, 500)
  assert.ok(found.addresses.length > 0, 'the provider comes with addresses')
  const none = await daemons[0].rpc.call<Peer[]>('net_findProviders', { key: datasetKey('nobody-has-this') })
  assert.equal(none, [])
})

test('gossip: a message published by one reaches the other two', async () => {
  const topic = '/sdte/debug/chat'
  for (const d of daemons) await d.rpc.call('net_subscribe', { topic })
  // Give gossipsub a heartbeat or two to exchange subscriptions and build its mesh.
  await waitFor('mesh', async () => {
    await new Promise(resolve => setTimeout(resolve, 1500))
    return true
  })
  const pub = await runCli(['rpc', '--datadir', daemons[0].datadir, 'net_publish', JSON.stringify({ topic, message: 'hello from d0' })])
  assert.is(pub.code, 0, pub.stderr)
  for (const i of [1, 2]) {
    const msgs = await waitFor(`d${i} to receive`, async () => {
      const m = await daemons[i].rpc.call<Array<{ from: string, data: string }>>('net_messages', { topic })
      return m.length > 0 ? m : undefined
    }, 15_000, 200)
    assert.is(msgs[0].data, 'hello from d0')
    assert.is(msgs[0].from, infos[0].peerId)
  }
})

test('bad input to a live daemon gets its status or error, and the daemon still answers', async () => {
  const url = readFileSync(join(daemons[0].datadir, 'api'), 'utf8').trim()
  const token = readFileSync(join(daemons[0].datadir, 'api-token'), 'utf8').trim()
  const post = async (body: string, auth: string | null = token, method = 'POST'): Promise<{ status: number, json: any }> => {
    const res = await fetch(url, { method, headers: { ...(auth !== null && { authorization: `Bearer ${auth}` }), 'content-type': 'application/json' }, body: method === 'POST' ? body : undefined })
    const text = await res.text()
    return { status: res.status, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text }
  }
  assert.is((await post('{"jsonrpc":"2.0","id":1,"method":"admin_info"}', null)).status, 401)
  assert.is((await post('{"jsonrpc":"2.0","id":1,"method":"admin_info"}', 'wrong')).status, 401)
  assert.is((await post('', token, 'PUT')).status, 405)
  assert.is((await post('{not json')).json.error.code, -32700)
  assert.is((await post('{"jsonrpc":"2.0","id":1,"method":"admin_nothing"}')).json.error.code, -32601)
  const badParams = (await post('{"jsonrpc":"2.0","id":1,"method":"admin_connect","params":[42]}')).json.error
  assert.is(badParams.code, -32602)
  assert.is(badParams.data.param, 'multiaddr')
  assert.is((await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'admin_info', params: { pad: 'x'.repeat(2 * 1024 * 1024) } }))).status, 413)
  const junk = (await post('[1, "two", null, {"jsonrpc":"2.0"}]')).json
  assert.is(junk.length, 4)
  assert.ok(junk.every((r: any) => r.error.code === -32600))
  const roleOff = (await post('{"jsonrpc":"2.0","id":1,"method":"seller_addDataset","params":{}}')).json.error
  assert.is(roleOff.code, -32003, 'a method of a role this daemon does not run')
  assert.is(roleOff.data.name, 'RoleNotEnabled')
  assert.match(roleOff.message, /--role seller/)
  const unreachable = (await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'admin_connect', params: ['/ip4/127.0.0.1/tcp/1/p2p/12D3KooWNC161G6vDx8PzVEhq1CKXZMULgZFxoXnjs2hrp5sR3jT'] }))).json.error
  assert.is(unreachable.data.name, 'PeerUnreachable')
  const cli = await runCli(['rpc', '--datadir', daemons[0].datadir, 'admin_info', '{oops'])
  assert.is(cli.code, 2)
  assert.match(cli.stderr, /params must be JSON/)
  const info = await daemons[0].rpc.call<Info>('admin_info')
  assert.is(info.peerId, infos[0].peerId)
})

test('a second daemon on a datadir in use is refused with a clear message', async () => {
  const second = await runCli(['daemon', '--datadir', daemons[2].datadir])
  assert.is(second.code, 1)
  assert.match(second.stderr, /in use by another sdte daemon/)
  assert.ok(existsSync(join(daemons[2].datadir, 'api')), 'the running daemon was not disturbed')
  await daemons[2].rpc.call('admin_info')
})

test('a trading role without a network is refused with a clear message', async () => {
  const r = await runCli(['daemon', '--datadir', join(root, 'no-network'), '--role', 'seller'])
  assert.is(r.code, 1)
  assert.match(r.stderr, /seller role needs a network: --network FILE/)
})

test('restart: admin_shutdown stops gracefully; the same datadir gives the same peer id and address', async () => {
  const d = daemons[2]
  const cli = await runCli(['rpc', '--datadir', d.datadir, 'admin_shutdown'])
  assert.is(cli.code, 0, cli.stderr)
  assert.is(await d.exited, 0)
  assert.not.ok(existsSync(join(d.datadir, 'api')), 'api file removed on stop')
  const again = await startDaemon(d.datadir, { args: ['--role', 'relay', '--bootstrap', infos[0].addresses[0]], timeoutMs: START_TIMEOUT_MS })
  daemons[2] = again
  const info = await again.rpc.call<Info>('admin_info')
  assert.is(info.peerId, infos[2].peerId)
  assert.is(info.ethAddress, infos[2].ethAddress)
})

test('SIGTERM stops a daemon gracefully with exit code 0', async () => {
  const code = await daemons[1].stop('SIGTERM')
  assert.is(code, 0, daemons[1].output())
  assert.match(daemons[1].output(), /sdte daemon stopped/)
})

test.run()
