// Step 11, Rating (docs/protocol.md): the buyer rates a seller of the trade on DTMC, which records
// the rating and the result info (never the result) in CISC for future buyers.
import { ChainRevertError } from '../../../contracts/index.ts'
import { appError } from '../../rpc/errors.ts'
import { tradeFromBlock, tradeParties, type RoleContext } from '../context.ts'
import type { BuyerTradeData } from './trade.ts'

/** buyer_rate: once per seller; the trade is `rated` when every seller is. */
export async function rateSeller (ctx: RoleContext, tradeId: string, seller: string, score: number, comment: string): Promise<{ txHash: string }> {
  const t = await ctx.trades.get<BuyerTradeData>('buyer', tradeId)
  if (t === undefined) throw appError('NotFound', `no buyer trade ${tradeId}`)
  const { sellers } = await tradeParties(ctx.chain, t.tradeId, tradeFromBlock(ctx, t.data.openedBlock))
  const s = sellers.find(x => x.account === seller.toLowerCase())
  if (s === undefined) throw appError('Rejected', `${seller} is not a seller of this trade`, { param: 'seller' })
  let receipt
  try {
    receipt = await ctx.chain.dtmc.rate(t.tradeId, s.index, score, comment)
  } catch (err) {
    if (err instanceof ChainRevertError) throw appError('ChainReverted', `DTMC refused the rating: ${err.errorName}`, { error: err.errorName })
    throw err
  }
  const ratings = { ...t.data.ratings, [s.account]: score }
  await ctx.trades.transition(t, Object.keys(ratings).length === sellers.length ? 'rated' : t.state, { data: { ratings }, note: `rated seller ${s.index}: ${score}` })
  return { txHash: receipt.hash }
}
