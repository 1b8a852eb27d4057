// A dataset's policy (daemon/roles/seller/policy.ts): one judge for the demands a seller offers for
// and the trades it delivers to, and the parsing of seller_addDataset's policy.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  judgePolicy, parsePolicy, chainPolicyOf, fullPriceOf, MAX_ALLOWED_CODE_HASHES, MAX_ALLOWED_BUYERS, MAX_TRADES_LIMIT, type PricedDataset, type TradeTerms
} from '../../../daemon/roles/seller/policy.ts'
import { DEFAULT_OUTPUT_CAP, MAX_CLAMP_ABS, MAX_RUN_EPSILON } from '../../../enclave/index.ts'
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
  const clamp = { column: 1, decimals: 2, lower: '-100', upper: '5000' }
  bad.push(
    { mode: 'private', clamps: [clamp] }, // no budget
    { mode: 'private', epsilonBudget: '0', clamps: [clamp] },
    { mode: 'private', epsilonBudget: (1n << 64n).toString(), clamps: [clamp] },
    { mode: 'private', epsilonBudget: '1000000' }, // no clamps
    { mode: 'private', epsilonBudget: '1000000', clamps: [] },
    { mode: 'private', epsilonBudget: '1000000', clamps: Array.from({ length: 17 }, (_, i) => ({ ...clamp, column: i })) },
    { mode: 'private', epsilonBudget: '1000000', clamps: [{ ...clamp, lower: '6000' }] },
    { mode: 'private', epsilonBudget: '1000000', clamps: [clamp, clamp] }, // a column twice
    { mode: 'private', epsilonBudget: '1000000', clamps: [{ ...clamp, decimals: 19 }] },
    { mode: 'private', epsilonBudget: '1000000', clamps: [{ ...clamp, upper: (1n << 127n).toString() }] },
    // Within CISC's int128 and uint16 but beyond what the enclave takes: a listing it could never deliver.
    { mode: 'private', epsilonBudget: '1000000', clamps: [{ ...clamp, upper: (MAX_CLAMP_ABS + 1n).toString() }] },
    { mode: 'private', epsilonBudget: '1000000', clamps: [{ ...clamp, lower: (-MAX_CLAMP_ABS - 1n).toString() }] },
    { mode: 'private', epsilonBudget: '1000000', clamps: [{ ...clamp, column: 2 ** 16 }] },
    { mode: 'private', epsilonBudget: '1000000', clamps: [{ ...clamp, colour: 'red' }] },
    { mode: 'private', epsilonBudget: '1000000', clamps: [clamp], allowedCodeHashes: [CODE] },
    { mode: 'any', epsilonBudget: '1000000' },
    { mode: 'any', clamps: [clamp] }
  )
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

test('mode private: any code under the budget left; its budget and clamps go to CISC', () => {
  const p = parsePolicy({ mode: 'private', epsilonBudget: 2_000_000, clamps: [{ column: 3, decimals: 1, lower: -5, upper: '120' }] }, 7n)
  assert.equal([p.mode, p.epsilonBudget, p.clamps], ['private', '2000000', [{ column: 3, decimals: 1, lower: '-5', upper: '120' }]])
  assert.equal(chainPolicyOf(p), {
    allowedCodeHashes: [], anyCode: false, outputCap: DEFAULT_OUTPUT_CAP, minOutputPrice: 7n, allowedBuyers: [], maxTrades: 0, expiresAt: 0,
    privateMode: true, epsilonBudget: 2_000_000n, clamps: [{ column: 3, decimals: 1, lower: -5n, upper: 120n }]
  })
  const ds: PricedDataset = { unitPrice: '10', size: 1000, policy: { ...p, minOutputPrice: '12' }, epsilonSpent: 500_000n }
  assert.is(judgePolicy(ds, { ...fair, codeHash: OTHER_CODE, epsilon: 1_500_000n }), null, 'any code, exactly the budget left')
  assert.match(judgePolicy(ds, { ...fair, epsilon: 1_500_001n }) ?? '', /exceeds the remaining privacy budget 1500000/)
  assert.match(judgePolicy(ds, fair) ?? '', /must declare an epsilon/)
  assert.is(judgePolicy(dataset, { ...fair, epsilon: 5n }), null, 'a non-private dataset ignores the epsilon')
  // One trade's epsilon is at most what one enclave run takes, however large the budget left.
  const big: PricedDataset = { ...ds, policy: { ...ds.policy, epsilonBudget: (10n * MAX_RUN_EPSILON).toString() }, epsilonSpent: 0n }
  assert.is(judgePolicy(big, { ...fair, epsilon: MAX_RUN_EPSILON }), null)
  assert.match(judgePolicy(big, { ...fair, epsilon: MAX_RUN_EPSILON + 1n }) ?? '', /above the most one run takes/)
  const edge = parsePolicy({ mode: 'private', epsilonBudget: 1, clamps: [{ column: 65535, decimals: 18, lower: (-MAX_CLAMP_ABS).toString(), upper: MAX_CLAMP_ABS.toString() }] }, 1n)
  assert.is(edge.clamps?.[0].upper, MAX_CLAMP_ABS.toString(), 'the enclave\'s own bounds are taken')
})

test.run()
