// Step 10, Result delivery (docs/protocol.md): the buyer fetches the encrypted result from a node
// of the majority on /sdte/result/1 with a request signed by its account, decrypts it with the
// trade's result key and checks its hash against the final hash on DTMC. It keeps the result
// sealed (buyer_result opens it on request), then acknowledges it to the nodes of the majority,
// which may then drop their copies. Nodes keep an unacknowledged result RESULT_RETENTION_SECONDS
// past the deadline, so a buyer offline across settlement fetches it when it comes back.
import { hexlify } from 'ethers'
import { decryptResult, openDiagnosis, openResult } from '../../../enclave/index.ts'
import { resultHashOf, type TradeView } from '../../../contracts/index.ts'
import { resultConstants, signResultMessage, type ResultDomain } from '../../../p2p/index.ts'
import { openLocal, sealLocal } from '../../local-secrets.ts'
import { appError } from '../../rpc/errors.ts'
import { chainTime, nodePeerId, tradeFromBlock, tradeParties, type RoleContext, type TradeNodeEvent } from '../context.ts'
import { explainRun } from '../../ends.ts'
import { DIAGNOSIS_WAIT_MS } from './constants.ts'
import { log } from './log.ts'
import { localKey, resultKey, resultSalt } from './secrets.ts'
import type { BuyerTrade, BuyerTradeData } from './trade.ts'

/**
 * Tries the nodes of the majority in turn; the first result that checks out makes the trade
 * `delivered`, and every node of the majority is told so. When none has it and the retention has
 * run out, the trade fails: no node need hold the result any more.
 */
export async function fetchResult (ctx: RoleContext, t: BuyerTrade, view: TradeView): Promise<void> {
  const started = Date.now()
  const { nodes } = await tradeParties(ctx.chain, t.tradeId, tradeFromBlock(ctx, t.data.openedBlock))
  const majority = view.final!.members.map(i => nodes.find(n => n.index === i)).filter((n): n is TradeNodeEvent => n !== undefined)
  const domain = domainOf(ctx)
  for (const node of majority) {
    try {
      const peerId = await nodePeer(ctx, t, node)
      const req = signResultMessage('result-request', { tradeId: t.tradeId, taskId: node.taskId }, domain, ctx.keys.ethWallet.privateKey)
      const envelope = await ctx.result.fetch(peerId, req)
      decryptResult(envelope, resultKey(ctx, t.tradeId).privateKey, { taskId: node.taskId, resultHash: view.final!.resultHash, resultSalt: resultSalt(ctx, t.tradeId) })
      await ctx.store.results.put(t.tradeId, sealLocal(localKey(ctx), envelope, `result/${t.tradeId}/${node.taskId}`))
      await ctx.trades.transition(t, 'delivered', {
        data: { phaseMs: { ...t.data.phaseMs, result: Date.now() - started } },
        note: `result fetched from node ${node.index} and checked against the final hash`
      })
      await acknowledge(ctx, t, majority)
      return
    } catch (err) {
      log.warn('result fetch failed; trying another node of the majority', { tradeId: t.tradeId, node: node.index, err: err as Error })
    }
  }
  if (await chainTime(ctx.chain) > view.deadline + resultConstants.RESULT_RETENTION_SECONDS) {
    await ctx.trades.transition(t, 'failed', {
      reason: `no node of the majority served the result within ${resultConstants.RESULT_RETENTION_SECONDS} s of the deadline, the time nodes keep it`
    })
  }
}

/**
 * A trade DTMC settled on a status other than 0: no output, but each node of the majority holds the
 * enclave's diagnosis (which opcode at which position, the gas used, the output size, the refused
 * sellers), encrypted to us and signed by its enclave. The first that opens makes the trade `failed`
 * with the whole explanation; when none is served within DIAGNOSIS_WAIT_MS (or the retention is over),
 * it fails with what DTMC says (the status and the trade's caps).
 */
