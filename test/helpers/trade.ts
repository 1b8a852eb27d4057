// One trade on a LocalTestnet, driven through the daemons' control APIs as an operator would, and
// the payments DTMC must make for it: shared by the end-to-end tests that run a trade on an unusual
// network (across namespaces and NATs, on a chain with slow blocks).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor, type LocalTestnet } from '../../daemon/tools/index.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'

export const TRADE_TERMS = {
  unitPrice: 10n,
  sellerCap: 500_000n,
  nodePrice: 1n,
  nodeCap: 200_000_000n,
  outputPrice: 12n,
  outputCap: 4096n
}
export const STATS_ARTIFACT = join(ARTIFACTS_DIR, 'StatsFast.json')

export interface BuyerView {
  records: Array<{ state: string, reason?: string, payments?: Record<string, string>, rejected?: unknown }>
  chain: { deposit: string, gasCap: string, final: { resultSize: string, count: number, members: number[] }, nodes: Array<{ payee: string }> }
}

export interface TradeRun {
  tradeId: string
  view: BuyerView
  result: { result: string, verified: boolean }
  providers: Array<{ peerId: string, addresses: string[] }>
}

/** Each seller lists datasets[i] under tag; the buyer asks `nodes` nodes to run Stats on them and waits for the end. */
export async function runTrade (net: LocalTestnet, o: { tag: string, datasets: Uint8Array[], nodes: number, timeoutMs: number }): Promise<TradeRun> {
  const t = TRADE_TERMS
  for (const [i, s] of net.sellers.entries()) {
    const path = join(s.datadir, 'data.csv')
    writeFileSync(path, o.datasets[i])
    await s.rpc.call('seller_addDataset', { path, tag: o.tag, unitPrice: t.unitPrice.toString(), policy: { mode: 'any' } })
  }
  const buyer = net.buyers[0]
  const providers = await waitFor('the DHT announcements', async () => {
    const found = await buyer.rpc.call<Array<{ peerId: string, addresses: string[] }>>('net_findProviders', { key: `sdte:dataset:${o.tag}` })
    return found.length >= net.sellers.length ? found : undefined
  }, 60_000, 500)
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: o.tag, codePath: STATS_ARTIFACT, nodes: o.nodes, sellers: net.sellers.length,
    sellerPrice: '20', sellerCap: t.sellerCap.toString(), nodePrice: t.nodePrice.toString(), nodeCap: t.nodeCap.toString(),
    outputPrice: t.outputPrice.toString(), outputCap: t.outputCap.toString(), deadlineSeconds: 600
  })
  const view = await waitFor('the end of the trade', async () => {
    const v = await buyer.rpc.call<BuyerView>('trade_get', { tradeId })
    return ['delivered', 'failed', 'refunded'].includes(v.records[0].state) ? v : undefined
  }, o.timeoutMs, 500).catch(async (err: Error) => {
    // Where it stood, for the reader of a failed run: the buyer's timeline and the chain's view.
    const v = await buyer.rpc.call<BuyerView & { records: Array<{ timeline?: Array<{ state: string, at?: string, note?: string }> }>, chain?: unknown }>('trade_get', { tradeId }).catch(() => undefined)
    throw new Error(`${err.message}: the buyer's record ${JSON.stringify(v?.records[0].timeline?.map(e => [e.state, e.note]) ?? null)}, on chain ${JSON.stringify(v?.chain ?? null)}`)
  })
  const result = view.records[0].state === 'delivered'
    ? await buyer.rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
    : { result: '0x', verified: false }
  return { tradeId, view, result, providers }
}

/**
 * What DTMC must pay, by lower-case address: each seller min(unitPrice × size, cap) plus the output
 * price × result size; each node of the majority the flat min(price × the trade's gas cap, cap) (the gas a
 * run used is not public); the buyer the rest of its deposit.
 */
export function expectedPayments (net: LocalTestnet, datasets: Uint8Array[], view: BuyerView): { deposit: bigint, payments: Record<string, bigint> } {
  const t = TRADE_TERMS
  const min = (a: bigint, b: bigint): bigint => a < b ? a : b
  const final = view.chain.final
  const payments: Record<string, bigint> = {}
  for (const [i, s] of net.sellers.entries()) {
    payments[s.info.ethAddress.toLowerCase()] = min(t.unitPrice * BigInt(datasets[i].length), t.sellerCap) + t.outputPrice * BigInt(final.resultSize)
  }
  for (const i of final.members) payments[view.chain.nodes[i].payee.toLowerCase()] = min(t.nodePrice * BigInt(view.chain.gasCap), t.nodeCap)
  const deposit = BigInt(net.sellers.length) * (t.sellerCap + t.outputPrice * t.outputCap) + BigInt(view.chain.nodes.length) * t.nodeCap
  const paid = Object.values(payments).reduce((a, b) => a + b, 0n)
  payments[net.buyers[0].info.ethAddress.toLowerCase()] = deposit - paid
  return { deposit, payments }
}

/** The payments the buyer's record shows, as bigints. */
export function paymentsOf (view: BuyerView): Record<string, bigint> {
  return Object.fromEntries(Object.entries(view.records[0].payments ?? {}).map(([k, v]) => [k, BigInt(v)]))
}
