// Attack (issue 15, the seller's terms): a buyer the seller did not choose trades on its dataset. Before
// the fix a seller could not name its buyers: any buyer's demand got an offer and any buyer could open a
// trade on any offer. Now a policy's allowedBuyers (absent: open to all) is checked by the seller on every
// demand and trade, and by CISC when the trade opens (BuyerNotAllowed).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { judgePolicy, parsePolicy, type TradeTerms } from '../../daemon/roles/seller/policy.ts'
import { startChain, makeMarket, makeSeller, openTrade, reverts, account, CODE_HASH, type Chain } from '../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

const CHOSEN = '0x' + 'aA'.repeat(20)
const OTHER = '0x' + '22'.repeat(20)
const terms = (buyer: string): TradeTerms => ({ codeHash: CODE_HASH, outputCap: 1n, outputPrice: 10n, dataFee: 10_000n, buyer, now: 1_000 })

test('the seller refuses a buyer not in its list, and accepts the one in it', () => {
  const ds = { unitPrice: '10', size: 1000, policy: parsePolicy({ mode: 'any', allowedBuyers: [CHOSEN] }, 10n) }
  assert.match(judgePolicy(ds, terms(OTHER)) ?? '', /buyer .* is not allowed/)
  assert.is(judgePolicy(ds, terms(CHOSEN.toUpperCase().replace('0X', '0x'))), null)
  const open = { ...ds, policy: parsePolicy({ mode: 'any' }, 10n) }
  assert.is(judgePolicy(open, terms(OTHER)), null, 'no list: open to every buyer')
})

test('CISC refuses a trade by a buyer not in the offer\'s list', async () => {
  const m = await makeMarket(chain, 0, 1)
  const chosen = await account(chain)
  m.sellers.push(await makeSeller(chain, { anyCode: true, allowedBuyers: [chosen.address] }))
  const err = await reverts(openTrade(m), 'BuyerNotAllowed')
  assert.equal(err.args, [m.sellers[0].offerId, m.buyer.address])
  assert.not.ok(await m.buyer.client.cisc.isBuyerAllowed(m.sellers[0].offerId, m.buyer.address))
  assert.ok(await m.buyer.client.cisc.isBuyerAllowed(m.sellers[0].offerId, chosen.address))
  await openTrade({ ...m, buyer: chosen })
})

test.run()
