// Step 5, Escrow (docs/protocol.md): the buyer opens the trade on DTMC with a deposit covering
// every cap, the chosen sellers' offers and the chosen enclaves' quotes (DTMC checks them again).
import { tagHashOf } from '../../../contracts/index.ts'
import { chainTime, type RoleContext } from '../context.ts'
import { log } from './log.ts'
import { demandOf, type BuyerTrade, type ChosenNode } from './trade.ts'

export async function openEscrow (ctx: RoleContext, t: BuyerTrade, chosen: ChosenNode[]): Promise<void> {
  const d = demandOf(t)
  const started = Date.now()
  const deadline = (await chainTime(ctx.chain)) + d.tradeSeconds
  const { deposit, receipt } = await ctx.chain.dtmc.openTrade({
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
    offerIds: (t.data.chosenSellers ?? []).map(s => BigInt(s.offerId)),
    nodes: chosen.map(n => ({ payee: n.payee, quote: n.quote }))
  })
  log.info('escrowed', { tradeId: t.tradeId, deposit, nodes: chosen.length })
  await ctx.trades.transition(t, 'escrowed', {
    data: { deposit: deposit.toString(), deadline, openedBlock: receipt.blockNumber, phaseMs: { ...t.data.phaseMs, escrow: Date.now() - started } },
    note: `deposit ${deposit} wei; nodes chosen in ${chosen.map(n => `${n.attestMs} ms`).join(', ')}`
  })
}
