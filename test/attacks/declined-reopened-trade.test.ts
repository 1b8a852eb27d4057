// Attack (review finding, a stale refusal declines another trade): a trade whose terms a seller refused (a data fee
// below its price, on a dataset with a maximum of trades) is declined by the seller's daemon at once
// (DTMC.declineTrade). Its decline is pending when a reorganisation drops the opening, and the competing chain holds
// the same trade id opened again with terms the seller accepts (its full price). Before, the refusal was stored by
// trade id alone and the decline was sent without the terms it refused: its transaction, mined on the new chain,
// failed on the old Facts, and the chain client signed it again with the Facts read anew, so the seller declined
// (refunded) a trade it never judged, on the strength of its refusal of other terms. Now the refusal keeps the
// terms digest it refused, the decline is held to it (DtmcClient.declineTrade's `accepted`), and a trade whose terms
// changed is judged again: here accepted, so it stays open and the seller's part goes on.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet, id } from 'ethers'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { ChainClient } from '../../contracts/index.ts'
import { readKeyFile, rpc } from '../../contracts/devnet-accounts.ts'
import { makeQuote, rand32 } from '../../contracts/tools/market.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { fundedAccount } from '../helpers/attacker.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-declined-reopened-'))
let net: LocalTestnet
let chain: ChainClient

test.before(async () => {
  net = await LocalTestnet.start({ dir, buyers: 0, sellers: 1, nodes: 0 })
  chain = await ChainClient.connect({ network: net.network })
})

test.after(async () => {
  chain?.close()
  await net?.stop()
  if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
})

/** Bound on each wait (seconds when nothing goes wrong). */
const WAIT_MS = 60_000

async function nonces (address: string): Promise<{ latest: number, pending: number }> {
  const [latest, pending] = await Promise.all(['latest', 'pending'].map(async tag => Number(await rpc<string>(net.network.rpcUrl, 'eth_getTransactionCount', [address, tag]))))
  return { latest, pending }
}

/**
 * A stranger's trade one wei below the price on a new dataset with one place in its maxTrades; the seller refuses it
 * and its decline waits in the pool when a reorganisation opens the same trade id again with sellerCap `reopenedCap`.
 */
