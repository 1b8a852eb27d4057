// A trade opened again after a reorganisation with other terms, against the nodes' daemons (the chain client's and
// the enclave's part: reopened-trade-other-terms.test.ts). A buyer lets a trade run until a node has committed;
// then a reorganisation drops the opening and the commitment, and the competing chain holds the buyer's own
// openTrade for the same trade id (same salt, same sellers and node quotes, its escrow's nonce) with half the node
// price. Before, the nodes committed their result again under the new terms (the chain client signed the dropped
// commitment again with the Facts read anew, or the node committed again with the enclave's sealed run): the trade
// would settle paying each node half the fee it accepted. Now each node holds every call it signs to the terms it
// took the trade up with: nothing is committed on the reopened trade, and each node's part ends `failed`.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from '../../daemon/tools/index.ts'
import { ChainClient, rpc } from '../../contracts/index.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { STATS_ARTIFACT, TRADE_TERMS } from '../helpers/trade.ts'
import { attackTestnet } from '../helpers/attacker.ts'

const bench = attackTestnet(test, 'reterms', { sellers: 1, nodes: 2 })
let chain: ChainClient

test.before(async () => { chain = await ChainClient.connect({ network: bench.net.network }) })
test.after(() => { chain?.close() })

/** Bound on each wait (a few seconds when nothing goes wrong). */
const WAIT_MS = 90_000

async function headBlock (): Promise<number> {
  return Number(await rpc<string>(bench.net.network.rpcUrl, 'eth_blockNumber', []))
}

async function firstLog (event: string, fromBlock: number): Promise<{ blockNumber: string, blockHash: string, transactionHash: string }> {
  const topic = chain.dtmc.iface.getEvent(event)!.topicHash
  return await waitFor(`DTMC's ${event}`, async () => {
    const head = await headBlock()
    if (head < fromBlock) return undefined
    const logs = await rpc<Array<{ blockNumber: string, blockHash: string, transactionHash: string }>>(bench.net.network.rpcUrl, 'eth_getLogs', [{ address: bench.net.network.contracts.DTMC, topics: [topic], fromBlock: `0x${fromBlock.toString(16)}`, toBlock: `0x${head.toString(16)}` }])
    return logs[0]
  }, WAIT_MS, 10)
}

test('the nodes commit nothing to a trade opened again with a lower node price after a reorganisation', async () => {
  const from = await headBlock() + 1
  const s = bench.net.sellers[0]
  const path = join(s.datadir, 'data.csv')
  writeFileSync(path, sampleDataset(600, 4))
  const tag = 'reopened-other-terms'
  await s.rpc.call('seller_addDataset', { path, tag, unitPrice: TRADE_TERMS.unitPrice.toString(), policy: { mode: 'any' } })
  const buyer = bench.net.buyers[0]
  await waitFor('the DHT announcement', async () => {
    const found = await buyer.rpc.call<unknown[]>('net_findProviders', { key: `sdte:dataset:${tag}` })
    return found.length >= 1 ? true : undefined
  }, 60_000, 500)
  const t = TRADE_TERMS
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag, codePath: STATS_ARTIFACT, nodes: 2, sellers: 1,
    sellerPrice: '20', sellerCap: t.sellerCap.toString(), nodePrice: t.nodePrice.toString(), nodeCap: t.nodeCap.toString(),
    outputPrice: t.outputPrice.toString(), outputCap: t.outputCap.toString(), deadlineSeconds: 600
  })

  // The opening, as the buyer sent it; the moment a node has committed, the reorganisation.
  const opened = await firstLog('TradeOpened', from)
  const openTx = await rpc<{ from: string, to: string, input: string, value: string }>(bench.net.network.rpcUrl, 'eth_getTransactionByHash', [opened.transactionHash])
  const call = chain.dtmc.iface.parseTransaction({ data: openTx.input, value: BigInt(openTx.value) })!
  const terms = [...call.args[0]]
  assert.is(terms[5], t.nodePrice, 'the terms\' nodePrice')
  terms[5] = t.nodePrice / 2n // the same deposit: it depends on nodeCap, not nodePrice
  const cheaper = chain.dtmc.iface.encodeFunctionData('openTrade', [terms, call.args[1], call.args[2]])
  const committed = await firstLog('ResultCommitted', from)
  const openBlock = Number(opened.blockNumber)
  const rpcUrl = bench.net.network.rpcUrl
  // anvil_reorg counts its depth from the head when it runs: a block mined between reading the head and the reorg
  // (the other node's commitment) would leave the opening in place. Mining stops for that moment; what the daemons
  // send meanwhile is dropped, as a transaction lost with the replaced blocks (a chain node that pools it again is
  // an open row of docs/threat-model.md, not this test's subject).
  await rpc(rpcUrl, 'evm_setAutomine', [false])
  try {
    await rpc(rpcUrl, 'anvil_impersonateAccount', [openTx.from])
    const depth = await headBlock() - openBlock + 1
    await rpc(rpcUrl, 'anvil_reorg', [depth, [[{ from: openTx.from, to: openTx.to, value: openTx.value, data: cheaper, gas: '0x1c9c380' }, 0]]])
    await rpc(rpcUrl, 'anvil_stopImpersonatingAccount', [openTx.from])
    await rpc(rpcUrl, 'anvil_dropAllTransactions', [])
  } finally {
    await rpc(rpcUrl, 'evm_setAutomine', [true])
  }
  const openingBlock = await rpc<{ hash: string } | null>(rpcUrl, 'eth_getBlockByNumber', [opened.blockNumber, false])
  assert.ok(openingBlock?.hash !== opened.blockHash, 'the block with the opening was replaced')
  const replaced = await rpc<{ hash: string } | null>(rpcUrl, 'eth_getBlockByNumber', [committed.blockNumber, false])
  assert.ok(replaced?.hash !== committed.blockHash, 'the block with the commitment was replaced')
  const reopened = await chain.dtmc.trade(tradeId)
  assert.ok(reopened !== null && reopened.nodePrice === t.nodePrice / 2n, 'the trade is open again, at half the node price')

  // Each node's part ends, refused; nothing is committed to the trade as it is now.
  for (const d of bench.net.nodes) {
    const rec = await waitFor(`${d.name}'s part of the trade to end`, async () => {
      const v = await d.rpc.call<{ records: Array<{ role: string, state: string, timeline: Array<{ note?: string }> }> }>('trade_get', { tradeId })
      const mine = v.records.find(x => x.role === 'node')
      return mine !== undefined && ['failed', 'finalized', 'delivered', 'refunded'].includes(mine.state) ? mine : undefined
    }, WAIT_MS, 250)
    assert.is(rec.state, 'failed', JSON.stringify(rec.timeline))
    // Refused by the terms it took the trade up with, or, when the reorganisation also dropped its commitment and it
    // comes to run again, by its price first (half the node price is below it): either way nothing of its run goes
    // under the new terms.
    assert.match(rec.timeline.at(-1)?.note ?? '', /opened again with other terms|fee below our price/, JSON.stringify(rec))
  }
  const view = await chain.dtmc.trade(tradeId)
  assert.is(view?.nCommits, 0, 'no commitment on the trade opened again with other terms')
})

test.run()
