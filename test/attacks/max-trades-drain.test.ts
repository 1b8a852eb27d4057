// Attack (issue 15, the seller's maximum of trades): a buyer opens a dataset's `maxTrades` trades and lets them
// all end refunded with nothing delivered (its nodes never ask for the data: offline, or its own). CISC counted
// each trade when it opened and never gave the count back, while the held data fees went back to the buyer
// (`releaseUnclaimed`): for the gas of a few transactions the dataset was dead for every other buyer
// (OfferTradesExhausted). Now, as with a private dataset's epsilon (private-budget-drain.test.ts), the count is
// only reserved at opening: a trade whose data may have entered an enclave (the seller claimed a delivery
// receipt, or the trade settled) stays counted, and one whose seller claimed no receipt by the end of the claim
// window gives its count back at `releaseUnclaimed`.
// Contracts only (anvil): the attack needs no daemon, the buyer's nodes simply never act.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CLAIM_WINDOW, EPSILON_UNIT } from '../../contracts/client.ts'
import {
  startChain, makeMarket, makeSeller, account, openTrade, reverts, increaseTime, claim, submit, paid, conserved, everyone,
  type Chain, type Market
} from '../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

const MAX_TRADES = 2

/** The attacker's market: one "any code" offer with a maximum of MAX_TRADES trades, one node that never acts. */
async function cappedMarket (opts: { epsilonBudget?: bigint } = {}): Promise<Market> {
  const m = await makeMarket(chain, 0, 1)
  m.sellers.push(await makeSeller(chain, { ...opts, maxTrades: MAX_TRADES }))
  return m
}

/** The same offers and nodes, traded by another buyer. */
async function otherBuyer (m: Market): Promise<Market> {
  return { ...m, buyer: await account(chain, '1000') }
}

/** Past the trade's deadline (finalize refunds it) and past the claim window (releaseUnclaimed). */
async function refundAndRelease (m: Market, tradeIds: string[]): Promise<void> {
  await increaseTime(chain, 3601)
  for (const id of tradeIds) assert.is((await m.buyer.client.dtmc.finalize(id)).outcome, 'refunded')
  await increaseTime(chain, CLAIM_WINDOW + 1)
  for (const id of tradeIds) await m.buyer.client.dtmc.releaseUnclaimed(id)
}

test('refunded trades that never got the data give their count back, and another buyer can trade', async () => {
  const m = await cappedMarket()
  const offerId = m.sellers[0].offerId
  const cisc = m.buyer.client.cisc
  const trades = [await openTrade(m), await openTrade(m)]
  assert.is((await cisc.offer(offerId)).trades, MAX_TRADES, 'counted while the trades may still run: concurrent trades never exceed the maximum')
  await reverts(openTrade(await otherBuyer(m)), 'OfferTradesExhausted')
  await conserved(chain, everyone(m), async () => {
    await refundAndRelease(m, trades.map(t => t.tradeId))
    for (const t of trades) assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit, 'nothing delivered: the buyer gets everything back')
  })
  // Before the fix: the count stayed at 2, and every other buyer's trade reverted with OfferTradesExhausted.
  assert.is((await cisc.offer(offerId)).trades, 0, 'no enclave got the data: neither trade is counted')
  await openTrade(await otherBuyer(m))
  await openTrade(await otherBuyer(m))
  await reverts(openTrade(m), 'OfferTradesExhausted')
})

test('a refunded trade whose data reached an enclave stays counted and pays the seller its fee', async () => {
  const m = await cappedMarket()
  m.sellers.push(await makeSeller(chain, { maxTrades: MAX_TRADES })) // a second capped seller, never delivered
  const cisc = m.buyer.client.cisc
  const t = await openTrade(m)
  const fees = (await m.buyer.client.dtmc.trade(t.tradeId))!.sellers.map(s => s.fee)
  await conserved(chain, everyone(m), async () => {
    await increaseTime(chain, 3601)
    assert.is((await m.buyer.client.dtmc.finalize(t.tradeId)).outcome, 'refunded')
    await claim(m, t, 0, 0) // seller 0's data entered node 0's enclave
    await increaseTime(chain, CLAIM_WINDOW + 1)
    await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
    assert.is(await paid(m, t.tradeId, m.sellers[0].address), fees[0])
  })
  assert.is((await cisc.offer(m.sellers[0].offerId)).trades, 1, 'delivered: the trade stays counted')
  assert.is((await cisc.offer(m.sellers[1].offerId)).trades, 0, 'never delivered: its count is back')
})

test('a settled trade stays counted: nothing is held, nothing comes back', async () => {
  const m = await cappedMarket()
  const t = await openTrade(m)
  await submit(m, t, 0)
  assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.state, 'settled')
  await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'NothingHeld')
  assert.is((await m.buyer.client.cisc.offer(m.sellers[0].offerId)).trades, 1)
})

test('a private offer with a maximum gets both its epsilon and its count back in the one release', async () => {
  const budget = 2n * EPSILON_UNIT
  const m = await cappedMarket({ epsilonBudget: budget })
  const offerId = m.sellers[0].offerId
  const cisc = m.buyer.client.cisc
  const trades = [await openTrade(m, { epsilon: EPSILON_UNIT }), await openTrade(m, { epsilon: EPSILON_UNIT })]
  assert.equal([(await cisc.offer(offerId)).trades, await cisc.remainingBudget(offerId)], [MAX_TRADES, 0n])
  await increaseTime(chain, 3601)
  for (const t of trades) await m.buyer.client.dtmc.finalize(t.tradeId)
  await increaseTime(chain, CLAIM_WINDOW + 1)
  const { logs } = await m.buyer.client.dtmc.releaseUnclaimed(trades[0].tradeId)
  const events = logs.map(l => cisc.iface.parseLog(l)).filter(e => e !== null).map(e => [e.name, e.args.offerId, e.args.tradeId])
  assert.equal(events, [['PrivacyBudgetReleased', offerId, trades[0].tradeId], ['TradeCountReleased', offerId, trades[0].tradeId]], 'one CISC call gives back both')
  await m.buyer.client.dtmc.releaseUnclaimed(trades[1].tradeId)
  assert.equal([(await cisc.offer(offerId)).trades, await cisc.remainingBudget(offerId)], [0, budget])
})

test.run()
