// Attack (issue 10, item 4): a buyer dilutes a real seller's output fee with dummy offers of its own.
// Before the fix DTMC split one output price equally across a trade's sellers and never compared an
// offer's tag with the trade, so a buyer that added 7 offers of its own paid the real seller 1/8 of
// the output price the seller asks. Now each seller's minimum output price is on chain in its CISC
// offer, every seller is paid the trade's outputPrice per output byte (not a share of it), and every
// offer's tag must be the trade's.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { keccak256, toUtf8Bytes } from 'ethers'
import {
  startChain, makeMarket, makeSeller, openTrade, submit, reverts, rand32, TAG_HASH, paid, type Chain, type Market, type Seller
} from '../../contracts/tools/market.ts'

let chain: Chain
const MIN_OUTPUT_PRICE = 10_000_000_000n // the real seller's own minimum, wei per output byte
const RESULT_SIZE = 1000n

test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

/** The buyer registers as a seller and lists `n` offers of its own (its "dummy" sellers). */
async function dummies (m: Market, n: number, tag = 'census'): Promise<bigint[]> {
  await m.buyer.client.cisc.registerSeller('12D3KooW' + m.buyer.address.slice(2, 20))
  const ids: bigint[] = []
  for (let i = 0; i < n; i++) {
    const { offerId } = await m.buyer.client.cisc.listDataset({
      tag, size: 1n, unitPrice: 0n, commitment: rand32(), policy: { allowedCodeHashes: [], anyCode: true, outputCap: 1_000_000n, minOutputPrice: 0n }
    })
    ids.push(offerId)
  }
  return ids
}

async function realSeller (): Promise<Seller> {
  return await makeSeller(chain, { unitPrice: 0n, minOutputPrice: MIN_OUTPUT_PRICE })
}

test('a buyer with 7 dummy offers still pays the real seller its own output price per byte', async () => {
  const m = await makeMarket(chain, 0, 1)
  const seller = await realSeller()
  m.sellers.push(seller)
  const fake = await dummies(m, 7)
  const t = await openTrade(m, { offerIds: [seller.offerId, ...fake], outputPrice: MIN_OUTPUT_PRICE, tagHash: TAG_HASH })
  await submit(m, t, 0, { resultSize: RESULT_SIZE, inputHash: (await m.buyer.client.dtmc.trade(t.tradeId))!.inputHash })
  const view = await m.buyer.client.dtmc.trade(t.tradeId)
  assert.is(view!.state, 'settled')
  const got = await paid(m, t.tradeId, seller.address)
  assert.ok(got >= MIN_OUTPUT_PRICE * RESULT_SIZE, `the real seller got ${got} wei for ${RESULT_SIZE} output bytes; it asks ${MIN_OUTPUT_PRICE * RESULT_SIZE}`)
})

test('a trade whose output price is below a seller\'s on-chain minimum does not open', async () => {
  const m = await makeMarket(chain, 0, 1)
  m.sellers.push(await realSeller())
  await reverts(openTrade(m, { outputPrice: MIN_OUTPUT_PRICE - 1n, tagHash: TAG_HASH }), 'OutputPriceBelowMinimum')
})

test('an offer listed under another tag than the trade\'s does not join it', async () => {
  const m = await makeMarket(chain, 0, 1)
  const seller = await realSeller()
  m.sellers.push(seller)
  const other = await dummies(m, 1, 'weather')
  await reverts(openTrade(m, { offerIds: [seller.offerId, ...other], outputPrice: MIN_OUTPUT_PRICE, tagHash: TAG_HASH }), 'OfferTagMismatch')
  await reverts(openTrade(m, { outputPrice: MIN_OUTPUT_PRICE, tagHash: keccak256(toUtf8Bytes('weather')) }), 'OfferTagMismatch')
})

test.run()