export async function fetchDiagnosis (ctx: RoleContext, t: BuyerTrade, view: TradeView): Promise<void> {
  const status = view.final!.status
  const { nodes } = await tradeParties(ctx.chain, t.tradeId, ctx.network.deployBlock)
  const majority = view.final!.members.map(i => nodes.find(n => n.index === i)).filter((n): n is TradeNodeEvent => n !== undefined)
  const domain = domainOf(ctx)
  for (const node of majority) {
    try {
      const req = signResultMessage('result-request', { tradeId: t.tradeId, taskId: node.taskId }, domain, ctx.keys.ethWallet.privateKey)
      const envelope = await ctx.result.fetch(await nodePeer(ctx, t, node), req)
      const diagnosis = openDiagnosis(envelope, resultKey(ctx, t.tradeId).privateKey, { taskId: node.taskId, enclaveAddress: node.enclave })
      if (diagnosis.status !== status) throw new Error(`the diagnosis is for status ${diagnosis.status}, DTMC settled on ${status}`)
      await ctx.trades.transition(t, 'failed', { data: { diagnosis }, reason: explainRun(status, view, diagnosis).buyer, note: `diagnosis from node ${node.index}` })
      await acknowledge(ctx, t, majority)
      return
    } catch (err) {
      log.warn('diagnosis fetch failed; trying another node of the majority', { tradeId: t.tradeId, node: node.index, err: err as Error })
    }
  }
  const settledAt = Date.parse(t.timeline.findLast(e => e.state === 'finalized')?.at ?? t.updatedAt)
  if (Date.now() - settledAt > DIAGNOSIS_WAIT_MS || await chainTime(ctx.chain) > view.deadline + resultConstants.RESULT_RETENTION_SECONDS) {
    await ctx.trades.transition(t, 'failed', { reason: explainRun(status, view).buyer, note: `no node of the majority served the diagnosis within ${DIAGNOSIS_WAIT_MS / 1000} s` })
  }
}

/** Tells every node of the majority that the buyer has its result (best effort: a node missed keeps it only until its retention ends). */
async function acknowledge (ctx: RoleContext, t: BuyerTrade, majority: TradeNodeEvent[]): Promise<void> {
  await Promise.all(majority.map(async node => {
    try {
      const ack = signResultMessage('result-ack', { tradeId: t.tradeId, taskId: node.taskId }, domainOf(ctx), ctx.keys.ethWallet.privateKey)
      await ctx.result.ack(await nodePeer(ctx, t, node), ack)
    } catch (err) {
      log.debug('result ack not delivered; the node drops the result at the end of its retention', { tradeId: t.tradeId, node: node.index, err: err as Error })
    }
  }))
}

function domainOf (ctx: RoleContext): ResultDomain {
  return { chainId: ctx.network.chainId, dtmc: ctx.network.contracts.DTMC }
}

/** The node's peer id as CISC has it (our record may predate a restart in the middle of escrow). */
async function nodePeer (ctx: RoleContext, t: BuyerTrade, node: TradeNodeEvent): Promise<string> {
  // The node's peer id as CISC has it when our record lacks it (a restart in the middle of escrow).
  return t.data.chosenNodes?.find(c => c.quote.taskId === node.taskId)?.peerId ?? await nodePeerId(ctx, node.payee)
}

/** buyer_result: the plaintext result, decrypted here, checked against DTMC's final hash. */
export async function readResult (ctx: RoleContext, tradeId: string): Promise<{ result: string, resultHash: string, verified: boolean, gasUsed: string }> {
  const t = await ctx.trades.get<BuyerTradeData>('buyer', tradeId)
  if (t === undefined) throw appError('NotFound', `no buyer trade ${tradeId}`)
  const sealed = await ctx.store.results.get(t.tradeId)
  if (sealed === undefined) throw appError('Unavailable', `no result yet (trade is ${t.state})`)
  const view = await ctx.chain.dtmc.trade(t.tradeId)
  const { nodes } = await tradeParties(ctx.chain, t.tradeId, tradeFromBlock(ctx, t.data.openedBlock))
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
