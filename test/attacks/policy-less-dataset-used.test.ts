// Attack (issue 15, deny by default): a buyer runs its analysis on a dataset whose seller never said
// which code may run on it. Before the fix a dataset listed without a policy allowed any code (an empty
// allowedCodeHashes list meant "any") in the seller's judge and in CISC alike, so a seller that forgot
// the policy gave its data to every analysis. Now a dataset is usable only as its policy says: listed
// code hashes (mode "allowlist") or any code chosen explicitly (mode "any"); the seller refuses every
// demand and trade on a policy-less dataset, and CISC refuses to open a trade on its offer.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { judgePolicy, parsePolicy, type TradeTerms } from '../../daemon/roles/seller/policy.ts'
import { startChain, makeMarket, makeSeller, openTrade, reverts, CODE_HASH, type Chain } from '../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

const BUYER = '0x' + '11'.repeat(20)
const terms = (codeHash: string): TradeTerms => ({ codeHash, outputCap: 1n, outputPrice: 10n, dataFee: 10_000n, buyer: BUYER, now: 1_000 })

test('the seller refuses every analysis on a dataset listed without a policy', () => {
  const ds = { unitPrice: '10', size: 1000, policy: parsePolicy(undefined, 10n) }
  for (const code of [CODE_HASH, '0x' + 'ab'.repeat(32), '0x' + '00'.repeat(32)]) {
    const why = judgePolicy(ds, terms(code))
    assert.type(why, 'string', `code ${code} was allowed on a policy-less dataset`)
    assert.match(why as string, /no analysis is allowed/)
  }
  // The same dataset with "any code" chosen explicitly is usable, as before.
  assert.is(judgePolicy({ ...ds, policy: parsePolicy({ mode: 'any' }, 10n) }, terms(CODE_HASH)), null)
})

test('CISC refuses to open a trade on an offer listed with neither code hashes nor "any code"', async () => {
  const m = await makeMarket(chain, 0, 1)
  m.sellers.push(await makeSeller(chain, { allowed: [], anyCode: false }))
  await reverts(openTrade(m), 'CodeNotAllowed')
  assert.not.ok(await m.buyer.client.cisc.isCodeAllowed(m.sellers[0].offerId, CODE_HASH))
  // Chosen explicitly, any code opens.
  const open = await makeSeller(chain, { anyCode: true })
  await openTrade({ ...m, sellers: [open] })
})

test.run()
