// A trade opened again after a reorganisation with other terms (review of issue 12). The buyer chooses the salt,
// so after a reorganisation that drops its trade's opening it can open the same trade id again with other terms:
// a lower node price, another gas cap, a smaller epsilon. A node's work done under the first terms must not be
// committed under the new ones:
// - the chain client broadcasts a dropped commitment again: it signed it again with the Facts read anew (the
//   node paid less than it accepted), or, when the Facts did not change (only the gas cap, output cap or epsilon
//   did, which DTMC does not hash), broadcast the very same bytes, mined under terms the node never saw;
// - the enclave returned its sealed run to a repeat without checking the gas cap or epsilon asked (the node that
//   commits again after the reorganisation runs "again" with the new trade's terms and gets the old result).
// The node (and the seller) now keep a digest of the terms they took the trade up with (DtmcClient.termsDigestOf)
// and pass it to every call they sign for it: the client signs only under those terms, a dropped transaction whose
// trade came back with others is withdrawn (an empty transfer takes its nonce), and the enclave's repeat run checks
// the gas cap and epsilon against the sealed run. Shown on a real anvil (anvil_reorg) and real enclave workers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseEther } from 'ethers'
import { ChainClient, TradeTermsChangedError, factsTupleOf, type TradeFacts } from '../../contracts/client.ts'
import { rpc } from '../../contracts/devnet-accounts.ts'
import { startChain, makeMarket, openTrade, prepareCommit, rand32, DEFAULT_TERMS, type Chain, type Market, type OpenedTrade } from '../../contracts/tools/market.ts'
import type { OpenTradeParams } from '../../contracts/client.ts'
import { ResultStatus } from '../../contracts/formats.ts'
import { encryptDataset, privacySecretOf, wrapDataKey, type EnclaveHost, type PrivacyTerms } from '../../enclave/index.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { artifactCode, buyerSetup, deliverSigned, rejectsWith, sellerDeliver, startEnclave } from '../helpers/enclave.ts'

let chain: Chain
let m: Market
let enclave: EnclaveHost

test.before(async () => {
  chain = await startChain()
  m = await makeMarket(chain, 1, 2)
  enclave = await startEnclave()
})
test.after(async () => {
  await enclave?.close()
  await chain?.stop()
})

/** A client of `privateKey` that broadcasts again only when the test says so (its nonce from the chain). */
async function clientOf (privateKey: string): Promise<ChainClient> {
  const c = await ChainClient.connect({ network: chain.network, signer: privateKey, reorgCheckMs: 0, pollingIntervalMs: 50 })
  chain.clients.push(c)
  return c
}

const factsText = (f: TradeFacts): string => JSON.stringify(factsTupleOf(f), (_, v: unknown) => typeof v === 'bigint' ? v.toString() : v)

/**
 * Node 0 takes the trade up (the digest of its terms) and commits under them; a reorganisation drops the opening and
 * the commitment, and the buyer opens the same trade id again with `reopen` (the same sellers and node quotes).
 */
async function commitThenReopen (first: Partial<OpenTradeParams>, reopen: Partial<OpenTradeParams>) {
  const salt = rand32()
  const buyer = await clientOf(m.buyer.wallet.privateKey)
  const node0 = await clientOf(m.nodes[0].wallet.privateKey)
  const market: Market = { ...m, buyer: { ...m.buyer, client: buyer } }
  const t: OpenedTrade = await openTrade(market, { salt, ...first })
  const accepted = await node0.dtmc.termsDigestOf(t.tradeId)
  assert.ok(accepted !== null)
  const before = await node0.dtmc.factsOf(t.tradeId)
  const committed = await node0.dtmc.commitResult(t.tradeId, 0, prepareCommit(t, 0), accepted)
  assert.is(committed.status, 1)
  const { nonce } = (await chain.provider.getTransaction(committed.hash))!

  await rpc(chain.anvil.rpcUrl, 'anvil_reorg', [2, []])
  assert.is(await chain.admin.dtmc.trade(t.tradeId), null, 'the reorganisation dropped the trade')
  const quotes = t.enclaves.map((e, i) => ({ payee: m.nodes[i].address, quote: e.quote }))
  await openTrade({ ...m, buyer: { ...m.buyer, client: await clientOf(m.buyer.wallet.privateKey) } }, { salt, ...first, nodes: quotes, ...reopen })
  const reader = await clientOf(m.sellers[0].wallet.privateKey)
  return { t, node0, accepted, before, after: await reader.dtmc.factsOf(t.tradeId), reader, nonce }
}

