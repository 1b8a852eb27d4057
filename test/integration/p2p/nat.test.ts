// NAT traversal's parts on loopback, in one process: a relay serves a reservation within its limits,
// a host without a public announce address reserves a slot and announces the relayed address; the
// network mode decides which addresses are announced; the options are checked before anything starts.
// (Across real NATs: test/e2e/nat-trade.test.ts.)
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createP2PHost, resolveP2PHostOptions, echoProtocol, P2POptionsError, DialFailedError } from '../../../p2p/index.ts'
import { wantsRelayReservation } from '../../../p2p/host/libp2p.ts'
import * as C from '../../../p2p/constants.ts'
import type { P2PHost } from '../../../p2p/index.ts'

const hosts: P2PHost[] = []
async function host (options: Parameters<typeof createP2PHost>[0]): Promise<P2PHost> {
  const h = await createP2PHost(options, { privateKey: await generateKeyPair('Ed25519') })
  hosts.push(h)
  await h.start()
  return h
}

async function eventually<T> (what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

test.after(async () => {
  await Promise.allSettled(hosts.map(async h => { await h.stop() }))
})

test('options: announce, mode and relay reservation are checked', () => {
  const o = resolveP2PHostOptions({})
  assert.is(o.mode, 'local')
  assert.is(o.relayReservation, 'auto')
  assert.is(o.relayServer, false)
  const refused = (opts: Parameters<typeof resolveP2PHostOptions>[0], why: RegExp): void => {
    assert.throws(() => resolveP2PHostOptions(opts), (e: Error) => e instanceof P2POptionsError && why.test(e.message))
  }
  refused({ announce: ['/ip4/1.2.3.4/tcp/1/p2p/12D3KooWCX6yGyK6Bfzte2dXUj7ucsadcL7w3GPBfk7zALnB5Hzc'] }, /must not name a peer/)
  refused({ announce: ['nonsense'] }, /not a multiaddr/)
  refused({ mode: 'internet' as any }, /mode must be one of/)
  refused({ mode: 'public', announce: ['/ip4/192.168.1.2/tcp/4001'] }, /private or loopback/)
  refused({ relayReservation: 'sometimes' as any }, /relayReservation/)
})

test('who reserves a relay slot: auto on a public network unless a public address is announced', () => {
  const base = { announce: [] as string[], relayReservation: 'auto' as const, relayServer: false, mode: 'public' as const }
  assert.ok(wantsRelayReservation(base), 'nothing announced')
  assert.ok(wantsRelayReservation({ ...base, announce: ['/ip4/10.0.0.5/tcp/4001'] }), 'a private announce address')
  assert.not.ok(wantsRelayReservation({ ...base, announce: ['/ip4/8.8.4.4/tcp/4001'] }), 'a public announce address')
  assert.not.ok(wantsRelayReservation({ ...base, relayServer: true }), 'a relay itself')
  assert.ok(wantsRelayReservation({ ...base, announce: ['/ip4/8.8.4.4/tcp/4001'], relayReservation: 'always' }))
  assert.not.ok(wantsRelayReservation({ ...base, relayReservation: 'never' }))
  assert.not.ok(wantsRelayReservation({ ...base, mode: 'local' }), 'on a local network peers dial each other')
  assert.ok(wantsRelayReservation({ ...base, mode: 'local', relayReservation: 'always' }))
})

test('a host reserves a slot on its relay and announces the relayed address', async () => {
  const relay = await host({ relayServer: true })
  const [relayAddr] = relay.addresses()
  // On loopback (mode local) a host reserves only when told to.
  const behind = await host({ bootstrap: [relayAddr], relayReservation: 'always' })
  const circuit = await eventually('a relayed address', () => behind.addresses().find(a => a.includes('/p2p-circuit/')))
  assert.is(circuit, `${relayAddr}/p2p-circuit/p2p/${behind.peerId}`)
  assert.is(behind.reachability(), 'relayed', 'a relay slot counts for more than a loopback address')
  const reservations = relay.node.services.relay?.reservations
  assert.ok(reservations?.has(behind.node.peerId), 'the relay holds its reservation')
  const r = reservations?.get(behind.node.peerId)
  // js-libp2p's relay keeps (and applies) the duration in milliseconds.
  assert.is(r?.limit?.duration, C.RELAY_CONNECTION_DURATION_MS, 'relayed connections are limited in time')
  assert.is(r?.limit?.data, BigInt(C.RELAY_CONNECTION_DATA_BYTES), 'and in data')
  // The relay announces no relayed address of its own: it needs none.
  assert.not.ok(relay.addresses().some(a => a.includes('/p2p-circuit')))
})

test('a peer reached through a relay: a protocol call waits for a direct connection and runs on it', async () => {
  const relay = await host({ relayServer: true })
  const [relayAddr] = relay.addresses()
  const behind = await host({ bootstrap: [relayAddr], relayReservation: 'always' })
  await echoProtocol(behind).start()
  const circuit = await eventually('a relayed address', () => behind.addresses().find(a => a.includes('/p2p-circuit/')))
  const caller = await host({})
  await caller.connect(circuit)
  assert.equal(caller.peers().find(p => p.peerId === behind.peerId)?.direct, false, 'connected through the relay only')
  // Our protocols refuse the relayed (limited) connection. On loopback the direct connection comes
  // at once (identify told the caller a loopback address; DCUtR would dial back too); across a NAT
  // it is DCUtR's (test/e2e/nat-trade.test.ts).
  const r = await echoProtocol(caller).echo(behind.peerId, 'direct?')
  assert.equal(r, { text: 'direct?', seenFrom: caller.peerId })
  assert.equal(caller.peers().find(p => p.peerId === behind.peerId)?.direct, true)
})

test('a protocol call to a peer that stays behind a relay fails after directUpgradeWaitMs', async () => {
  const relay = await host({ relayServer: true })
  const [relayAddr] = relay.addresses()
  // Mode public: it announces none of its loopback addresses, so it can only be reached through the relay.
  const behind = await host({ bootstrap: [relayAddr], relayReservation: 'always', mode: 'public' })
  await echoProtocol(behind).start()
  await eventually('the reservation', () => relay.node.services.relay?.reservations.has(behind.node.peerId))
  const WAIT_MS = 1500
  const caller = await host({ directUpgradeWaitMs: WAIT_MS })
  // The relayed side starts DCUtR by opening its stream to us: refuse it (nor can it upgrade
  // unilaterally: we have no public address for it to dial).
  await caller.unhandle('/libp2p/dcutr')
  await caller.connect(`${relayAddr}/p2p-circuit/p2p/${behind.peerId}`)
  const t0 = Date.now()
  try {
    await echoProtocol(caller).echo(behind.peerId, 'over the relay?')
    assert.unreachable('the echo ran on a relayed connection')
  } catch (err) {
    assert.instance(err, DialFailedError, `${(err as Error).name}: ${(err as Error).message}`)
    assert.match((err as Error).message, /only via a relay/)
  }
  assert.ok(Date.now() - t0 >= WAIT_MS, 'it waited for an upgrade first')
  assert.equal(caller.peers().find(p => p.peerId === behind.peerId)?.direct, false)
})

test('mode public announces no loopback address; mode local does', async () => {
  const local = await host({})
  assert.ok(local.addresses().some(a => a.startsWith('/ip4/127.0.0.1/')))
  assert.is(local.reachability(), 'local')
  const pub = await host({ mode: 'public', relayReservation: 'never' })
  assert.equal(pub.addresses(), [])
  assert.is(pub.reachability(), 'none')
  const announced = await host({ mode: 'public', announce: ['/ip4/8.8.4.4/tcp/4001'] })
  assert.equal(announced.addresses(), [`/ip4/8.8.4.4/tcp/4001/p2p/${announced.peerId}`])
  assert.is(announced.reachability(), 'public')
})

test.run()
