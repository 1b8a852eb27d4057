// After a refund (or an "input invalid" settlement) DTMC holds the sellers' data fees for its claim
// window: a seller holding an enclave's delivery receipt claims its fee, and the rest is the buyer's,
// but only once somebody calls releaseUnclaimed after the window. Nobody else has a reason to (a seller
// that delivered has claimed; one that did not gets nothing from the call), so the buyer's daemon does,
// or its refund stays short of its deposit for good. A seller of a private dataset or one with a maxTrades
// may also make the call to free the epsilon or the place in its maximum the trade reserved
// (seller/index.ts releaseReservations): the fees go to the buyer either way.
import { ChainRevertError } from '../../../contracts/index.ts'
import { chainTime, withdrawCredit, type RoleContext } from '../context.ts'
import { log } from './log.ts'
import type { BuyerTradeData } from './trade.ts'

/** Meta key prefix (+ tradeId) of our ended trades whose held data fees may come back to us. */
const HELD_FEES_PREFIX = 'buyer:heldFees:'

/** What `releaseHeldFees` needs of such a trade: when its claim window ends (unix seconds, chain time). */
interface HeldFees {
  until: number
}

/** Notes an ended trade whose data fees DTMC holds, if any; they come back by `releaseHeldFees`. */
export async function rememberHeldFees (ctx: RoleContext, tradeId: string): Promise<void> {
  const claims = await ctx.chain.dtmc.claimsOf(tradeId)
  if (claims.held.length === 0) return
  await ctx.store.meta.put(HELD_FEES_PREFIX + tradeId, { until: claims.until } satisfies HeldFees)
}

/**
 * For each trade noted by `rememberHeldFees` whose claim window is over: releaseUnclaimed (the fees of the
 * sellers that claimed nothing come to us), withdraw, and record the amount on the trade (`heldFeesReturned`).
 */
export async function releaseHeldFees (ctx: RoleContext): Promise<void> {
  const pending = await ctx.store.meta.list({ prefix: HELD_FEES_PREFIX })
  if (pending.length === 0) return
  const now = await chainTime(ctx.chain)
  for (const [key, value] of pending) {
    if (now <= (value as HeldFees).until) continue
    const tradeId = key.slice(HELD_FEES_PREFIX.length)
    try {
      const claims = await ctx.chain.dtmc.claimsOf(tradeId)
      if (claims.held.length > 0) {
        const facts = await ctx.chain.dtmc.factsOf(tradeId)
        const amount = claims.held.reduce((sum, i) => sum + facts.sellers[i].fee, 0n)
        await ctx.chain.dtmc.releaseUnclaimed(tradeId)
        await withdrawCredit(ctx)
        const t = await ctx.trades.get<BuyerTradeData>('buyer', tradeId)
        if (t !== undefined) await ctx.trades.update(t, { heldFeesReturned: amount.toString() })
        log.info('held data fees returned: no seller claimed them within the claim window', { tradeId, amount: amount.toString() })
      }
      await ctx.store.meta.delete(key)
    } catch (err) {
      // A revert: somebody released it first (the next look finds nothing held); else the chain is away.
      if (err instanceof ChainRevertError) log.debug('releaseUnclaimed reverted (will look again)', { tradeId, error: err.errorName })
      else log.warn('held data fees not released yet (will retry)', { tradeId, err: err as Error })
    }
  }
}
