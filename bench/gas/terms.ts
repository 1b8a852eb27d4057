// Gas of the seller's terms (issue 15) in CISC.offerForTrade: openTrade over one seller and one node on
// an offer that allows any code and any buyer, without maximum nor expiry, against the same trade on an
// offer that names its buyer, a maximum of trades (counted) and an expiry; the same for a code list; and a
// private offer whose budget the trade's epsilon is charged to.
// Prints only (the numbers go to BENCHMARKS.md by hand, with what they measure).
//
//   node bench/gas/terms.ts
import { startChain, makeMarket, makeSeller, openTrade, latestTimestamp, CODE_HASH } from '../../contracts/tools/market.ts'

const chain = await startChain()
try {
  const m = await makeMarket(chain, 0, 1)
  const gasOf = async (opts: Parameters<typeof makeSeller>[1], epsilon?: bigint): Promise<bigint> => {
    const seller = await makeSeller(chain, opts)
    await openTrade({ ...m, sellers: [seller] }, { epsilon }) // the first trade also writes the offer's count slot (or budget) for the first time
    return (await openTrade({ ...m, sellers: [seller] }, { epsilon })).receipt.gasUsed
  }
  const expiresAt = (await latestTimestamp(chain)) + 86_400
  const rows: Array<[string, bigint]> = [
    ['any code, any buyer, no maximum, no expiry', await gasOf({ anyCode: true })],
    ['any code, 1 allowed buyer', await gasOf({ anyCode: true, allowedBuyers: [m.buyer.address] })],
    ['any code, expiry', await gasOf({ anyCode: true, expiresAt })],
    ['any code, maximum of trades (counted)', await gasOf({ anyCode: true, maxTrades: 1000 })],
    ['any code, 1 buyer, expiry, maximum', await gasOf({ anyCode: true, allowedBuyers: [m.buyer.address], expiresAt, maxTrades: 1000 })],
    ['1 allowed code hash', await gasOf({ allowed: [CODE_HASH] })],
    ['private, epsilon charged to the budget (issue 15)', await gasOf({ epsilonBudget: 1_000_000_000n }, 1_000_000n)]
  ]
  console.log('| offer terms (1 seller, 1 node; second trade on the offer) | openTrade gas | vs the first row |\n|---|---:|---:|')
  for (const [what, gas] of rows) console.log(`| ${what} | ${gas.toLocaleString('en-US')} | ${(gas - rows[0][1]).toLocaleString('en-US')} |`)
} finally {
  await chain.stop()
}
