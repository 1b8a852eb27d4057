// Attack: a stranger grows the trusted node's offered-price records without end. The node keeps the price of each
// offer it signs in level (`node:offeredPrice:`, one record per demand's terms: buyer, codeHash, nodePrice, nodeCap),
// each until the demand's expiresAt + tradeSeconds (up to MAX_DEMAND_TTL_SECONDS + MAX_TRADE_SECONDS, about a week).
// A stranger posting demands on BDBC (one transaction each, varying nodeCap) got one record per demand, with no
// bound, and every tick read the whole prefix to expire them. Now the records are at most MAX_OFFERED_PRICES (the one
// that expires first goes), a tick reads nothing before the earliest record expires, and two offers for the same
// terms at once (a gossiped demand and a solicit) keep the later `until` and the lower price.
//
// Real parts: the daemon's level store in a temp dir, driven through the node's offered-price book (OfferedPrices)
// as recordOffer drives it; no daemon (the flood is thousands of demands: a BDBC transaction each is the attacker's
// cost, not what is tested).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Store } from '../../daemon/store.ts'
import { MAX_OFFERED_PRICES } from '../../daemon/roles/trusted-node/index.ts'
import { judgedPrice, OfferedPrices, OFFERED_PRICE_PREFIX, type OfferTerms } from '../../daemon/roles/trusted-node/offered-prices.ts'

const BUYER = '0x' + 'ab'.repeat(20)
const CODE = '0x' + 'cd'.repeat(32)
const terms = (nodeCap: bigint, buyer = BUYER): OfferTerms => ({ buyer, codeHash: CODE, nodePrice: 1n, nodeCap })

let dir: string
let store: Store
let clock = 1_000_000
const now = (): number => clock

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sdte-offered-'))
  store = await Store.open(dir)
})
test.after(async () => {
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

const stored = async (): Promise<number> => (await store.meta.list({ prefix: OFFERED_PRICE_PREFIX })).length

test(`a stranger's ${MAX_OFFERED_PRICES + 200} demands keep at most MAX_OFFERED_PRICES (${MAX_OFFERED_PRICES}) records; the one that expires first goes`, async () => {
  const book = new OfferedPrices(store.meta, MAX_OFFERED_PRICES, now)
  // An honest buyer's offer whose trade runs long: it outlives the stranger's.
  const honest = terms(7n, '0x' + '11'.repeat(20))
  await book.record(honest, 3n, clock + 7 * 24 * 3600)
  for (let i = 0; i < MAX_OFFERED_PRICES + 200; i++) await book.record(terms(1000n + BigInt(i)), 1n, clock + 3600 + i)
  assert.is(await book.size(), MAX_OFFERED_PRICES)
  assert.is(await stored(), MAX_OFFERED_PRICES, 'records in level')
  assert.is(await book.get(honest), 3n, 'the honest offer, which expires last, is kept')
  assert.is(await book.get(terms(1000n)), undefined, 'the stranger\'s first record, which expires first, went')
  assert.is(await book.get(terms(1000n + BigInt(MAX_OFFERED_PRICES + 199))), 1n, 'the newest is kept')
  // A new book on the same store (a restart) sees the same bound.
  const again = new OfferedPrices(store.meta, MAX_OFFERED_PRICES, now)
  await again.record(terms(99n), 1n, clock + 60)
  assert.is(await stored(), MAX_OFFERED_PRICES, 'records in level after a restart and one more offer')
})

test('a tick reads nothing before the earliest record expires; then it drops the expired ones', async () => {
  let lists = 0
  const meta = new Proxy(store.meta, {
    get (target, prop, receiver) {
      if (prop === 'list') return async (...args: Parameters<typeof target.list>) => { lists++; return await target.list(...args) }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    }
  })
  const book = new OfferedPrices(meta, MAX_OFFERED_PRICES, now)
  await book.expire() // loads the index once
  assert.is(lists, 1)
  const before = await book.size()
  for (let i = 0; i < 50; i++) await book.expire()
  assert.is(lists, 1, 'ticks before the earliest until read no records')
  assert.is(await book.size(), before)
  clock += 3600 + 100 // past the earliest of the stranger's records and the short one
  await book.expire()
  assert.is(lists, 1, 'expiry works from the index in memory')
  const left = await book.size()
  assert.ok(left < before, `expired records dropped (${before} -> ${left})`)
  assert.is(await stored(), left, 'dropped from level too')
  for (const [, v] of await store.meta.list({ prefix: OFFERED_PRICE_PREFIX })) assert.ok((v as { until: number }).until >= clock)
})

test('two offers for the same terms at once keep the later until and the lower price', async () => {
  const book = new OfferedPrices(store.meta, MAX_OFFERED_PRICES, now)
  for (let round = 0; round < 20; round++) {
    const t = terms(50_000n + BigInt(round))
    // A gossiped demand (short until, price 5) and a solicit (long until, price 4) for the same terms, at once,
    // in either order.
    const short = async (): Promise<void> => { await book.record(t, 5n, clock + 100) }
    const long = async (): Promise<void> => { await book.record(t, 4n, clock + 10_000) }
    await Promise.all(round % 2 === 0 ? [short(), long()] : [long(), short()])
    const v = await store.meta.get(`${OFFERED_PRICE_PREFIX}${BUYER}:${CODE}:1:${50_000 + round}`) as { until: number, pricePerGas: string }
    assert.is(v.until, clock + 10_000, `round ${round}: the later until holds`)
    assert.is(v.pricePerGas, '4', `round ${round}: the lower price holds`)
  }
})

test('a trade is judged by the lower of the offered price and the price now', () => {
  assert.is(judgedPrice(10n, 5n), 5n, 'offered 10, restarted at 5: judged at 5')
  assert.is(judgedPrice(1n, 2n), 1n, 'offered 1, raised to 2: held to 1')
  assert.is(judgedPrice(undefined, 2n), 2n, 'no offer: the price now')
})

test.run()
