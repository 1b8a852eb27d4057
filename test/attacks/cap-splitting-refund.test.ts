// Attack (issue 10, property 1, the admitted grief): the buyer gives each node a different gas cap, the nodes'
// results differ, no majority forms and DTMC refunded the whole deposit: every seller had delivered and every
// node had run, and the buyer (who may have read one node's result off its host) paid nothing. Now the refund
// holds the sellers' data fees: each seller claims its own with an enclave's receipt, so splitting the caps
// costs the buyer the data it received. (Nodes without a majority are still unpaid: the gas cap on chain,
// issue 10 property 5, takes away the splitting itself.)
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startChain, makeMarket, openTrade, submit, reverts, claim, conserved, everyone, paid, type Chain } from '../../contracts/tools/market.ts'

let chain: Chain

test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

test('three nodes, three caps, three results: the trade refunds at once but the sellers keep their data fees', async () => {
  const m = await makeMarket(chain, 2, 3)
  const t = await openTrade(m)
  const fees = (await m.buyer.client.dtmc.trade(t.tradeId))!.sellers.map(s => s.fee)
  await conserved(chain, everyone(m), async () => {
    // Each cap stops the analysis at another point: three different results (the gas used itself is
    // no longer on chain, so they differ in what they signed: here, the result hash).
    await submit(m, t, 0, { resultHash: '0x' + '01'.repeat(32), status: 2, resultSize: 0n })
    await submit(m, t, 1, { resultHash: '0x' + '02'.repeat(32), status: 2, resultSize: 0n })
    await submit(m, t, 2, { resultHash: '0x' + '03'.repeat(32), status: 2, resultSize: 0n })
    assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.state, 'refunded')
    // Before the fix: the buyer was credited t.deposit.
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fees[0] - fees[1])
    await claim(m, t, 0, 2)
    await claim(m, t, 1, 0)
    assert.is(await paid(m, t.tradeId, m.sellers[0].address), fees[0])
    assert.is(await paid(m, t.tradeId, m.sellers[1].address), fees[1])
    assert.equal((await m.buyer.client.dtmc.claimsOf(t.tradeId)).held, [])
    await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'NothingHeld')
  })
})

test.run()
