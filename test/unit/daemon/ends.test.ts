// daemon/ends.ts: every end of a trade in words for the buyer, a seller and a node operator, with the facts
// each needs (the opcode and its position, the gas and output against their caps, the refused seller's
// account, why a refund). The ends a testnet produces cheaply are also checked end to end in
// test/e2e/faults.test.ts (a forbidden opcode, a refund with no result).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ResultStatus } from '../../../contracts/index.ts'
import { explainRefund, explainRoleFailure, explainRun, explainTrade, RUN_STATUS_WORDS } from '../../../daemon/ends.ts'
import type { TradeRecord } from '../../../daemon/trades.ts'

const terms = { gasCap: 5_000_000n, outputCap: 2048n }
const base = { gasUsed: '0', gasCap: '5000000', outputCap: '2048' }
const SELLER = '0x' + 'ab'.repeat(20)

function sentences (e: ReturnType<typeof explainRun>): string[] { return [e.summary, e.buyer, e.seller, e.node] }

test('every run status has a meaning; every party gets a sentence that names the status', () => {
  for (const status of Object.values(ResultStatus).filter(s => s !== ResultStatus.Ok)) {
    assert.ok(RUN_STATUS_WORDS[status] !== undefined, `status ${status}`)
    const e = explainRun(status, terms)
    assert.is(e.failed, true)
    assert.is(e.kind, RUN_STATUS_WORDS[status].kind)
    for (const s of sentences(e)) assert.ok(s.length > 40, s)
    assert.match(e.buyer, new RegExp(`status ${status}`))
    assert.not.match(e.summary, /undefined|NaN|\[object/)
  }
  assert.is(explainRun(9, terms).kind, 'unknown_status')
})

test('forbidden: the buyer is told which opcode at which position; seller and node that no data left', () => {
  const e = explainRun(ResultStatus.Forbidden, terms, { ...base, status: 3, gasUsed: '5000000', opcode: 'DELEGATECALL', pc: 300 })
  assert.match(e.buyer, /DELEGATECALL at position 300 \(byte offset 0x12c/)
  assert.match(e.summary, /status 3 \(forbidden opcode\).*DELEGATECALL at position 300/)
  assert.match(e.seller, /nothing of your data left the enclave\. You are paid your data fee/)
  assert.match(e.node, /Your enclave stopped the buyer's analysis.*encrypted, to the buyer only/)
  // Without the buyer's diagnosis (a seller's or a node's daemon): the status, and where the details went.
  const blind = explainRun(ResultStatus.Forbidden, terms)
  assert.not.match(blind.summary, /position/)
  assert.match(blind.summary, /encrypted, to the buyer only/)
})

test('out of gas and output over cap: the figure against the cap', () => {
  const gas = explainRun(ResultStatus.OutOfGas, terms, { ...base, status: 2, gasUsed: '5000000' })
  assert.match(gas.buyer, /used 5000000 of its 5000000 gas.*Raise the gas cap/)
  assert.match(explainRun(ResultStatus.OutOfGas, terms).buyer, /of 5000000 gas/)
  const out = explainRun(ResultStatus.OutputOverCap, terms, { ...base, status: 4, outputSize: 9000, outputCap: '100' })
  assert.match(out.buyer, /9000 bytes over a cap of 100 bytes/)
})

test('input invalid: which seller (index and account) and why; the seller learns its fee is held', () => {
  const e = explainRun(ResultStatus.InputInvalid, terms, { ...base, status: 5, invalidSellers: [{ index: 1, account: SELLER, why: 'ChunkAuthError: chunk 3 failed authentication' }] })
  for (const s of [e.summary, e.buyer]) assert.match(s, new RegExp(`seller 1 \\(${SELLER}\\) — ChunkAuthError: chunk 3`))
  assert.match(e.seller, /your data fee is held/)
  assert.match(e.node, /ran nothing/)
})

test('refunds: no result at all, committed but not revealed, results that disagree, too few', () => {
  const nodes = [0, 1, 2].map(() => ({ payee: SELLER, enclave: SELLER, committed: false, submitted: false, group: null }))
  const g = (count: number) => ({ key: '0x', resultHash: '0x', resultSize: 0n, status: 0, count, members: [] })
  const none = explainRefund({ deadline: 1_800_000_000, nResults: 0, nCommits: 0, nodes, groups: [] })
  assert.is(none.kind, 'refunded_no_result')
  assert.match(none.summary, /none of the 3 nodes submitted a result by the deadline \(2027-01-15T08:00:00\.000Z\)/)
  assert.match(none.buyer, /Your deposit came back but the sellers' data fees/)
  assert.match(none.seller, /claim your data fee with your delivery receipts/)
  assert.match(none.node, /No node is paid/)
  assert.match(explainRefund({ deadline: 0, nResults: 0, nCommits: 2, nodes, groups: [] }).summary, /2 of 3 nodes committed to a result but none revealed/)
  const split = explainRefund({ deadline: 0, nResults: 3, nCommits: 3, nodes, groups: [g(1), g(1), g(1)] })
  assert.is(split.kind, 'refunded_no_majority')
  assert.match(split.summary, /results of the 3 nodes disagree \(groups of 1, 1, 1\): no strict majority of 2/)
  assert.match(explainRefund({ deadline: 0, nResults: 1, nCommits: 1, nodes, groups: [g(1)] }).summary, /only 1 of 3 nodes submitted.*needs 2/)
})

test('explainTrade: DTMC first (with the buyer record\'s diagnosis), else a record that failed; null while open or delivered', () => {
  const rec = (role: 'buyer' | 'seller' | 'node', state: string, more: Partial<TradeRecord> = {}): TradeRecord =>
    ({ role, tradeId: '0x', state, createdAt: '', updatedAt: '', timeline: [], data: {}, ...more }) as TradeRecord
  const chain = (state: 'open' | 'settled' | 'refunded', status = 0) => ({
    state, deadline: 0, nResults: 3, nCommits: 3, gasCap: terms.gasCap, outputCap: terms.outputCap, nodes: [], groups: [],
    final: state === 'settled' ? { key: '0x', resultHash: '0x', resultSize: 0n, status, count: 2, members: [0, 1] } : null
  }) as any
  assert.is(explainTrade([rec('buyer', 'delivered')], chain('settled')), null)
  assert.is(explainTrade([rec('buyer', 'executing')], chain('open')), null)
  const buyer = rec('buyer', 'failed', { data: { diagnosis: { ...base, status: 3, opcode: 'CREATE', pc: 7 } } })
  assert.match(explainTrade([buyer], chain('settled', 3))!.buyer, /CREATE at position 7/)
  assert.is(explainTrade([rec('seller', 'finalized')], chain('refunded'))!.kind, 'refunded_no_majority')
  const failed = explainTrade([rec('node', 'failed', { reason: 'no run finished within its budget in 2 tries' })], null)!
  assert.is(failed.kind, 'role_failed')
  assert.match(failed.node, /Your node's part of the trade failed: no run finished/)
  assert.match(explainRoleFailure('buyer', 'only 1 of 3 enclaves attested').seller, /the buyer dropped out of the trade: only 1 of 3/)
})

test.run()
