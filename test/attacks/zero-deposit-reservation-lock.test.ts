// Attack (issue 15, a reservation the seller refuses): a stranger opens trades naming a seller's private dataset
// with its whole epsilon, or a dataset's every place in its `maxTrades`, with a seller cap of zero or below the
// offer's price (a data fee of nothing), on a node of its own that never acts. The seller's daemon refuses them
// at its checks and never delivers, but CISC reserved the epsilon and the places at opening and gave them back only
// at `releaseUnclaimed`: after the deadline (up to 7 days) and the claim window (3 days), the seller paying the
// `finalize` and the release, and the stranger free to open the next ones the same way. Now the seller declines
// such a trade at once (`DTMC.declineTrade`): an open trade no node committed to is refunded, and the seller's
// reservation comes back in the same transaction (no enclave runs without every seller's delivery receipt, so its
// data never went in). A seller that delivered and claimed its fee with a receipt can no longer decline: it cannot
// take the data fee and also give the buyer its money and itself its epsilon back.
// Contracts only (anvil): the attack needs no daemon, the buyer's nodes simply never act; the seller daemon's own
// decline is in test/integration/daemon/seller-terms.test.ts. An open trade's decline holds the node fees for
// DECLINE_NODE_CLAIM_WINDOW (a node that ran is paid on the decliner's ack: test/attacks/decline-after-run.test.ts):
// the nodes here never act, so the buyer gets them back at the release after that window.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CLAIM_WINDOW, DECLINE_NODE_CLAIM_WINDOW, EPSILON_UNIT } from '../../contracts/client.ts'
import {
  startChain, makeMarket, makeSeller, account, openTrade, reverts, increaseTime, claim, commit, paid, conserved, everyone,
  type Chain, type Market
} from '../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

const BUDGET = 2n * EPSILON_UNIT

/** A stranger's market on one victim offer (private with BUDGET, or with a maximum of trades) and one silent node. */
async function victimMarket (opts: { epsilonBudget?: bigint, maxTrades?: number }): Promise<Market> {
  const m = await makeMarket(chain, 0, 1)
  m.sellers.push(await makeSeller(chain, opts))
  return m
}

test('a zero-fee trade holding a private dataset\'s whole epsilon: the seller declines it and the budget is back at once', async () => {
  const m = await victimMarket({ epsilonBudget: BUDGET })
  const offerId = m.sellers[0].offerId
  const cisc = m.buyer.client.cisc
  const t = await openTrade(m, { epsilon: BUDGET, sellerCap: 0n })
  assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.sellers[0].fee, 0n, 'a data fee of nothing')
  assert.is(await cisc.remainingBudget(offerId), 0n, 'the whole budget reserved')
  await reverts(openTrade(await otherBuyer(m), { epsilon: 1n }), 'PrivacyBudgetExceeded')
  // Without a decline the seller can only wait: nothing ends the trade before its deadline.
  await reverts(m.sellers[0].client.dtmc.finalize(t.tradeId), 'FinalizeTooEarly')
  // Nobody but the seller declines for it.
  await reverts(m.buyer.client.dtmc.declineTrade(t.tradeId, 0), 'NotSeller')
  const held = await nodeFees(m, t.tradeId)
  await conserved(chain, everyone(m), async () => {
    await m.sellers[0].client.dtmc.declineTrade(t.tradeId, 0)
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - held, 'the buyer gets its deposit back but the node fees')
  })
  // Before the fix: declineTrade did not exist, and the budget stayed reserved until deadline + CLAIM_WINDOW.
  assert.is(await cisc.remainingBudget(offerId), BUDGET, 'the epsilon is back at once')
  assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.state, 'refunded')
  assert.equal((await m.buyer.client.dtmc.claimsOf(t.tradeId)).held, [], 'no data fee held: the only seller declined')
  assert.equal((await m.buyer.client.dtmc.claimsOf(t.tradeId)).nodesHeld, [0], 'the node fee held for a run claim')
  await reverts(m.sellers[0].client.dtmc.declineTrade(t.tradeId, 0), 'NothingHeld')
  await reverts(m.buyer.client.dtmc.finalize(t.tradeId), 'AlreadyFinalized')
  await openTrade(await otherBuyer(m), { epsilon: BUDGET })
  // The node never ran (no ack to show): after the node claim window the buyer has its whole deposit back.
  await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'ClaimWindowOpen')
  await increaseTime(chain, DECLINE_NODE_CLAIM_WINDOW + 1)
  await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
  assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit, 'the buyer gets its whole deposit back')
})

