// A dataset's policy (daemon/roles/seller/policy.ts): one judge for the demands a seller offers for
// and the trades it delivers to, and the parsing of seller_addDataset's policy.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  judgePolicy, parsePolicy, chainPolicyOf, fullPriceOf, MAX_ALLOWED_CODE_HASHES, MAX_ALLOWED_BUYERS, MAX_TRADES_LIMIT, type PricedDataset, type TradeTerms
} from '../../../daemon/roles/seller/policy.ts'
import { DEFAULT_OUTPUT_CAP } from '../../../enclave/index.ts'
import { RpcError } from '../../../daemon/rpc/errors.ts'

const CODE = '0x' + 'ab'.repeat(32)
const OTHER_CODE = '0x' + 'cd'.repeat(32)
const BUYER = '0x' + '11'.repeat(20)
const dataset: PricedDataset = {
  unitPrice: '10', size: 1000, policy: { mode: 'allowlist', allowedCodeHashes: [CODE], outputCap: '4096', minOutputPrice: '12', allowedBuyers: [], maxTrades: 0, expiresAt: 0 }
}
const fair: TradeTerms = { codeHash: CODE, outputCap: 4096n, outputPrice: 12n, dataFee: 10_000n, buyer: BUYER, now: 1_000 }

test('terms within the policy pass, at every bound', () => {
  assert.is(fullPriceOf(dataset), 10_000n)
  assert.is(judgePolicy(dataset, fair), null)
  assert.is(judgePolicy(dataset, { ...fair, codeHash: CODE.toUpperCase().replace('0X', '0x') }), null, 'code hash case does not matter')
  assert.is(judgePolicy({ ...dataset, policy: { ...dataset.policy, mode: 'any', allowedCodeHashes: [] } }, { ...fair, codeHash: OTHER_CODE }), null, 'mode any allows any code')
  assert.type(judgePolicy({ ...dataset, policy: { ...dataset.policy, mode: 'allowlist', allowedCodeHashes: [] } }, fair), 'string', 'an empty allowlist allows no code')
  assert.type(judgePolicy({ ...dataset, policy: { ...dataset.policy, mode: undefined as unknown as 'any' } }, fair), 'string', 'a record without a mode allows no code')
})

test('each reason the policy refuses', () => {
  const cases: Array<[string, Partial<TradeTerms>, RegExp]> = [
    ['code not in the list', { codeHash: OTHER_CODE }, /code is not allowed/],
    ['output cap above the policy', { outputCap: 4097n }, /output cap is above/],
    ['a token fee, below the full price', { dataFee: 9_999n }, /fee 9999 wei is below the price of the data/],
    ['output cheaper than the policy', { outputPrice: 11n }, /output price is below/]
  ]
  for (const [what, over, why] of cases) {
    const r = judgePolicy(dataset, { ...fair, ...over })
    assert.type(r, 'string', what)
    assert.match(r as string, why, what)
  }
})

test('parsePolicy: defaults, and bad input refused with the field named', () => {
  const none = { mode: 'none', allowedCodeHashes: [], outputCap: DEFAULT_OUTPUT_CAP.toString(), minOutputPrice: '7', allowedBuyers: [], maxTrades: 0, expiresAt: 0 }
  assert.equal(parsePolicy(undefined, 7n), none)
  assert.equal(parsePolicy({ mode: 'any' }, 7n), { ...none, mode: 'any' })
  assert.equal(parsePolicy({ mode: 'allowlist', allowedCodeHashes: [CODE.toUpperCase().replace('0X', '0x')], outputCap: 10, minOutputPrice: '3' }, 7n),
    { ...none, mode: 'allowlist', allowedCodeHashes: [CODE], outputCap: '10', minOutputPrice: '3' })
  assert.equal(parsePolicy({ mode: 'any', allowedBuyers: [BUYER.toUpperCase().replace('0X', '0x')], maxTrades: '3', expiresAt: 2_000_000_000 }, 7n),
    { ...none, mode: 'any', allowedBuyers: [BUYER], maxTrades: 3, expiresAt: 2_000_000_000 })
  assert.equal(chainPolicyOf(parsePolicy(undefined, 7n)), { allowedCodeHashes: [], anyCode: false, outputCap: DEFAULT_OUTPUT_CAP, minOutputPrice: 7n, allowedBuyers: [], maxTrades: 0, expiresAt: 0 })
  assert.is(chainPolicyOf(parsePolicy({ mode: 'any' }, 7n)).anyCode, true)
  const bad: Array<Record<string, unknown>> = [
    { mode: 'any', colour: 'red' },
    { allowedCodeHashes: [CODE] }, // no mode
    { mode: 'none' },
    { mode: 'any', allowedCodeHashes: [CODE] },
    { mode: 'allowlist' },
    { mode: 'allowlist', allowedCodeHashes: [] },
    { mode: 'any', minOutputPrice: 3 },
    { mode: 'allowlist', allowedCodeHashes: ['0x12'] },
    { mode: 'allowlist', allowedCodeHashes: Array.from({ length: MAX_ALLOWED_CODE_HASHES + 1 }, () => CODE) },
    { mode: 'any', outputCap: -1 },
    { mode: 'any', outputCap: '1e3' },
    { mode: 'any', allowedBuyers: [] },
    { mode: 'any', allowedBuyers: ['0x12'] },
    { mode: 'any', allowedBuyers: Array.from({ length: MAX_ALLOWED_BUYERS + 1 }, () => BUYER) },
    { mode: 'any', maxTrades: 0 },
    { mode: 'any', maxTrades: MAX_TRADES_LIMIT + 1 },
    { mode: 'any', maxTrades: 1.5 },
    { mode: 'any', expiresAt: -1 },
    { mode: 'any', expiresAt: 'tomorrow' }
  ]
  for (const raw of bad) {
    try {
      parsePolicy(raw, 7n)
      assert.unreachable(JSON.stringify(raw))
    } catch (err) {
      assert.instance(err, RpcError, JSON.stringify(raw))
      assert.match((err as Error).message, /policy/)
    }
  }
})

test.run()
