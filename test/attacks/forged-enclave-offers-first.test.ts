// Attack (on the buyer's trades, by a node with a fake enclave that offers first): the buyer closes its
// offer window early once it holds the demand's number of node offers (then a short grace), attests those
// candidates, and used to fail the whole trade when fewer than the demand's number attested ("only 0 of 1
// enclaves attested"), though honest nodes offered (or would have) later. A registered node whose enclave is
// forged, offering fast on every demand, so made trades fail at the cost of one registration.
// The defence: an enclave refused at attestation is struck from the trade (never chosen, its offers not taken
// again), and the buyer goes back to collecting offers (soliciting the DHT's providers at the window's end)
// until the demand nearly expires; only then does it fail.
//
// Real parts: anvil, a relay, a buyer, a seller and node daemons as separate processes. The forged node
// (its quotes signed by a key that is not the attestation root) is the only node online when the demand is
// posted, so it is certain to be among the first candidates; the honest node starts after the buyer refused it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet, getBytes } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { datasetKey } from '../../p2p/index.ts'
import { attackTestnet } from '../helpers/attacker.ts'

const TAG = 'attack-forged-first'
const dataset = sampleDataset(300, 51)
/** Long enough for the honest node to start and be found by the window's solicitation on a loaded machine. */
const OFFER_WINDOW_MS = 8_000
const CONFIG = { trade: { offerWindowMs: OFFER_WINDOW_MS } }

const bench = attackTestnet(test, 'forged-first', {
  sellers: 1,
  nodes: 1,
  nodeConfig: () => ({ enclave: { attestationKeyFile: join(bench.dir, 'forged-root.key') } }),
  config: CONFIG
})
writeFileSync(join(bench.dir, 'forged-root.key'), Wallet.createRandom().privateKey + '\n', { mode: 0o600 })

interface BuyerRecord {
  role: string, state: string, reason?: string, timeline: Array<{ state: string, note?: string }>, rejected?: Array<{ peerId: string, why: string }>,
  chosenNodes?: Array<{ peerId: string }>, unattestedPeers?: string[], unattestedAccounts?: string[]
}

async function buyerRecord (tradeId: string): Promise<BuyerRecord> {
  const v = await bench.net.buyers[0].rpc.call<{ records: BuyerRecord[] }>('trade_get', { tradeId })
  return v.records.find(r => r.role === 'buyer')!
}

test('a forged enclave offering first does not fail the trade: the buyer collects again and trades with the honest node', async () => {
  const net = bench.net
  const forged = net.nodes[0]
  const seller = net.sellers[0]
  writeFileSync(join(seller.datadir, 'data.csv'), dataset)
  await seller.rpc.call('seller_addDataset', { path: join(seller.datadir, 'data.csv'), tag: TAG, unitPrice: '5', policy: { mode: 'any' } })
  await waitFor('DHT announcement', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG) })).length >= 1, 30_000, 300)

  const { tradeId } = await net.buyers[0].rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: 1, sellers: 1,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: '1', nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: 600
  })
  // The forged node's offer closes the window early (it is the only node), and its attestation fails.
  const afterAttesting = await waitFor('the forged enclave attested and refused', async () => {
    const r = await buyerRecord(tradeId)
    const attested = r.timeline.some(e => e.state === 'attesting')
    const refused = r.rejected?.some(x => x.peerId === forged.info.peerId) === true
    return (attested && (refused || r.state === 'failed')) ? r : undefined
  }, 60_000, 100)
  assert.is.not(afterAttesting.state, 'failed', `the trade failed on one forged enclave: ${afterAttesting.reason ?? ''}`)
  assert.ok(afterAttesting.rejected?.some(x => x.peerId === forged.info.peerId && x.why.startsWith('QuoteSignatureError')), `the refusal names the forged quote: ${JSON.stringify(afterAttesting.rejected)}`)
  assert.equal(afterAttesting.unattestedPeers, [forged.info.peerId], 'the forged node\'s peer is struck from the trade')
  assert.equal(afterAttesting.unattestedAccounts, [forged.info.ethAddress.toLowerCase()], 'and its account (it could register another peer id)')

  // An honest node comes online; the buyer's window (or its next one) finds it.
  const honest = await net.add('node2', 'node', {}, { config: CONFIG })
  const done = await waitFor('the trade to end', async () => {
    const r = await buyerRecord(tradeId)
    return ['delivered', 'failed', 'refunded'].includes(r.state) ? r : undefined
  }, 120_000, 250)
  assert.is(done.state, 'delivered', `${done.reason ?? ''} ${JSON.stringify(done.rejected)}`)
  assert.equal(done.chosenNodes?.map(n => n.peerId), [honest.info.peerId], 'the honest node ran it, the forged one was never chosen')
  const result = await net.buyers[0].rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  assert.ok(result.verified)
  assert.equal(getBytes(result.result), referenceOutput('Stats', [dataset]))
  // The forged node was struck from this trade: a second round came, without it, and its refusal stayed on record.
  const states = done.timeline.map(e => e.state)
  assert.ok(states.filter(s => s === 'attesting').length >= 2, `attested again after the refusal: ${states.join(' ')}`)
  assert.ok(done.rejected?.some(x => x.peerId === forged.info.peerId && x.why.startsWith('QuoteSignatureError')), 'the forged node\'s refusal is still on record after the next choice')
})

test.run()
