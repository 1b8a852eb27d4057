// Attack (issue 10, item 7): a trade whose majority is already certain is held open until its deadline.
// Before the fix `finalize` waited for every node or for the deadline, so one silent node (or a buyer
// that picked one) kept the agreeing nodes' and the sellers' pay locked. Now the outcome settles as
// soon as it cannot change: anyone may finalize once a group holds a strict majority of the trade's
// nodes (or once no group can reach one), and the next submission after a majority settles by itself.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startChain, makeMarket, openTrade, submit, commit, reveal, reverts, paid, type Chain } from '../../contracts/tools/market.ts'

let chain: Chain

test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

test('two of three agreeing nodes are paid without waiting for the silent third', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  for (let i = 0; i < 3; i++) await commit(m, t, i) // the third commits, then stays silent
  await reveal(m, t, 0)
  await reverts(m.sellers[0].client.dtmc.finalize(t.tradeId), 'FinalizeTooEarly') // one of three: not certain yet
  await reveal(m, t, 1)
  const { outcome } = await m.sellers[0].client.dtmc.finalize(t.tradeId)
  assert.is(outcome, 'settled')
  assert.ok(await paid(m, t.tradeId, m.nodes[0].address) > 0n)
  assert.ok(await paid(m, t.tradeId, m.sellers[0].address) > 0n)
  await reverts(reveal(m, t, 2), 'AlreadyFinalized')
})

test('the submission after a majority settles the trade and is paid with it', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  await submit(m, t, 0)
  await submit(m, t, 1)
  await submit(m, t, 2)
  const view = await m.buyer.client.dtmc.trade(t.tradeId)
  assert.is(view!.state, 'settled')
  assert.equal(view!.final!.members, [0, 1, 2])
})

test('a trade that can no longer reach a majority is refunded at once', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  await submit(m, t, 0, { resultSize: 1n })
  await submit(m, t, 1, { resultSize: 2n })
  await reverts(m.sellers[0].client.dtmc.finalize(t.tradeId), 'FinalizeTooEarly') // a third result may still make two
  await submit(m, t, 2, { resultSize: 3n })
  const view = await m.buyer.client.dtmc.trade(t.tradeId)
  assert.is(view!.state, 'refunded')
})

test('anyone may refund at once when no group can reach a majority even with the missing results', async () => {
  const m = await makeMarket(chain, 1, 5)
  const t = await openTrade(m)
  for (let i = 0; i < 5; i++) await commit(m, t, i, { resultSize: BigInt(i + 1) })
  for (let i = 0; i < 3; i++) await reveal(m, t, i)
  // three different results of five: the two missing ones could still make one of them three
  await reverts(m.sellers[0].client.dtmc.finalize(t.tradeId), 'FinalizeTooEarly')
  await reveal(m, t, 3)
  // four different results: at most two agree, never three of five
  assert.is((await m.sellers[0].client.dtmc.finalize(t.tradeId)).outcome, 'refunded')
  // Everything but the seller's data fee, held for its delivery claim (issue 10 property 1: a rule change).
  const fee = (await m.buyer.client.dtmc.trade(t.tradeId))!.sellers[0].fee
  assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fee)
})

test.run()
