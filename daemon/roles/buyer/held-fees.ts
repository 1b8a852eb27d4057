// After a refund (or an "input invalid" settlement) DTMC holds the sellers' data fees for its claim
// window: a seller holding an enclave's delivery receipt claims its fee, and the rest is the buyer's,
// but only once somebody calls releaseUnclaimed after the window. Nobody else has a reason to (a seller
// that delivered has claimed; one that did not gets nothing from the call), so the buyer's daemon does,
// or its refund stays short of its deposit for good. A seller of a private dataset or one with a maxTrades
// may also make the call to free the epsilon or the place in its maximum the trade reserved
// (seller/index.ts releaseReservations): the fees go to the buyer either way. A seller's decline of an open trade
// also holds the node fees, for DTMC's DECLINE_NODE_CLAIM_WINDOW (claimRun): those come back at the first release
// after that shorter window, the data fees at one after the claim window.
import { ChainRevertError } from '../../../contracts/index.ts'
import { chainTime, withdrawCredit, type RoleContext } from '../context.ts'
import { log } from './log.ts'
import type { BuyerTradeData } from './trade.ts'

/** Meta key prefix (+ tradeId) of our ended trades whose held data fees may come back to us. */
const HELD_FEES_PREFIX = 'buyer:heldFees:'

/** What `releaseHeldFees` needs of such a trade: when its next window ends (unix seconds, chain time). */
interface HeldFees {
  until: number
}

/** Notes an ended trade whose data fees DTMC holds, if any; they come back by `releaseHeldFees`. */
export async function rememberHeldFees (ctx: RoleContext, tradeId: string): Promise<void> {
  const claims = await ctx.chain.dtmc.claimsOf(tradeId)
  const until = nextUntil(claims)
  if (until === undefined) return
  await ctx.store.meta.put(HELD_FEES_PREFIX + tradeId, { until } satisfies HeldFees)
}

/** When the earliest window of what is still held ends (the node fees' first); undefined: nothing held. */
function nextUntil (claims: { until: number, held: number[], nodeUntil: number, nodesHeld: number[] }): number | undefined {
  if (claims.nodesHeld.length > 0) return claims.nodeUntil
  if (claims.held.length > 0) return claims.until
  return undefined
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
      const nodesDue = claims.nodesHeld.length > 0 && now > claims.nodeUntil
      const sellersDue = claims.held.length > 0 && now > claims.until
      if (nodesDue || sellersDue) {
        const facts = await ctx.chain.dtmc.factsOf(tradeId)
        const amount = (sellersDue ? claims.held.reduce((sum, i) => sum + facts.sellers[i].fee, 0n) : 0n) +
          (nodesDue ? facts.nodeFee * BigInt(claims.nodesHeld.length) : 0n)
        await ctx.chain.dtmc.releaseUnclaimed(tradeId)
        await withdrawCredit(ctx)
        const t = await ctx.trades.get<BuyerTradeData>('buyer', tradeId)
        const before = BigInt(t?.data.heldFeesReturned ?? '0')
        if (t !== undefined) await ctx.trades.update(t, { heldFeesReturned: (before + amount).toString() })
        log.info(sellersDue
          ? 'held data fees returned: no seller claimed them within the claim window'
          : 'held node fees returned: no node claimed them within the window after the decline', { tradeId, amount: amount.toString() })
      }
      // What is still held (the data fees after the node fees) waits for its own window.
      const rest = nextUntil({ ...claims, held: sellersDue ? [] : claims.held, nodesHeld: nodesDue ? [] : claims.nodesHeld })
      if (rest === undefined) await ctx.store.meta.delete(key)
      else await ctx.store.meta.put(key, { until: rest } satisfies HeldFees)
    } catch (err) {
      // A revert: somebody released it first (the next look finds nothing held); else the chain is away.
      if (err instanceof ChainRevertError) log.debug('releaseUnclaimed reverted (will look again)', { tradeId, error: err.errorName })
      else log.warn('held data fees not released yet (will retry)', { tradeId, err: err as Error })
    }
  }
}
