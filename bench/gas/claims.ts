// Gas of the delivery-claim paths of issue 10 (properties 1 and 6), 3 nodes and 1 or 3 sellers: the refunding
// finalize (which now holds the data fees), one claimDelivery, releaseUnclaimed, and the settling submission of
// a status-5 result (which holds the fees instead of paying them). The honest path has none of these.
// Then releaseUnclaimed of a refunded trade whose one seller never delivered, on an "any" offer, on a private
// one (whose reserved epsilon CISC gives back, issue 15) and on an "any" offer with a maxTrades (whose count CISC
// gives back, issue 15).
//
//   node bench/gas/claims.ts        (prints a table for BENCHMARKS.md "Delivery claims")
import { startChain, makeMarket, makeSeller, openTrade, submit, claim, increaseTime } from '../../contracts/tools/market.ts'
import { CLAIM_WINDOW, EPSILON_UNIT } from '../../contracts/client.ts'
import { ResultStatus } from '../../contracts/formats.ts'

const chain = await startChain()
const fmt = (g: bigint): string => g.toLocaleString('en-US')
try {
  console.log('| sellers | finalize (refund, fees held) | claimDelivery | releaseUnclaimed (rest of the sellers) | settling submitResult, status 5 (fees held) |')
  console.log('|---:|---:|---:|---:|---:|')
  for (const sellers of [1, 3]) {
    const m = await makeMarket(chain, sellers, 3)
    const t = await openTrade(m)
    await increaseTime(chain, 3601)
    const refund = (await m.buyer.client.dtmc.finalize(t.tradeId)).receipt.gasUsed
    const claimed = (await claim(m, t, 0, 1)).gasUsed
    let release = 0n
    if (sellers > 1) {
      await increaseTime(chain, CLAIM_WINDOW + 1)
      release = (await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)).gasUsed
    }
    const m5 = await makeMarket(chain, sellers, 3)
    const t5 = await openTrade(m5)
    const bad = { status: ResultStatus.InputInvalid, resultSize: 0n, gasUsed: 0n }
    await submit(m5, t5, 0, bad)
    await submit(m5, t5, 1, bad)
    const settling = (await submit(m5, t5, 2, bad)).gasUsed
    console.log(`| ${sellers} | ${fmt(refund)} | ${fmt(claimed)} | ${release === 0n ? '–' : fmt(release)} | ${fmt(settling)} |`)
  }
  console.log('\n| 1 seller, 3 nodes, nothing delivered | releaseUnclaimed |\n|---|---:|')
  for (const [what, opts, epsilon] of [
    ['"any" offer', {}, undefined],
    ['private offer (its reservation given back)', { epsilonBudget: EPSILON_UNIT }, EPSILON_UNIT],
    ['"any" offer with a maxTrades (its count given back)', { maxTrades: 10 }, undefined]
  ] as const) {
    const m = await makeMarket(chain, 0, 3)
    m.sellers.push(await makeSeller(chain, opts))
    const t = await openTrade(m, { epsilon })
    await increaseTime(chain, 3601)
    await m.buyer.client.dtmc.finalize(t.tradeId)
    await increaseTime(chain, CLAIM_WINDOW + 1)
    console.log(`| ${what} | ${fmt((await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)).gasUsed)} |`)
  }
} finally {
  await chain.stop()
}
