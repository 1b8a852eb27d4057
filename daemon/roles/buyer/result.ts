// Step 10, Result delivery (docs/protocol.md): the buyer fetches the encrypted result from a node
// of the majority on /sdte/result/1, decrypts it with the trade's result key and checks its hash
// against the final hash on DTMC. It keeps the result sealed; buyer_result opens it on request.
import { hexlify } from 'ethers'
import { decryptResult, openResult } from '../../../enclave/index.ts'
import { resultHashOf, type TradeView } from '../../../contracts/index.ts'
import { openLocal, sealLocal } from '../../local-secrets.ts'
import { appError } from '../../rpc/errors.ts'
import { tradeParties, type RoleContext } from '../context.ts'
import { log } from './log.ts'
import { localKey, resultKey, resultSalt } from './secrets.ts'
import type { BuyerTrade, BuyerTradeData } from './trade.ts'

/** Tries the nodes of the majority in turn; the first result that checks out makes the trade `delivered`. */
export async function fetchResult (ctx: RoleContext, t: BuyerTrade, view: TradeView): Promise<void> {
  const started = Date.now()
  const { nodes } = await tradeParties(ctx.chain, t.tradeId, ctx.network.deployBlock)
  for (const i of view.final!.members) {
    const node = nodes.find(n => n.index === i)
    if (node === undefined) continue
    try {
      // The node's peer id as CISC has it (our record may predate a restart in the middle of escrow).
      const peerId = t.data.chosenNodes?.find(c => c.quote.taskId === node.taskId)?.peerId ?? (await ctx.chain.cisc.node(node.payee))?.peerId
      if (peerId === undefined) throw new Error(`node ${node.payee} is not registered in CISC`)
      const envelope = await ctx.result.fetch(peerId, { tradeId: t.tradeId, taskId: node.taskId })
      decryptResult(envelope, resultKey(ctx, t.tradeId).privateKey, { taskId: node.taskId, resultHash: view.final!.resultHash, resultSalt: resultSalt(ctx, t.tradeId) })
      await ctx.store.results.put(t.tradeId, sealLocal(localKey(ctx), envelope, `result/${t.tradeId}/${node.taskId}`))
      await ctx.trades.transition(t, 'delivered', {
        data: { phaseMs: { ...t.data.phaseMs, result: Date.now() - started } },
        note: `result fetched from node ${i} and checked against the final hash`
      })
      return
    } catch (err) {
      log.warn('result fetch failed; trying another node of the majority', { tradeId: t.tradeId, node: i, err: err as Error })
    }
  }
}

/** buyer_result: the plaintext result, decrypted here, checked against DTMC's final hash. */
export async function readResult (ctx: RoleContext, tradeId: string): Promise<{ result: string, resultHash: string, verified: boolean, gasUsed: string }> {
  const t = await ctx.trades.get<BuyerTradeData>('buyer', tradeId)
  if (t === undefined) throw appError('NotFound', `no buyer trade ${tradeId}`)
  const sealed = await ctx.store.results.get(t.tradeId)
  if (sealed === undefined) throw appError('Unavailable', `no result yet (trade is ${t.state})`)
  const view = await ctx.chain.dtmc.trade(t.tradeId)
  const { nodes } = await tradeParties(ctx.chain, t.tradeId, ctx.network.deployBlock)
  for (const n of nodes) {
    let envelope: Uint8Array
    try { envelope = openLocal(localKey(ctx), sealed, `result/${t.tradeId}/${n.taskId}`) } catch { continue }
    const finalHash = view?.final?.resultHash.toLowerCase() ?? t.data.finalResultHash ?? '0x'
    const salt = resultSalt(ctx, t.tradeId)
    const { output, gasUsed } = openResult(envelope, resultKey(ctx, t.tradeId).privateKey, { taskId: n.taskId, resultHash: finalHash, resultSalt: salt })
    const resultHash = resultHashOf(salt, output)
    return { result: hexlify(output), resultHash, verified: resultHash === finalHash, gasUsed: gasUsed.toString() }
  }
  throw appError('Unavailable', 'the stored result does not open with this daemon\'s key')
}
