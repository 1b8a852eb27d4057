// Attack: flooding a host's DHT and gossip state (issue 11, item 6). kad-dht 16 stores every provider
// record a peer sends for itself (ADD_PROVIDER) and every /pk/ value record (PUT_VALUE), forever and
// without a limit; gossipsub remembers every message id it receives for its seen TTL, however many.
// On the old code: 70 fresh peer ids providing one key left 70 records for it, one peer providing
// MAX_PROVIDER_RECORDS_PER_PEER + 16 random keys left all of them, a stranger's /pk/ record was stored,
// and there was no count (`held`) to bound. Here the victim is our host (as every daemon runs it),
// the attackers independent libp2p hosts talking kad-dht and gossipsub directly.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { randomBytes } from 'node:crypto'
import { createP2PHost, type P2PHost } from '../../p2p/index.ts'
import { MAX_PROVIDERS_PER_KEY, MAX_PROVIDER_RECORDS_PER_PEER } from '../../p2p/constants.ts'
import { boundProviderRecords, type ProviderStore } from '../../p2p/host/providers.ts'
import { boundGossipCaches } from '../../p2p/host/gossip.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'

let victim: P2PHost
/** Attacker hosts providing the same key at once (each one dials the victim, which limits new connections per address). */
const PROVIDERS_AT_ONCE = 4
const attackers: P2PHost[] = []

async function newAttacker (): Promise<P2PHost> {
  const h = await createP2PHost({ bootstrap: [] }, { privateKey: await generateKeyPair('Ed25519') })
  await h.start()
  attackers.push(h)
  // The victim limits new connections per address and second: retry until it lets this one in.
  await waitFor('a connection to the victim', async () => await h.connect(victim.addresses()[0]).then(() => true, () => false), 30_000, 300)
  await waitFor('the victim in the DHT routing table', () => (h.node.services.dht as any).routingTable.size > 0, 30_000, 100)
  return h
}

const randomCid = async (): Promise<CID> => CID.createV1(raw.code, await sha256.digest(randomBytes(32)))

/** Provides `cid` from `h` straight through kad-dht (our own provide() refuses keys that are not sdte:…). */
async function provideRaw (h: P2PHost, cid: CID): Promise<void> {
  for await (const _ of h.node.services.dht.provide(cid, { signal: AbortSignal.timeout(10_000) })) { /* drain */ }
}

test.before(async () => {
  victim = await createP2PHost({ bootstrap: [] }, { privateKey: await generateKeyPair('Ed25519') })
  await victim.start()
})

test.after(async () => {
  await Promise.allSettled(attackers.map(async h => { await h.stop() }))
  await victim?.stop()
})

test(`one peer providing ${MAX_PROVIDER_RECORDS_PER_PEER + 16} keys keeps at most ${MAX_PROVIDER_RECORDS_PER_PEER} records`, async () => {
  const a = await newAttacker()
  for (let i = 0; i < MAX_PROVIDER_RECORDS_PER_PEER + 16; i++) await provideRaw(a, await randomCid()).catch(() => {})
  const held = victim.held().providerRecords
  assert.ok(held.maxPerPeer <= MAX_PROVIDER_RECORDS_PER_PEER, `one peer holds ${held.maxPerPeer} provider records here`)
  assert.ok(held.total >= MAX_PROVIDER_RECORDS_PER_PEER, `the flood reached the victim (${held.total} records)`)
})