test('below-price trades holding a dataset\'s every place in its maxTrades: each declined, the count is back at once', async () => {
  const m = await victimMarket({ maxTrades: 2 })
  const s = m.sellers[0]
  const belowPrice = s.unitPrice * s.size - 1n
  const trades = [await openTrade(m, { sellerCap: 0n }), await openTrade(m, { sellerCap: belowPrice })]
  assert.is((await m.buyer.client.cisc.offer(s.offerId)).trades, 2)
  await reverts(openTrade(await otherBuyer(m)), 'OfferTradesExhausted')
  for (const t of trades) await s.client.dtmc.declineTrade(t.tradeId, 0)
  assert.is((await m.buyer.client.cisc.offer(s.offerId)).trades, 0, 'both places back')
  for (const t of trades) assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - await nodeFees(m, t.tradeId))
  await increaseTime(chain, DECLINE_NODE_CLAIM_WINDOW + 1)
  for (const t of trades) await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
  for (const t of trades) assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit)
  await openTrade(await otherBuyer(m))
})

test('one seller of two declines: the trade is refunded, the other seller keeps its claim, the decliner has none', async () => {
  const m = await makeMarket(chain, 1, 1)
  m.sellers.push(await makeSeller(chain, { epsilonBudget: BUDGET }))
  const [delivered, decliner] = m.sellers
  const t = await openTrade(m, { epsilon: BUDGET })
  const fees = (await m.buyer.client.dtmc.trade(t.tradeId))!.sellers.map(x => x.fee)
  await conserved(chain, everyone(m), async () => {
    await reverts(delivered.client.dtmc.declineTrade(t.tradeId, 1), 'NotSeller')
    await decliner.client.dtmc.declineTrade(t.tradeId, 1)
    assert.equal((await m.buyer.client.dtmc.claimsOf(t.tradeId)).held, [0], 'seller 0 may have delivered: its fee is held for its receipt')
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fees[0] - await nodeFees(m, t.tradeId))
    await claim(m, t, 0, 0)
    assert.is(await paid(m, t.tradeId, delivered.address), fees[0])
    await reverts(claim(m, t, 1, 0), 'NothingHeld') // the decliner gave its fee up
  })
  assert.is(await m.buyer.client.cisc.remainingBudget(decliner.offerId), BUDGET)
})

test('no decline once the data may have gone in: after a node committed, or after the seller claimed its fee', async () => {
  const m = await victimMarket({ epsilonBudget: BUDGET })
  const s = m.sellers[0]
  const committed = await openTrade(m, { epsilon: EPSILON_UNIT })
  await commit(m, committed, 0) // an enclave ran: it had every seller's data
  await reverts(s.client.dtmc.declineTrade(committed.tradeId, 0), 'DeclineTooLate')

  const m2 = await victimMarket({ epsilonBudget: BUDGET })
  const s2 = m2.sellers[0]
  const [claimed, unclaimed] = [await openTrade(m2, { epsilon: EPSILON_UNIT }), await openTrade(m2, { epsilon: EPSILON_UNIT })]
  const fee = (await m2.buyer.client.dtmc.trade(claimed.tradeId))!.sellers[0].fee
  await increaseTime(chain, 3601)
  for (const t of [claimed, unclaimed]) assert.is((await m2.buyer.client.dtmc.finalize(t.tradeId)).outcome, 'refunded')
  await claim(m2, claimed, 0, 0)
  // Before the fix there was no declineTrade at all; now it refuses the seller that took its fee.
  await reverts(s2.client.dtmc.declineTrade(claimed.tradeId, 0), 'NothingHeld')
  assert.is(await paid(m2, claimed.tradeId, s2.address), fee)
  // Within the claim window a seller that claimed nothing may give its fee up and its epsilon back at once.
  await conserved(chain, everyone(m2), async () => {
    await s2.client.dtmc.declineTrade(unclaimed.tradeId, 0)
  })
  assert.is(await m2.buyer.client.cisc.remainingBudget(s2.offerId), BUDGET - EPSILON_UNIT, 'the claimed trade\'s epsilon stays spent')
  assert.is(await paid(m2, unclaimed.tradeId, m2.buyer.address), unclaimed.deposit)
  await increaseTime(chain, CLAIM_WINDOW + 1)
  await reverts(m2.buyer.client.dtmc.releaseUnclaimed(unclaimed.tradeId), 'NothingHeld')
  await reverts(m2.buyer.client.dtmc.releaseUnclaimed(claimed.tradeId), 'NothingHeld')
})

/** What an open trade's decline holds for its nodes' run claims: each node's fee. */
async function nodeFees (m: Market, tradeId: string): Promise<bigint> {
  const view = (await m.buyer.client.dtmc.trade(tradeId))!
  return view.nodeFee * BigInt(view.nodes.length)
}

/** The same offers and nodes, traded by another buyer. */
async function otherBuyer (m: Market): Promise<Market> {
  return { ...m, buyer: await account(chain, '1000') }
}

test.run()
