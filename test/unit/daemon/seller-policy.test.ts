// A dataset's policy (daemon/roles/seller/policy.ts): one judge for the demands a seller offers for
// and the trades it delivers to, and the parsing of seller_addDataset's policy.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { judgePolicy, parsePolicy, fullPriceOf, MAX_ALLOWED_CODE_HASHES, type PricedDataset, type TradeTerms } from '../../../daemon/roles/seller/policy.ts'
import { DEFAULT_OUTPUT_CAP } from '../../../enclave/index.ts'
import { RpcError } from '../../../daemon/rpc/errors.ts'

const CODE = '0x' + 'ab'.repeat(32)
const OTHER_CODE = '0x' + 'cd'.repeat(32)
const dataset: PricedDataset = { unitPrice: '10', size: 1000, policy: { allowedCodeHashes: [CODE], outputCap: '4096', minOutputPrice: '12' } }
const fair: TradeTerms = { codeHash: CODE, outputCap: 4096n, outputPrice: 12n, dataFee: 10_000n }

test('terms within the policy pass, at every bound', () => {
  assert.is(fullPriceOf(dataset), 10_000n)
  assert.is(judgePolicy(dataset, fair), null)
  assert.is(judgePolicy(dataset, { ...fair, codeHash: CODE.toUpperCase().replace('0X', '0x') }), null, 'code hash case does not matter')
  assert.is(judgePolicy({ ...dataset, policy: { ...dataset.policy, allowedCodeHashes: [] } }, { ...fair, codeHash: OTHER_CODE }), null, 'an empty list allows any code')
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
  assert.equal(parsePolicy(undefined, 7n), { allowedCodeHashes: [], outputCap: DEFAULT_OUTPUT_CAP.toString(), minOutputPrice: '7' })
  assert.equal(parsePolicy({ allowedCodeHashes: [CODE.toUpperCase().replace('0X', '0x')], outputCap: 10, minOutputPrice: '3' }, 7n),
    { allowedCodeHashes: [CODE], outputCap: '10', minOutputPrice: '3' })
  const bad: Array<Record<string, unknown>> = [
    { colour: 'red' },
    { minOutputPrice: 3 },
    { allowedCodeHashes: ['0x12'] },
    { allowedCodeHashes: Array.from({ length: MAX_ALLOWED_CODE_HASHES + 1 }, () => CODE) },
    { outputCap: -1 },
    { outputCap: '1e3' }
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
