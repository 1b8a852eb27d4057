// Step 5, Escrow (docs/protocol.md): the buyer opens the trade on DTMC with a deposit covering
// every cap, the chosen sellers' offers and the chosen enclaves' quotes (DTMC checks them again).
import { tagHashOf, TransactionDroppedError } from '../../../contracts/index.ts'
import { chainTime, type RoleContext } from '../context.ts'
import { log } from './log.ts'
import { demandOf, type BuyerTrade, type ChosenNode } from './trade.ts'

export async function openEscrow (ctx: RoleContext, t: BuyerTrade, chosen: ChosenNode[]): Promise<void> {
  const d = demandOf(t)
  const started = Date.now()
  const deadline = (await chainTime(ctx.chain)) + d.tradeSeconds
  const params = {
    salt: t.data.salt,
    tagHash: tagHashOf(d.tag),
    codeHash: d.codeHash,
    deadline,
    sellerCap: d.sellerCap,
    nodePrice: d.nodePrice,
    nodeCap: d.nodeCap,
    outputPrice: d.outputPrice,
    outputCap: d.outputCap,
    // The same gas cap the code envelopes hold: every node runs with exactly it and is paid nodePrice × gasCap.
    gasCap: BigInt(t.data.gasCap),
    // What the buyer signed in its demand: CISC charges it to every private offer of the trade.
    epsilon: d.epsilon,
    offerIds: (t.data.chosenSellers ?? []).map(s => BigInt(s.offerId)),
    nodes: chosen.map(n => ({ payee: n.payee, quote: n.quote }))
  }
  let opened
  try {
    opened = await ctx.chain.dtmc.openTrade(params)
  } catch (err) {
    // A reorganisation dropped our openTrade before we saw it mined, and another transaction of ours took its
    // nonce: it can never be mined. The trade is opened again, once here (as reopenVanishedEscrow does for one
    // dropped after we saw it mined); the same salt gives the same trade id, and DTMC refuses a second opening.
    if (!(err instanceof TransactionDroppedError) || await ctx.chain.dtmc.trade(t.tradeId) !== null) throw err
    log.warn('the escrow left the chain in a reorganisation before it was confirmed: opening the trade again', { tradeId: t.tradeId })
    opened = await ctx.chain.dtmc.openTrade(params)
  }
  const { deposit, receipt } = opened
  log.info('escrowed', { tradeId: t.tradeId, deposit, nodes: chosen.length })
  await ctx.trades.transition(t, 'escrowed', {
    data: { codeEnvelopes: undefined, deposit: deposit.toString(), deadline, escrowTx: receipt.hash, openedBlock: receipt.blockNumber, phaseMs: { ...t.data.phaseMs, escrow: Date.now() - started } },
    note: `deposit ${deposit} wei; nodes chosen in ${chosen.map(n => `${n.attestMs} ms`).join(', ')}`
  })
}

/**
 * The trade we escrowed is not on DTMC: a reorganisation dropped the block that opened it. The chain client
 * broadcasts the same transaction again; only when it cannot (a restart lost it, or its nonce was taken since)
 * and the transaction is neither mined nor pending is the trade opened again, with the same parties and terms
 * (the same salt: the same trade id, which the sellers and nodes already know).
 */
export async function reopenVanishedEscrow (ctx: RoleContext, t: BuyerTrade): Promise<void> {
  if (await ctx.chain.resubmitDropped() > 0) return
  if (await ctx.chain.dtmc.trade(t.tradeId) !== null) return
  if (t.data.escrowTx !== undefined && await ctx.chain.provider.getTransaction(t.data.escrowTx) !== null) return
  const chosen = t.data.chosenNodes
  if (chosen === undefined) {
    await ctx.trades.transition(t, 'failed', { reason: 'the escrow left the chain in a reorganisation and the chosen nodes are not recorded' })
    return
  }
  log.warn('the escrow left the chain in a reorganisation: opening the trade again', { tradeId: t.tradeId })
  await openEscrow(ctx, t, chosen)
}