test(`${MAX_PROVIDERS_PER_KEY + 6} peers providing one key leave at most ${MAX_PROVIDERS_PER_KEY} records for it, the newest`, async () => {
  const cid = await randomCid()
  // The older providers a few at a time, each stopped once it provided (keeps the victim's connection count low);
  // then the newest alone, after all of them.
  const older = MAX_PROVIDERS_PER_KEY + 5
  for (let i = 0; i < older; i += PROVIDERS_AT_ONCE) {
    await Promise.all(Array.from({ length: Math.min(PROVIDERS_AT_ONCE, older - i) }, async () => {
      const a = await newAttacker()
      await provideRaw(a, cid)
      await a.stop()
      attackers.splice(attackers.indexOf(a), 1)
    }))
  }
  const last = await newAttacker()
  await provideRaw(last, cid)
  // ADD_PROVIDER is fire-and-forget: the victim may store the last record a moment after the attacker sent it.
  const providers = (victim.node.services.dht as unknown as { providers: { getProviders: (c: CID) => Promise<Array<{ toString: () => string }>> } }).providers
  let stored = await providers.getProviders(cid)
  for (let i = 0; i < 100 && !stored.map(String).includes(last!.peerId); i++) {
    await new Promise(resolve => setTimeout(resolve, 100))
    stored = await providers.getProviders(cid)
  }
  assert.is(victim.held().providerRecords.maxPerKey, MAX_PROVIDERS_PER_KEY)
  assert.is(stored.length, MAX_PROVIDERS_PER_KEY, 'the DHT store holds as many records for the key as counted')
  const ids = new Set(stored.map(String))
  assert.ok(ids.has(last!.peerId), 'the newest provider of the key is kept')
})

test('a value record (PUT_VALUE) from a stranger is not stored', async () => {
  const a = attackers[0] ?? await newAttacker()
  const key = await generateKeyPair('Ed25519')
  const pkKey = new Uint8Array([...new TextEncoder().encode('/pk/'), ...key.publicKey.toMultihash().bytes])
  try {
    for await (const _ of a.node.services.dht.put(pkKey, publicKeyToProtobuf(key.publicKey), { signal: AbortSignal.timeout(5_000) })) { /* drain */ }
  } catch {}
  const datastore = (victim.node as any).components.datastore
  const stored: string[] = []
  for await (const e of datastore.query({ prefix: '/sdte-dht/record' })) stored.push(e.key.toString())
  assert.equal(stored, [], 'the victim stored no value record')
})

test('the provider-record bound in all holds under a flood (bound lowered to 100 on the real DHT store)', async () => {
  const v = await createP2PHost({ bootstrap: [] }, { privateKey: await generateKeyPair('Ed25519') })
  await v.start()
  attackers.push(v)
  const stats = boundProviderRecords((v.node.services.dht as unknown as { providers: ProviderStore }).providers, v.peerId, { perKey: 64, perPeer: 40, total: 100, ttlMs: 60_000 })
  const prev = victim
  victim = v
  try {
    for (let p = 0; p < 4; p++) {
      const a = await newAttacker()
      for (let i = 0; i < 40; i++) await provideRaw(a, await randomCid()).catch(() => {})
    }
  } finally { victim = prev }
  const s = stats()
  assert.is(s.total, 100, `${s.total} records held against a bound of 100`)
  assert.ok(s.maxPerPeer <= 40)
})

test('the gossip seen and message caches hold their count bounds under a flood of unique messages (bounds lowered to 100 and 50)', async () => {
  const v = await createP2PHost({ bootstrap: [] }, { privateKey: await generateKeyPair('Ed25519') })
  await v.start()
  attackers.push(v)
  const caches = boundGossipCaches(v.node.services.pubsub, 100, 50)
  let delivered = 0
  v.subscribe('sdte-flood', () => { delivered++ }, () => 'accept')
  const prev = victim
  victim = v
  let a: P2PHost
  try { a = await newAttacker() } finally { victim = prev }
  a.subscribe('sdte-flood', () => {})
  await waitFor('the victim on the topic', () => a.topicPeers('sdte-flood').includes(v.peerId), 30_000, 100)
  const N = 1000
  let maxSeen = 0
  let maxMcache = 0
  for (let i = 0; i < N; i++) {
    await a.publish('sdte-flood', randomBytes(64))
    if (i % 50 === 0) { const c = caches(); maxSeen = Math.max(maxSeen, c.seen); maxMcache = Math.max(maxMcache, c.mcache) }
  }
  await waitFor('the flood delivered', () => delivered >= N * 0.9, 30_000, 100)
  const c = caches()
  maxSeen = Math.max(maxSeen, c.seen)
  maxMcache = Math.max(maxMcache, c.mcache)
  assert.ok(maxSeen <= 100, `seen cache held ${maxSeen} ids`)
  assert.ok(maxMcache <= 50, `message cache held ${maxMcache} messages`)
  assert.ok(c.seen > 0)
})

test.run()