/** The dropped commitment is not on the reopened trade; the node's next transaction is mined (no nonce gap). */
async function refused (r: Awaited<ReturnType<typeof commitThenReopen>>): Promise<void> {
  await r.node0.resubmitDropped()
  const view = await r.reader.dtmc.trade(r.t.tradeId)
  assert.ok(view !== null && view.nodes[0].committed !== true, 'node 0\'s commitment, made under the first terms, is not on the trade opened again with others')
  assert.is(await chain.provider.getTransactionCount(m.nodes[0].address), r.nonce + 1, 'an empty transfer took the dropped commitment\'s nonce')
  // Committing again (what the node's role does when its commitment is gone) is refused before anything is signed.
  const err = await rejectsWith(r.node0.dtmc.commitResult(r.t.tradeId, 0, prepareCommit(r.t, 0), r.accepted), 'TradeTermsChangedError')
  assert.ok(err instanceof TradeTermsChangedError && err.tradeId === r.t.tradeId)
  assert.is((await r.reader.dtmc.trade(r.t.tradeId))!.nCommits, 0, 'nothing committed')
  // The nonce counter is right: the node's next send is mined.
  const other = await openTrade({ ...m, buyer: { ...m.buyer, client: await clientOf(m.buyer.wallet.privateKey) } })
  const next = await r.node0.dtmc.commitResult(other.tradeId, 0, prepareCommit(other, 0), (await r.node0.dtmc.termsDigestOf(other.tradeId))!)
  assert.is(next.status, 1)
}

test('a dropped commitment is not signed again for a trade opened again with a lower node price', async () => {
  const r = await commitThenReopen({}, { nodePrice: DEFAULT_TERMS.nodePrice / 2n })
  assert.is.not(factsText(r.after), factsText(r.before), 'the trade was opened again with other Facts (a lower node fee)')
  await refused(r)
})

test('a dropped commitment is not broadcast again for a trade opened again with another gas cap and the same Facts', async () => {
  // nodeCap binds: min(nodePrice × gasCap, nodeCap) is the same node fee, so the Facts DTMC hashes do not change.
  const nodeCap = parseEther('0.005')
  const r = await commitThenReopen({ nodeCap, gasCap: 5_000_000n }, { gasCap: 10_000_000n })
  assert.is(factsText(r.after), factsText(r.before), 'the Facts are the same')
  await refused(r)
})

test('the enclave returns its sealed run only to a repeat with the same gas cap', async () => {
  const task = await buyerSetup(enclave, artifactCode('StatsFast'), { gasCap: 3_000_000n })
  await sellerDeliver(enclave, task, 0, sampleDataset(50, 3))
  const first = await enclave.execute(task.taskId, { sellerCount: 1, gasCap: 3_000_000n })
  assert.is(first.resultInfo.status, ResultStatus.Ok, first.reason)
  await rejectsWith(enclave.execute(task.taskId, { sellerCount: 1, gasCap: 6_000_000n }), 'CapMismatchError')
  const again = await enclave.execute(task.taskId, { sellerCount: 1, gasCap: 3_000_000n })
  assert.is(again.resultInfo.resultHash, first.resultInfo.resultHash, 'the same terms get the sealed run')
})

test('the enclave returns its sealed private run only to a repeat with the same epsilon', async () => {
  const task = await buyerSetup(enclave, artifactCode('PrivateStats'))
  const epsilon = 1_000_000n
  const terms: PrivacyTerms = {
    secret: privacySecretOf(new Uint8Array(32).fill(7), task.tradeId),
    epsilon,
    skipHeader: true,
    columns: [{ column: 1, decimals: 0, lo: 0n, hi: 1100n }, { column: 2, decimals: 0, lo: -500n, hi: 500n }, { column: 3, decimals: 0, lo: -1600n, hi: 1600n }]
  }
  const ds = encryptDataset(sampleDataset(200, 5), { chunkSize: 4096 })
  await deliverSigned(enclave, task.taskId, {
    sellerIndex: 0,
    commitment: ds.commitment,
    wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size, privacy: terms }),
    chunks: ds.chunks
  })
  const first = await enclave.execute(task.taskId, { sellerCount: 1, privacy: { epsilon: String(epsilon) } })
  assert.is(first.resultInfo.status, ResultStatus.Ok, first.reason)
  await rejectsWith(enclave.execute(task.taskId, { sellerCount: 1, privacy: { epsilon: String(epsilon / 2n) } }), 'PrivacyMismatchError')
  await rejectsWith(enclave.execute(task.taskId, { sellerCount: 1 }), 'PrivacyMismatchError')
})

test.run()
