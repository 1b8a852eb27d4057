// The host re-announces its provided keys when its small DHT routing table gains a peer
// (p2p/host/dht.ts), so that a daemon that provided before its peers joined is still found. A
// re-announce is a whole provide (a lookup, then ADD_PROVIDER to each close peer) and competes with
// the daemon's gossip and chain reads: a burst of joins must not bring one re-announce each.
// Fakes below: a routing table that emits `peer:add`, and a kad-dht `provide` that stores the record
// at every peer in the table, and counts the calls.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createDht } from '../../../p2p/host/dht.ts'
import { resolveP2PHostOptions } from '../../../p2p/host/options.ts'
import { silentLogger } from '../../../config/index.ts'
import { REPROVIDE_DEBOUNCE_MS } from '../../../p2p/constants.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerId } from '@libp2p/interface'
import type { SdteLibp2p } from '../../../p2p/host/types.ts'

const peer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

class FakeRoutingTable extends EventTarget {
  readonly peers = new Map<string, PeerId>()
  readonly kBucketSize = 20
  get size (): number { return this.peers.size }
  /** kad-dht's routing table adds a peer, then emits `peer:add` with its id (also when it comes back). */
  add (p: PeerId): void {
    this.peers.set(p.toString(), p)
    this.dispatchEvent(new CustomEvent('peer:add', { detail: p }))
  }
}

function fakeNetwork (minIntervalMs = 60 * 60_000): { table: FakeRoutingTable, provides: () => number, holders: Set<string>, dht: ReturnType<typeof createDht>, stop: () => Promise<void> } {
  const table = new FakeRoutingTable()
  const holders = new Set<string>()
  let provides = 0
  const node = {
    services: {
      dht: {
        providers: { addProvider: async () => {}, removeProvider: async () => {} },
        routingTable: table,
        provide: async function * (_cid: unknown, { signal }: { signal: AbortSignal }) {
          provides++
          for (const p of [...table.peers.values()]) {
            signal.throwIfAborted()
            await Promise.resolve()
            holders.add(p.toString())
            yield { name: 'PEER_RESPONSE', messageName: 'ADD_PROVIDER', from: p }
          }
        }
      }
    }
  } as unknown as SdteLibp2p
  const lifetime = new AbortController()
  let status: 'started' | 'stopping' = 'started'
  const dht = createDht(node, resolveP2PHostOptions({}), silentLogger.forComponent('test'), {
    selfId: 'self', status: () => status, requireStarted: () => {}, lifetime: () => lifetime.signal
  }, { debounceMs: 10, minIntervalMs })
  return {
    table,
    holders,
    provides: () => provides,
    dht,
    stop: async () => { status = 'stopping'; dht.cancelReprovide(); lifetime.abort(); await dht.settled() }
  }
}

/** Waits (bounded) for a condition. */
async function until (what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

test('a key provided while the table was empty is announced once the first peer arrives', async () => {
  const net = fakeNetwork()
  const first = await peer()
  assert.equal(await net.dht.provide('sdte:dataset:early'), { announcedTo: 0 })
  assert.is(net.provides(), 0)
  net.table.add(first)
  await until('the first peer to hold the record', () => net.holders.has(first.toString()))
  assert.is(net.provides(), 1)
  await net.stop()
})

test('a burst of new DHT peers brings at most one re-announce per interval', async () => {
  const net = fakeNetwork()
  const [first, ...burst] = await Promise.all([peer(), peer(), peer(), peer()])
  await net.dht.provide('sdte:dataset:burst')
  net.table.add(first)
  await until('the first re-announce', () => net.provides() === 1)
  // Joins spaced wider than the host's debounce: a debounce alone re-announces once for each of them.
  for (const p of burst) {
    net.table.add(p)
    await sleep(REPROVIDE_DEBOUNCE_MS + 100)
  }
  assert.is(net.provides(), 1, `${net.provides()} re-announces for a burst of ${burst.length} peers, within the minimum interval`)
  await net.stop()
})

test('a peer that comes back with our record brings no re-announce', async () => {
  const net = fakeNetwork()
  const [a, b] = await Promise.all([peer(), peer()])
  net.table.add(a)
  net.table.add(b)
  assert.equal(await net.dht.provide('sdte:dataset:known'), { announcedTo: 2 })
  // kad-dht emits peer:add again for a peer it had evicted; both already stored the record.
  net.table.add(a)
  net.table.add(b)
  await sleep(REPROVIDE_DEBOUNCE_MS + 100)
  assert.is(net.provides(), 1)
  await net.stop()
})

test('peers that join within the interval are reached by one trailing re-announce', async () => {
  const net = fakeNetwork(300)
  const [a, b, c] = await Promise.all([peer(), peer(), peer()])
  net.table.add(a)
  assert.equal(await net.dht.provide('sdte:dataset:late'), { announcedTo: 1 })
  net.table.add(b)
  net.table.add(c)
  await until('the peers that joined later to hold the record', () => net.holders.has(b.toString()) && net.holders.has(c.toString()))
  assert.is(net.provides(), 2)
  await net.stop()
})

test.run()
