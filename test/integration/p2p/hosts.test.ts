// Three real hosts in one process on loopback TCP: bootstrap from the first, gossip with a
// validator, DHT provide/find on our own /sdte/kad/1.0.0, and the echo protocol across hosts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  createP2PHost, echoProtocol, dhtKeyToCid, resolveP2PHostOptions, messageChannel,
  P2POptionsError, InvalidP2PInputError, DialFailedError, MessageSchemaError, FrameTooLargeError
} from '../../../p2p/index.ts'
import type { GossipMessage, P2PHost } from '../../../p2p/index.ts'
import { createMetrics } from '../../../daemon/metrics.ts'

const TOPIC = '/sdte/test/1'
const hosts: P2PHost[] = []

async function eventually<T> (what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

test.after(async () => {
  await Promise.allSettled(hosts.map(async h => { await h.stop() }))
})

test('options: defaults, and bad values refused before anything starts', () => {
  const o = resolveP2PHostOptions({})
  assert.equal(o.listen, ['/ip4/127.0.0.1/tcp/0'])
  assert.is(o.protocolPrefix, '/sdte')
  assert.is(o.maxConnections, 100)
  assert.throws(() => resolveP2PHostOptions({ listen: ['not an addr'] }), (e: Error) => e instanceof P2POptionsError)
  assert.throws(() => resolveP2PHostOptions({ bootstrap: ['/ip4/127.0.0.1/tcp/1'] }), (e: Error) => e instanceof P2POptionsError && /p2p/.test(e.message))
  assert.throws(() => resolveP2PHostOptions({ maxConnections: 0 }), (e: Error) => e instanceof P2POptionsError)
  assert.throws(() => resolveP2PHostOptions({ protocolPrefix: 'sdte' }), (e: Error) => e instanceof P2POptionsError)
  assert.throws(() => resolveP2PHostOptions({ nope: 1 } as any), (e: Error) => e instanceof P2POptionsError)
})

test('DHT keys map to a raw sha256 CID; malformed keys are refused', async () => {
  const a = await dhtKeyToCid('sdte:dataset:weather')
  assert.is(a.version, 1)
  assert.is(a.code, 0x55)
  assert.is(a.multihash.code, 0x12)
  assert.is(a.toString(), (await dhtKeyToCid('sdte:dataset:weather')).toString())
  assert.is.not(a.toString(), (await dhtKeyToCid('sdte:dataset:weather2')).toString())
  for (const bad of ['dataset:x', 'sdte:dataset:', 'sdte:Dataset:x', 'sdte:dataset:a b', 'sdte:dataset:' + 'x'.repeat(300)]) {
    try { await dhtKeyToCid(bad); assert.unreachable(bad) } catch (e) { assert.instance(e, InvalidP2PInputError) }
  }
})

test('three hosts: bootstrap, gossip with a validator, DHT provide/find, echo', async () => {
  // The first host is handed a metrics registry (the daemon's, Prometheus) and libp2p's metrics on it.
  const metrics = await createMetrics()
  const first = await createP2PHost({}, { privateKey: await generateKeyPair('Ed25519'), metrics: metrics.daemon.registry, libp2pMetrics: metrics.libp2p })
  hosts.push(first)
  await first.start()
  const [boot] = first.addresses()
  assert.match(boot, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
  for (let i = 0; i < 2; i++) {
    const h = await createP2PHost({ bootstrap: [boot] }, { privateKey: await generateKeyPair('Ed25519') })
    hosts.push(h)
    await h.start()
  }
  const [a, b, c] = hosts

  // Bootstrap: b and c reach a; a learns them and their listen addresses via identify.
  await eventually('a sees b and c', () => a.peers().length >= 2)
  assert.ok(b.peers().some(p => p.peerId === a.peerId))
  await eventually('identify listen addresses', () => a.peers().every(p => p.addresses.some(x => x.startsWith('/ip4/127.0.0.1/tcp/'))))
  // A star around the bootstrap host, as a fresh network starts: b and c are not connected.
  assert.not.ok(b.peers().some(p => p.peerId === c.peerId))

  // Gossip: c publishes; a and b receive. The validator rejects messages starting with "bad".
  const received = new Map<string, GossipMessage[]>()
  for (const h of hosts) {
    received.set(h.peerId, [])
    h.subscribe(TOPIC, (msg) => { received.get(h.peerId)?.push(msg) },
      (msg) => new TextDecoder().decode(msg.data).startsWith('bad') ? 'reject' : 'accept')
  }
  assert.throws(() => a.subscribe(TOPIC, () => {}), (e: Error) => e.name === 'P2PStateError')
  await eventually('subscriptions propagate', () => a.topicPeers(TOPIC).length === 2 && b.topicPeers(TOPIC).length === 1 && c.topicPeers(TOPIC).length === 1)
  const scoreBefore = a.gossipScore(c.peerId)
  await c.publish(TOPIC, new TextEncoder().encode('bad: rejected by the validator'))
  await c.publish(TOPIC, new TextEncoder().encode('hello from c'))
  await eventually('a and b get the good message', () =>
    received.get(a.peerId)?.length === 1 && received.get(b.peerId)?.length === 1)
  for (const h of [a, b]) {
    const [msg] = received.get(h.peerId) ?? []
    assert.is(msg.from, c.peerId)
    assert.is(new TextDecoder().decode(msg.data), 'hello from c')
  }
  assert.is(received.get(c.peerId)?.length, 0, 'no echo to the publisher')
  // The rejected message lowered c's score at a (a penalised the peer that sent it).
  await eventually('c penalised at a', () => a.gossipScore(c.peerId) < scoreBefore - 1, 5000)
  // The rejected message was published first on the same path: had a forwarded it, b would have it by now.
  assert.is(received.get(a.peerId)?.length, 1)
  assert.is(received.get(b.peerId)?.length, 1)
  // a counted its verdicts where it applied them, and its peers; libp2p's own metrics are on the same registry.
  const scraped = await metrics.prometheus.metrics()
  assert.match(scraped, new RegExp(`^sdte_gossip_validation_total\\{topic="${TOPIC}",verdict="reject"\\} 1$`, 'm'))
  assert.match(scraped, new RegExp(`^sdte_gossip_validation_total\\{topic="${TOPIC}",verdict="accept"\\} 1$`, 'm'))
  assert.match(scraped, /^sdte_p2p_peers 2$/m)
  assert.match(scraped, /^libp2p_connection_manager_connections\{libp2p_connection_manager_connections="inbound"\} 2$/m)
  try { await a.publish('/sdte/nobody/1', new Uint8Array(1)); assert.unreachable() } catch (e) { assert.is((e as Error).name, 'NoTopicPeersError') }
  try { await a.publish(TOPIC, new Uint8Array(a.options.maxGossipMessageBytes + 1)); assert.unreachable() } catch (e) { assert.instance(e, InvalidP2PInputError) }

  // DHT: b provides a dataset key, c finds b (and not itself or a), across the star.
  const key = 'sdte:dataset:weather-2026'
  const { announcedTo } = await b.provide(key)
  assert.ok(announcedTo >= 1, `announced to ${announcedTo}`)
  const providers = await c.findProviders(key, { timeoutMs: 15_000 })
  assert.equal(providers.map(p => p.peerId), [b.peerId])
  assert.ok(providers[0].addresses.some(x => x.startsWith('/ip4/127.0.0.1/tcp/')), 'loopback addresses kept')
  const fromA = await a.findProviders(key, { timeoutMs: 15_000 })
  assert.equal(fromA.map(p => p.peerId), [b.peerId])
  assert.equal(await a.findProviders('sdte:dataset:nobody-has-this', { timeoutMs: 1500 }), [])

  // A lone host provides before it has any peer: the record is announced once it joins.
  const d = await createP2PHost({}, { privateKey: await generateKeyPair('Ed25519') })
  hosts.push(d)
  await d.start()
  assert.equal(await d.provide('sdte:node:0xabcdef'), { announcedTo: 0 })
  await d.connect(boot)
  const late = await c.findProviders('sdte:node:0xabcdef', { timeoutMs: 15_000 })
  assert.equal(late.map(p => p.peerId), [d.peerId])

  // Echo protocol across hosts, both directions.
  const echoes = [a, b, c].map(h => echoProtocol(h))
  for (const e of echoes) await e.start()
  assert.is(echoes[0].protocol, '/sdte/echo/1')
  const r = await echoes[0].echo(c.peerId, 'ping ✓')
  assert.equal(r, { text: 'ping ✓', seenFrom: a.peerId })
  assert.equal(await echoes[2].echo(b.peerId, ''), { text: '', seenFrom: c.peerId })

  // A raw client sending a schema-invalid request gets its stream reset by the server.
  const stream = await a.dialProtocol(b.peerId, echoes[1].protocol)
  const ch = messageChannel(stream, { messageTimeoutMs: 5000 })
  await ch.write({ type: 'echo-request', id: 1, text: 'x', extra: true })
  let err: unknown
  try { await ch.readBytes() } catch (e) { err = e }
  assert.ok(err instanceof Error, 'read failed')
  assert.is(stream.status, 'reset')
  assert.not.instance(err, MessageSchemaError)
  // Oversized for the echo protocol's 16 KiB frames: refused locally by our own channel cap.
  const ch2 = messageChannel(await a.dialProtocol(b.peerId, echoes[1].protocol), { maxMessageBytes: 16 * 1024 })
  try { await ch2.write({ type: 'echo-request', id: 2, text: 'x'.repeat(20_000) }); assert.unreachable() } catch (e) { assert.instance(e, FrameTooLargeError) }
  ch2.abort(new Error('done'))

  // A handler that never answers is cut off at its deadline: the client sees its stream reset.
  await b.handle('/sdte/stall/1', async (_stream, ctx) => {
    await new Promise<void>(resolve => { ctx.signal.addEventListener('abort', () => { resolve() }) })
  }, { timeoutMs: 300 })
  const stalled = messageChannel(await a.dialProtocol(b.peerId, '/sdte/stall/1'), { messageTimeoutMs: 10_000 })
  await stalled.write({ hello: 1 })
  try { await stalled.readBytes(); assert.unreachable() } catch (e) { assert.ok(e instanceof Error) }
  assert.is(stalled.stream.status, 'reset')

  // Direct connection by multiaddr.
  assert.is((await b.connect(c.addresses()[0])).peerId, c.peerId)
  assert.ok(b.peers().some(p => p.peerId === c.peerId))

  // Bad input to the host API.
  try { await a.connect('garbage'); assert.unreachable() } catch (e) { assert.instance(e, InvalidP2PInputError) }
  try { await a.dialProtocol('not-a-peer', '/sdte/echo/1'); assert.unreachable() } catch (e) { assert.instance(e, InvalidP2PInputError) }
  try { await a.dialProtocol(b.peerId, '/sdte/unknown/1'); assert.unreachable() } catch (e) { assert.instance(e, DialFailedError) }
})

test.run()
