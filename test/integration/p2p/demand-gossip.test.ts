// The demand topic /sdte/bdbc/1 on three real hosts with the daemon's validator: a valid demand
// reaches everyone; a badly signed, expired, foreign-network, duplicate or oversized one, one that
// names another buyer peer than its author, or one not posted to BDBC (a stand-in set here) is
// rejected where it lands, is not forwarded, and lowers the score of the peer that sent it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Wallet, keccak256 } from 'ethers'
import { createP2PHost, type P2PHost } from '../../../p2p/index.ts'
import { DEMAND_TOPIC, MAX_DEMAND_BYTES, createDemandValidator, demandHashOf, encodeDemand, signDemand as sign, type Demand, type DemandTerms } from '../../../p2p/demand/index.ts'

const DTMC = '0x' + 'cd'.repeat(20)
const buyer = Wallet.createRandom()
const hosts: P2PHost[] = []
const received = new Map<string, string[]>()
const now = (): number => Math.floor(Date.now() / 1000)
/** BDBC as the validators see it: the demand hashes "posted" (every demand signed here but the unposted one). */
const posted = new Set<string>()
const signDemand = (t: DemandTerms, w: { address: string, privateKey: string }): Demand => {
  const d = sign(t, w)
  const { signature: _s, ...unsigned } = d
  posted.add(demandHashOf(unsigned))
  return d
}
// By default the demands are published by c: their buyer peer is c.
const terms = (over: Partial<DemandTerms> = {}): DemandTerms => ({
  chainId: 31337, dtmc: DTMC, buyerPeer: hosts[2].peerId, tag: 'gossip', codeHash: keccak256('0x00'),
  nodes: 3, sellers: 1, sellerPrice: 1n, sellerCap: 10n, nodePrice: 1n, nodeCap: 10n, outputPrice: 1n, outputCap: 10n,
  expiresAt: now() + 300, tradeSeconds: 600, epsilon: 0n, ...over
})
const raw = (d: Demand | Record<string, unknown>): Uint8Array => new TextEncoder().encode(JSON.stringify(d, (_k, v) => typeof v === 'bigint' ? v.toString() : v))

async function eventually<T> (what: string, fn: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

test.before(async () => {
  const first = await createP2PHost({}, { privateKey: await generateKeyPair('Ed25519') })
  await first.start()
  hosts.push(first)
  for (let i = 0; i < 2; i++) {
    const h = await createP2PHost({ bootstrap: [first.addresses()[0]] }, { privateKey: await generateKeyPair('Ed25519') })
    await h.start()
    hosts.push(h)
  }
  for (const h of hosts) {
    const validator = createDemandValidator({ chainId: 31337, dtmc: DTMC, isPosted: async (_buyer, demandHash) => posted.has(demandHash) })
    received.set(h.peerId, [])
    h.subscribe(DEMAND_TOPIC, (msg) => { received.get(h.peerId)!.push(new TextDecoder().decode(msg.data)) }, (msg) => validator.validate(msg))
  }
  const [a, , c] = hosts
  await eventually('topic peers', () => a.topicPeers(DEMAND_TOPIC).length >= 2 && c.topicPeers(DEMAND_TOPIC).length >= 1)
})

test.after(async () => { await Promise.allSettled(hosts.map(async h => { await h.stop() })) })

test('a valid demand reaches the other two', async () => {
  const [a, b, c] = hosts
  const d = signDemand(terms(), buyer)
  await c.publish(DEMAND_TOPIC, encodeDemand(d))
  await eventually('delivery', () => received.get(a.peerId)!.length >= 1 && received.get(b.peerId)!.length >= 1)
  assert.is(JSON.parse(received.get(b.peerId)![0]).demandId, d.demandId, 'b got it through a (b and c are not connected)')
})

test('invalid demands are rejected, not forwarded, and score the sender down', async () => {
  const [a, b, c] = hosts
  const before = { a: received.get(a.peerId)!.length, b: received.get(b.peerId)!.length }
  const scoreBefore = a.gossipScore(c.peerId)
  const good = signDemand(terms(), buyer)
  const bad: Array<[string, Uint8Array]> = [
    ['bad signature', raw({ ...good, sellerCap: '999', demandId: keccak256('0x01') })],
    ['expired', encodeDemand(signDemand(terms({ expiresAt: now() - 3600 }), buyer))],
    ['unknown network', encodeDemand(signDemand(terms({ chainId: 1 }), buyer))],
    ['oversized', raw({ ...signDemand(terms(), buyer), pad: 'x'.repeat(MAX_DEMAND_BYTES) })],
    ['naming another buyer peer than its author', encodeDemand(signDemand(terms({ buyerPeer: b.peerId }), buyer))],
    ['not posted to BDBC', encodeDemand(sign(terms(), buyer))]
  ]
  for (const [, data] of bad) await c.publish(DEMAND_TOPIC, data).catch(() => {})
  // A duplicate: the same demand id in a new message (gossipsub's own de-duplication is by message id).
  await c.publish(DEMAND_TOPIC, encodeDemand(good))
  await eventually('the valid one', () => received.get(b.peerId)!.length > before.b)
  await c.publish(DEMAND_TOPIC, raw({ ...good, tradeSeconds: good.tradeSeconds }))
  // A marker published last by a: once it arrives at b, anything c sent before has been decided on.
  const marker = signDemand(terms({ buyerPeer: a.peerId }), buyer)
  await a.publish(DEMAND_TOPIC, encodeDemand(marker))
  await eventually('the marker', () => received.get(b.peerId)!.some(m => m.includes(marker.demandId)))
  const got = (id: string): string[] => received.get(id)!.slice(id === a.peerId ? before.a : before.b)
  assert.is(got(a.peerId).length, 1, `a accepted only the valid demand: ${got(a.peerId).length}`)
  assert.is(got(b.peerId).length, 2, 'b got the valid demand and the marker, nothing else')
  await eventually('score to drop', () => a.gossipScore(c.peerId) < scoreBefore)
  assert.ok(a.gossipScore(c.peerId) < 0, `c's score at a is negative: ${a.gossipScore(c.peerId)}`)
})

test.run()