async function refusedThenReopened (tag: string, reopenedCap: (price: bigint) => bigint, o: { withoutSeller?: boolean, reservesNothing?: boolean } = {}): Promise<{ tradeId: string, datasetId: string, price: bigint }> {
  const rpcUrl = net.network.rpcUrl
  const seller = net.sellers[0]
  const path = join(seller.datadir, `${tag}.csv`)
  const data = sampleDataset(200, 1)
  writeFileSync(path, data)
  const { datasetId } = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', { path, tag, unitPrice: '10', policy: { mode: 'any', ...(o.reservesNothing !== true && { maxTrades: 1 }) } })
  const price = 10n * BigInt(data.length)
  const attacker = await fundedAccount(net.network)
  const root = new Wallet(readKeyFile(join(net.networkPath, '..', 'attestation-root.key')))
  const salt = rand32()
  const tradeId = attacker.chain.dtmc.tradeIdOf(attacker.wallet.address, salt)
  const codeHash = rand32()
  // withoutSeller: the trade comes back naming the attacker's own offer (same tag) instead of the seller's.
  if (o.withoutSeller === true) await attacker.chain.cisc.registerSeller('12D3KooW' + attacker.wallet.address.slice(2, 20))
  const otherOffer = o.withoutSeller === true
    ? (await attacker.chain.cisc.listDataset({ tag, size: 1n, unitPrice: 1n, commitment: rand32(), policy: { allowedCodeHashes: [], anyCode: true, outputCap: 16n, minOutputPrice: 0n } })).offerId
    : undefined
  const deadline = Math.floor(Date.now() / 1000) + 3600
  // Blocks are mined only when told from here to the reorganisation: the seller's decline waits in the pool (and
  // anvil_reorg's depth, counted from the head when it runs, cannot miss a block mined meanwhile).
  await rpc(rpcUrl, 'evm_setAutomine', [false])
  try {
    const opening = attacker.chain.dtmc.openTrade({
      salt, tagHash: id(tag), codeHash, deadline, sellerCap: price - 1n, nodePrice: 1n, nodeCap: 1000n, outputPrice: 10n, outputCap: 16n, gasCap: 1000n, epsilon: 0n, offerIds: [BigInt(datasetId)],
      nodes: [{ payee: attacker.wallet.address, quote: makeQuote({ root, network: net.network }, Wallet.createRandom().address, tradeId, codeHash, attacker.wallet.address, net.network.measurements[0]) }]
    })
    await waitFor('the opening in the pool', async () => { const n = await nonces(attacker.wallet.address); return n.pending > n.latest ? true : undefined }, WAIT_MS, 50)
    await rpc(rpcUrl, 'evm_mine', [])
    const { receipt } = await opening
    const openBlock = receipt.blockNumber
    assert.is((await chain.dtmc.trade(tradeId))!.sellers[0].fee, price - 1n, 'a fee one wei below the price')
    // A dataset that reserves nothing is not declined (that costs gas, waiting costs nothing): the refusal is the record.
    if (o.reservesNothing === true) await waitFor('the seller\'s refusal', async () => (await sellerPart(tradeId))?.state === 'failed' ? true : undefined, WAIT_MS, 100)
    else await waitFor('the seller\'s decline in the pool', async () => { const n = await nonces(seller.info.ethAddress); return n.pending > n.latest ? true : undefined }, WAIT_MS, 100)

    // The competing chain: the same opening (same salt, so the same trade id) at another seller cap.
    const openTx = await rpc<{ from: string, to: string, input: string, value: string }>(rpcUrl, 'eth_getTransactionByHash', [receipt.hash])
    const call = chain.dtmc.iface.parseTransaction({ data: openTx.input, value: BigInt(openTx.value) })!
    const terms = [...call.args[0]]
    assert.is(terms[4], price - 1n, 'the terms\' sellerCap')
    terms[4] = reopenedCap(price)
    const reopening = chain.dtmc.iface.encodeFunctionData('openTrade', [terms, otherOffer === undefined ? call.args[1] : [otherOffer], call.args[2]])
    // The deposit holds sellerCap once (one seller).
    const value = `0x${(BigInt(openTx.value) + reopenedCap(price) - (price - 1n)).toString(16)}`
    await rpc(rpcUrl, 'anvil_impersonateAccount', [openTx.from])
    const head = Number(await rpc<string>(rpcUrl, 'eth_blockNumber', []))
    await rpc(rpcUrl, 'anvil_reorg', [head - openBlock + 1, [[{ from: openTx.from, to: openTx.to, value, data: reopening, gas: '0x1c9c380' }, 0]]])
    await rpc(rpcUrl, 'anvil_stopImpersonatingAccount', [openTx.from])
    const fresh = await ChainClient.connect({ network: net.network }) // no opening cached from before the reorganisation
    try {
      const reopened = await fresh.dtmc.trade(tradeId)
      if (otherOffer === undefined) assert.is(reopened?.sellers[0].fee, reopenedCap(price), 'open again with the other seller cap')
      else assert.is(reopened?.sellers[0].account.toLowerCase(), attacker.wallet.address.toLowerCase(), 'open again naming the attacker\'s offer only')
    } finally { fresh.close() }
  } finally {
    await rpc(rpcUrl, 'evm_setAutomine', [true])
    attacker.chain.close()
  }
  await rpc(rpcUrl, 'evm_mine', []) // the seller's pending decline, if still in the pool
  return { tradeId, datasetId, price }
}

interface SellerPart { role: string, state: string, reason?: string, timeline: Array<{ note?: string }> }

async function sellerPart (tradeId: string): Promise<SellerPart | undefined> {
  const v = await net.sellers[0].rpc.call<{ records: SellerPart[] }>('trade_get', { tradeId })
  return v.records.find(x => x.role === 'seller')
}

test('a refused trade opened again after a reorganisation with terms the seller accepts is not declined', async () => {
  const { tradeId, datasetId } = await refusedThenReopened('reopened-full-price', price => price)
  // The seller judges the trade again, on its terms as they are now: accepted, its part goes on.
  const record = await waitFor('the seller to judge the reopened trade again', async () => {
    const mine = await sellerPart(tradeId)
    const view = await chain.dtmc.trade(tradeId)
    if (view?.state !== 'open') return { declined: true, mine }
    return mine !== undefined && mine.state !== 'failed' ? { declined: false, mine } : undefined
  }, WAIT_MS, 200)
  assert.is(record.declined, false, `the reopened trade was declined on the refusal of other terms: ${JSON.stringify(record.mine)}`)
  assert.ok(record.mine?.timeline.some(e => e.note?.startsWith('judged again') === true), JSON.stringify(record.mine))
  const declined = await chain.dtmc.contract.queryFilter(chain.dtmc.contract.filters.TradeDeclined(tradeId), 0)
  assert.is(declined.length, 0, 'no decline on the chain as it is')
  assert.is((await chain.cisc.offer(BigInt(datasetId))).trades, 1, 'the trade holds its place in maxTrades')
})

