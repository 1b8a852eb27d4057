// Attack (issue 15, the private datasets' budget): a buyer opens a trade on a private dataset with the whole
// epsilon left and lets it end refunded with nothing delivered (its nodes never ask for the data: offline, or
// its own). CISC charged the epsilon when the trade opened and never gave it back, while the held data fee went
// back to the buyer (`releaseUnclaimed`): for the gas of two transactions the dataset was dead for every other
// buyer. Now the epsilon is only reserved at opening: the reservation stays spent once an enclave may have
// computed on the seller's data (the seller then holds the enclave's delivery receipt, without which no enclave
// runs, and claims its data fee with it: the buyer paid for what it consumed), and comes back to the budget when
// the trade ends and no receipt was claimed for that seller within the claim window (`releaseUnclaimed`).
// Contracts only (anvil): the attack needs no daemon, the buyer's nodes simply never act.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CLAIM_WINDOW, EPSILON_UNIT } from '../../contracts/client.ts'
import {
  startChain, makeMarket, makeSeller, openTrade, reverts, increaseTime, claim, submit, paid, conserved, everyone, type Chain, type Market
} from '../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

const BUDGET = 3n * EPSILON_UNIT

/** The attacker's market: one private offer with BUDGET, and one node of its choosing that never acts. */
async function privateMarket (): Promise<Market> {
  const m = await makeMarket(chain, 0, 1)
  m.sellers.push(await makeSeller(chain, { epsilonBudget: BUDGET }))
  return m
}

test('a refunded trade that never got the data gives its whole epsilon back, and another buyer can trade', async () => {
  const m = await privateMarket()
  const offerId = m.sellers[0].offerId
  const cisc = m.buyer.client.cisc
  const t = await openTrade(m, { epsilon: BUDGET })
  assert.is(await cisc.remainingBudget(offerId), 0n, 'reserved while the trade may still run: concurrent trades never exceed the budget')
  await reverts(openTrade(m, { epsilon: 1n }), 'PrivacyBudgetExceeded')
  await conserved(chain, everyone(m), async () => {
    await increaseTime(chain, 3601)
    assert.is((await m.buyer.client.dtmc.finalize(t.tradeId)).outcome, 'refunded')
    // The seller may still come with a receipt until the claim window ends: the reservation holds until then.
    assert.is(await cisc.remainingBudget(offerId), 0n)
    await increaseTime(chain, CLAIM_WINDOW + 1)
    await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit, 'nothing delivered: the buyer gets everything back')
  })
  // Before the fix: 0 left, and every later trade reverted with PrivacyBudgetExceeded.
  assert.is(await cisc.remainingBudget(offerId), BUDGET, 'no enclave computed on the data: its epsilon is not spent')
  assert.is((await cisc.offer(offerId)).epsilonSpent, 0n)
  await openTrade(m, { epsilon: BUDGET })
  assert.is(await cisc.remainingBudget(offerId), 0n)
})

test('a refunded trade whose data reached an enclave keeps its epsilon spent and pays the seller its fee', async () => {
  const m = await privateMarket()
  m.sellers.push(await makeSeller(chain, { epsilonBudget: BUDGET })) // a second private seller, never delivered
  const cisc = m.buyer.client.cisc
  const t = await openTrade(m, { epsilon: 2n * EPSILON_UNIT })
  const fees = (await m.buyer.client.dtmc.trade(t.tradeId))!.sellers.map(s => s.fee)
  await conserved(chain, everyone(m), async () => {
    await increaseTime(chain, 3601)
    assert.is((await m.buyer.client.dtmc.finalize(t.tradeId)).outcome, 'refunded')
    // Seller 0's data entered node 0's enclave (it holds the receipt): the answers may have left, so it is spent.
    await claim(m, t, 0, 0)
    await increaseTime(chain, CLAIM_WINDOW + 1)
    await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
    assert.is(await paid(m, t.tradeId, m.sellers[0].address), fees[0], 'the buyer paid for the epsilon it consumed')
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fees[0])
  })
  assert.is(await cisc.remainingBudget(m.sellers[0].offerId), EPSILON_UNIT, 'delivered: the epsilon stays spent')
  assert.is(await cisc.remainingBudget(m.sellers[1].offerId), BUDGET, 'never delivered: its reservation is back')
})

test('a settled trade keeps its epsilon spent: nothing is held, nothing comes back', async () => {
  const m = await privateMarket()
  const t = await openTrade(m, { epsilon: EPSILON_UNIT })
  await submit(m, t, 0)
  assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.state, 'settled')
  await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'NothingHeld')
  assert.is(await m.buyer.client.cisc.remainingBudget(m.sellers[0].offerId), BUDGET - EPSILON_UNIT)
})

test.run()
