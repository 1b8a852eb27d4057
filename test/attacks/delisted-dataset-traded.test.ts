// Attack (issue 15, the seller's terms): a buyer opens a new trade on a dataset its seller delisted, let
// expire, or capped at a number of trades already reached. Before the fix the seller's judge knew none of
// these (it kept delivering to any trade on a delisted dataset), CISC had no expiry nor trade count, and a
// delisted offer was refused only by CISC. Now each is refused by the seller (demands and trades) and by
// CISC when the trade opens (OfferInactive, OfferExpired, OfferTradesExhausted); CISC counts the trades.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { judgePolicy, parsePolicy, type TradeTerms } from '../../daemon/roles/seller/policy.ts'
import { startChain, makeMarket, makeSeller, openTrade, reverts, latestTimestamp, increaseTime, CODE_HASH, type Chain } from '../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

const BUYER = '0x' + '11'.repeat(20)
const fair: TradeTerms = { codeHash: CODE_HASH, outputCap: 1n, outputPrice: 10n, dataFee: 10_000n, buyer: BUYER, now: 1_000 }

test('the seller refuses a delisted, an expired and an exhausted dataset', () => {
  const ds = { unitPrice: '10', size: 1000, policy: parsePolicy({ mode: 'any', expiresAt: 2_000, maxTrades: 2 }, 10n) }
  assert.is(judgePolicy(ds, fair), null)
  assert.match(judgePolicy({ ...ds, delisted: true }, fair) ?? '', /delisted/)
  assert.match(judgePolicy(ds, { ...fair, now: 2_000 }) ?? '', /expired/)
  assert.match(judgePolicy({ ...ds, trades: 2 }, fair) ?? '', /trades/)
  assert.is(judgePolicy({ ...ds, trades: 1 }, fair), null)
})

test('CISC refuses a new trade on a delisted offer at once', async () => {
  const m = await makeMarket(chain, 0, 1)
  const s = await makeSeller(chain, { anyCode: true })
  m.sellers.push(s)
  await openTrade(m)
  await s.client.cisc.delistDataset(s.offerId)
  await reverts(openTrade(m), 'OfferInactive')
})

test('CISC refuses a trade on an expired offer', async () => {
  const m = await makeMarket(chain, 0, 1)
  const expiresAt = (await latestTimestamp(chain)) + 600
  m.sellers.push(await makeSeller(chain, { anyCode: true, expiresAt }))
  await openTrade(m)
  await increaseTime(chain, 601)
  const err = await reverts(openTrade(m), 'OfferExpired')
  assert.equal(err.args, [m.sellers[0].offerId, BigInt(expiresAt)])
})

test('CISC counts the trades on an offer and refuses one past its maximum', async () => {
  const m = await makeMarket(chain, 0, 1)
  m.sellers.push(await makeSeller(chain, { anyCode: true, maxTrades: 2 }))
  await openTrade(m)
  await openTrade(m)
  assert.is((await m.buyer.client.cisc.offer(m.sellers[0].offerId)).trades, 2)
  await reverts(openTrade(m), 'OfferTradesExhausted')
})

test('only DTMC can take a trade from an offer (nobody else can use up its count)', async () => {
  const m = await makeMarket(chain, 0, 1)
  m.sellers.push(await makeSeller(chain, { anyCode: true, maxTrades: 1 }))
  const cisc = m.buyer.client.cisc as unknown as { send: (f: string, a: unknown[]) => Promise<unknown> }
  await reverts(cisc.send('offerForTrade', [m.sellers[0].offerId, '0x' + '00'.repeat(32), CODE_HASH, 1n, 0n, m.buyer.address, '0x' + '00'.repeat(32)]), 'NotDTMC')
  await reverts(cisc.send('offerForPrivateTrade', [m.sellers[0].offerId, '0x' + '00'.repeat(32), CODE_HASH, 1n, 0n, m.buyer.address, 1n, '0x' + '00'.repeat(32)]), 'NotDTMC')
  // Nor give a trade's reserved epsilon or count back (nobody can undo another trade's charge).
  await reverts(cisc.send('releaseReservations', ['0x' + '00'.repeat(32), 1]), 'NotDTMC')
  await openTrade(m)
})

test.run()