test('a refused trade opened again with other terms the seller refuses too is judged again and declined', async () => {
  const { tradeId, datasetId, price } = await refusedThenReopened('reopened-still-below', price => price - 2n)
  await waitFor('the seller declines the trade as it is now', async () => (await chain.dtmc.trade(tradeId))?.state === 'refunded' ? true : undefined, WAIT_MS, 200)
  const fresh = await ChainClient.connect({ network: net.network }) // no opening cached from before the reorganisation
  try {
    assert.is((await fresh.dtmc.trade(tradeId))?.sellers[0].fee, price - 2n, 'the terms declined are the ones on the chain')
  } finally { fresh.close() }
  assert.is((await chain.cisc.offer(BigInt(datasetId))).trades, 0, 'the place is back')
  const mine = await waitFor('the seller\'s record', async () => { const m = await sellerPart(tradeId); return m?.state === 'failed' ? m : undefined }, WAIT_MS, 200)
  assert.match(mine.reason ?? '', /below the price/)
})

// Review finding: a refused trade that came back naming another seller's offer was judged again on every tick (its
// decline throwing TradeTermsChangedError, its parties read from the deploy block) up to its deadline and claim
// window, since nothing recorded it: now the release entry goes and the record ends once, saying why.
test('a refused trade opened again without the seller\'s offer ends the seller\'s part once, not judged again each tick', async () => {
  const { tradeId } = await refusedThenReopened('reopened-without-seller', price => price - 1n, { withoutSeller: true })
  const JUDGED_AGAIN = 'opened again with other terms: judged again'
  const judgedAgain = (): number => net.sellers[0].output().split('\n').filter(l => l.includes(JUDGED_AGAIN) && l.toLowerCase().includes(tradeId)).length
  // Before the fix the seller judged it again every tick: three times is the loop, not a slow machine.
  const outcome = await waitFor('the seller to end its part, or to judge the trade again and again', async () => {
    const mine = await sellerPart(tradeId)
    if (mine?.timeline.some(e => e.note === 'judged again: opened again without us') === true) return { ended: true, mine }
    return judgedAgain() >= 3 ? { ended: false, mine } : undefined
  }, WAIT_MS, 200)
  assert.ok(outcome.ended, `judged again ${judgedAgain()} times, never ended: ${JSON.stringify(outcome.mine)}`)
  assert.is(outcome.mine?.state, 'failed')
  assert.match(outcome.mine?.reason ?? '', /without our offer/)
  assert.is(judgedAgain(), 1, 'judged again once')
  const declined = await chain.dtmc.contract.queryFilter(chain.dtmc.contract.filters.TradeDeclined(tradeId), 0)
  assert.is(declined.length, 0, 'nothing declined on the trade as it is (not ours)')
  assert.is((await chain.dtmc.trade(tradeId))?.state, 'open')
})

// Review finding: on a dataset that reserves nothing (no private budget, no maxTrades) a refusal has no release
// entry, whose decline found a change of terms for the others: the trade opened again at the full price stayed
// refused, never judged again. The seller's scan now judges again a refused trade it sees opened again with other terms.
test('a refused trade on a dataset that reserves nothing, opened again with terms the seller accepts, is judged again', async () => {
  const { tradeId } = await refusedThenReopened('reopened-reserves-nothing', price => price, { reservesNothing: true })
  const mine = await waitFor('the seller to judge the reopened trade again', async () => {
    const m = await sellerPart(tradeId)
    return m !== undefined && m.state !== 'failed' ? m : undefined
  }, WAIT_MS, 200)
  assert.ok(mine.timeline.some(e => e.note?.startsWith('judged again') === true), JSON.stringify(mine))
  assert.is((await chain.dtmc.trade(tradeId))?.state, 'open')
})

test.run()