// Step 9, Consensus and payment (docs/protocol.md), as the buyer follows it: the results coming in
// on DTMC, `finalize` when all are in or the deadline has passed, then its refund and the payments.
import { ChainRevertError, type TradeView } from '../../../contracts/index.ts'
import { chainTime, creditsOf, tradeFromBlock, withdrawCredit, type RoleContext } from '../context.ts'
import type { BuyerTrade } from './trade.ts'
import { explainRefund } from '../../ends.ts'
import { fetchDiagnosis } from './result.ts'
import { rememberHeldFees } from './held-fees.ts'

/**
 * One look at the trade on DTMC. Returns the trade and DTMC's view once it is settled on a result
 * with status 0 (the result can be fetched: step 10); undefined while it is open, or when it ended
 * without an output (refunded, or a final status other than 0: the record says which).
 */
export async function followConsensus (ctx: RoleContext, t: BuyerTrade): Promise<{ t: BuyerTrade, view: TradeView } | undefined> {
  const view = await ctx.chain.dtmc.trade(t.tradeId)
  if (view === null) return undefined
  if (view.state === 'open') {
    if (view.nResults > 0 && t.state === 'escrowed') {
      t = await ctx.trades.transition(t, 'executing', { data: { phaseMs: { ...t.data.phaseMs, execution: Date.now() - Date.parse(t.updatedAt) } }, note: 'first result submitted' })
    }
    if (view.nResults === view.nodes.length && t.state !== 'submitted') {
      t = await ctx.trades.transition(t, 'submitted', { note: `all ${view.nResults} results in` })
    }
    // DTMC settles by itself on the submission after a majority (or the last one). We finalize when no
    // majority can come any more, or after the deadline; with a majority but a silent node we leave the
    // others until the deadline (bounded by MAX_TRADE_DURATION) so that a slow honest node is still paid.
    const lead = Math.max(0, ...view.groups.map(g => g.count))
    const noMajority = (lead + view.nodes.length - view.nResults) * 2 <= view.nodes.length
    if (view.nResults === view.nodes.length || noMajority || await chainTime(ctx.chain) > view.deadline) {
      try {
        await ctx.chain.dtmc.finalize(t.tradeId)
      } catch (err) {
        // Another party finalized first: the next look sees the outcome.
        if (!(err instanceof ChainRevertError)) throw err
      }
    }
    return undefined
  }
  // Final only once its settlement (or refund) is trade.confirmations deep: a reorganisation may yet undo it.
  if (t.state !== 'finalized' && ctx.chain.confirmations > 1 && await endedAt(ctx, t.tradeId) > await ctx.chain.confirmedBlock()) return undefined
  if (t.state !== 'finalized') {
    const credits = await creditsOf(ctx.chain, t.tradeId, tradeFromBlock(ctx, t.data.openedBlock))
    // The end we saw was undone by a reorganisation meanwhile: look again once the chain shows it.
    if (credits === undefined) return undefined
    const refund = credits.get(ctx.keys.ethAddress.toLowerCase()) ?? 0n
    // With an output to fetch, the refund is withdrawn after it (index.ts): on a chain with timed blocks the
    // withdrawal waits a block, and the result need not wait for it.
    if (view.state === 'refunded' || view.final!.status !== 0) await withdrawCredit(ctx)
    const payments = Object.fromEntries([...credits].map(([k, v]) => [k, v.toString()]))
    // The sellers' data fees may be held for delivery claims: they come back to us after the window (held-fees.ts).
    if (view.state === 'refunded' || view.final!.status !== 0) await rememberHeldFees(ctx, t.tradeId)
    if (view.state === 'refunded') {
      await ctx.trades.transition(t, 'refunded', { data: { refund: refund.toString(), payments }, reason: explainRefund(view).buyer })
      return undefined
    }
    t = await ctx.trades.transition(t, 'finalized', {
      data: { refund: refund.toString(), payments, finalResultHash: view.final!.resultHash.toLowerCase(), finalStatus: view.final!.status, resultSize: view.final!.resultSize.toString() },
      note: `majority of ${view.final!.count}/${view.nodes.length}: status ${view.final!.status}, ${view.final!.resultSize} bytes; refund ${refund} wei`
    })
  }
  if (view.final!.status !== 0) {
    // No output: the nodes of the majority hold why, encrypted to us; the trade fails once we have it (or their retention is over).
    await fetchDiagnosis(ctx, t, view)
    return undefined
  }
  return { t, view }
}

/** The block of the trade's TradeSettled or TradeRefunded event (the newest, should there be several). */
async function endedAt (ctx: RoleContext, tradeId: string): Promise<number> {
  const c = ctx.chain.dtmc.contract
  const logs = [
    ...await c.queryFilter(c.filters.TradeSettled(tradeId), ctx.network.deployBlock),
    ...await c.queryFilter(c.filters.TradeRefunded(tradeId), ctx.network.deployBlock)
  ]
  return Math.max(0, ...logs.map(l => l.blockNumber))
}
