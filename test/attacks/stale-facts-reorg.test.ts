// A trade's Facts across a reorganisation (issue 12, review). DTMC keeps a trade's Facts only as a hash
// and every later call passes them back; the chain client reads them from the trade's opening events.
// A reorganisation may drop the opening, and its buyer may open the same trade id again (same salt)
// with other terms. Two ways the client went wrong:
// - a transaction of ours the reorganisation dropped was broadcast again as it was signed, with the
//   Facts of before: mined, it reverts (FactsMismatch), its gas spent and its work not done;
// - the Facts were read with four queries (TradeOpened, TradePrivate, TradeNode, TradeSeller), not at
//   one block: a reorganisation between them mixed two openings, Facts that no trade has.
// Shown on a real anvil (anvil_reorg), the second with an RPC proxy that lets the reorganisation
// happen between the requests of one batch (a node answers a batch item by item, not at one block).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ChainClient, factsTupleOf, type TradeFacts } from '../../contracts/client.ts'
import { rpc } from '../../contracts/devnet-accounts.ts'
import { startChain, makeMarket, openTrade, commit, rand32, DEFAULT_TERMS, type Chain, type Market } from '../../contracts/tools/market.ts'

let chain: Chain
let m: Market

test.before(async () => {
  chain = await startChain()
  m = await makeMarket(chain, 1, 2)
})
test.after(async () => { await chain?.stop() })

/** A client of `privateKey` that broadcasts again only when the test says so (its nonce from the chain). */
async function clientOf (privateKey: string): Promise<ChainClient> {
  const c = await ChainClient.connect({ network: chain.network, signer: privateKey, reorgCheckMs: 0, pollingIntervalMs: 50 })
  chain.clients.push(c)
  return c
}

/** The market with the buyer's and the nodes' clients replaced. */
function withClients (buyer: ChainClient, nodes: ChainClient[] = m.nodes.map(n => n.client)): Market {
  return { ...m, buyer: { ...m.buyer, client: buyer }, nodes: m.nodes.map((n, i) => ({ ...n, client: nodes[i] })) }
}

/** The Facts as DTMC's calls pass them, as text (to compare two). */
const factsText = (f: TradeFacts): string => JSON.stringify(factsTupleOf(f), (_, v: unknown) => typeof v === 'bigint' ? v.toString() : v)

test('a dropped transaction broadcast again carries the Facts of the trade as it is now, not as it was', async () => {
  const salt = rand32()
  const buyerBefore = await clientOf(m.buyer.wallet.privateKey)
  const node0 = await clientOf(m.nodes[0].wallet.privateKey)
  const t = await openTrade(withClients(buyerBefore, [node0, m.nodes[1].client]), { salt })
  const committed = await commit(withClients(buyerBefore, [node0, m.nodes[1].client]), t, 0)
  const before = await chain.admin.dtmc.factsOf(t.tradeId)
  const { nonce } = (await chain.provider.getTransaction(committed.hash))!

  // The opening and the commitment are dropped; the buyer opens the same trade again with another output price.
  await rpc(chain.anvil.rpcUrl, 'anvil_reorg', [2, []])
  assert.is(await chain.admin.dtmc.trade(t.tradeId), null, 'the reorganisation dropped the trade')
  const buyerAfter = await clientOf(m.buyer.wallet.privateKey)
  await openTrade(withClients(buyerAfter), { salt, outputPrice: DEFAULT_TERMS.outputPrice * 2n })
  const reader = await clientOf(m.sellers[0].wallet.privateKey)
  const after = await reader.dtmc.factsOf(t.tradeId)
  assert.is.not(factsText(after), factsText(before), 'the trade was opened again with other Facts')

  assert.is(await node0.resubmitDropped(), 1, 'the commitment is broadcast again')
  const view = await reader.dtmc.trade(t.tradeId)
  assert.ok(view !== null && view.nodes[0].committed, 'node 0\'s commitment is on the trade as it is now')
  const [log] = await reader.dtmc.contract.queryFilter(reader.dtmc.contract.filters.ResultCommitted(t.tradeId, 0))
  const sent = await chain.provider.getTransaction(log.transactionHash)
  assert.is(sent!.nonce, nonce, 'at the dropped transaction\'s nonce')
  assert.is.not(log.transactionHash, committed.hash, 'signed again, with the Facts of now')
  assert.is(await node0.resubmitDropped(), 0, 'nothing more to broadcast')
  // The client's nonce counter is right: its next send is mined.
  const other = await openTrade(withClients(buyerAfter, [node0, m.nodes[1].client]))
  assert.is((await commit(withClients(buyerAfter, [node0, m.nodes[1].client]), other, 0)).status, 1)
})

/**
 * A JSON-RPC proxy to anvil that answers one request at a time, a batch item by item, and after the first
 * eth_getLogs that asks for TradeOpened logs runs `between` (once) before it answers the rest.
 */
async function proxyWithHook (topic: string, between: () => Promise<void>): Promise<{ url: string, close: () => void }> {
  let armed = true
  let tail: Promise<unknown> = Promise.resolve()
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      tail = tail.then(async () => {
        const parsed = JSON.parse(body) as { method: string, params: any[], id: number } | Array<{ method: string, params: any[], id: number }>
        const answers = []
        for (const item of Array.isArray(parsed) ? parsed : [parsed]) {
          const r = await fetch(chain.anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(item) })
          answers.push(await r.json())
          const topics = item.method === 'eth_getLogs' ? item.params[0]?.topics?.[0] : undefined
          if (armed && (topics === topic || (Array.isArray(topics) && topics.includes(topic)))) {
            armed = false
            await between()
          }
        }
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(Array.isArray(parsed) ? answers : answers[0]))
      }).catch((err: unknown) => { res.statusCode = 500; res.end(String(err)) })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => { server.closeAllConnections(); server.close() } }
}

test('a trade\'s Facts are read from one opening, even when a reorganisation opens it again between the reads', async () => {
  const salt = rand32()
  const buyerBefore = await clientOf(m.buyer.wallet.privateKey)
  const t = await openTrade(withClients(buyerBefore), { salt })
  const before = await (await clientOf(m.sellers[0].wallet.privateKey)).dtmc.factsOf(t.tradeId)
  const topic = chain.admin.dtmc.iface.getEvent('TradeOpened')!.topicHash
  const proxy = await proxyWithHook(topic, async () => {
    // Between the reader's reads: the opening is dropped, and the buyer opens the trade again with other terms.
    await rpc(chain.anvil.rpcUrl, 'anvil_reorg', [1, []])
    await openTrade(withClients(await clientOf(m.buyer.wallet.privateKey)), { salt, outputPrice: DEFAULT_TERMS.outputPrice * 3n })
  })
  try {
    const reader = await ChainClient.connect({ network: chain.network, rpcUrl: proxy.url, pollingIntervalMs: 50 })
    chain.clients.push(reader)
    const read = factsText(await reader.dtmc.factsOf(t.tradeId))
    const after = factsText(await (await clientOf(m.sellers[0].wallet.privateKey)).dtmc.factsOf(t.tradeId))
    assert.is.not(after, factsText(before), 'the trade was opened again with other Facts')
    assert.ok(read === factsText(before) || read === after, `the Facts read are those of one opening, not a mix of two: ${read}`)
  } finally {
    proxy.close()
  }
})

test.run()
