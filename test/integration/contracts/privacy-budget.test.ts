// Issue 15, differential-privacy mode, the chain's part: the budget runs out exactly when it should, on chain.
// A private offer's budget (micro-epsilon) is charged by every trade's declared epsilon in CISC when DTMC opens
// the trade; trades that sum to exactly the budget open, the next one reverts with PrivacyBudgetExceeded, and
// a refund gives nothing back once the seller's data reached an enclave (it claimed its delivery), and the whole
// epsilon back otherwise, at the end of the claim window (test/attacks/private-budget-drain.test.ts). The seller's
// judge refuses the same trade from the budget left on chain.
// Non-private offers are untouched by all of it. One anvil for the whole file.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CLAIM_WINDOW, EPSILON_UNIT, type DatasetPolicy } from '../../../contracts/client.ts'
import { judgePolicy, parsePolicy, type PricedDataset, type TradeTerms } from '../../../daemon/roles/seller/policy.ts'
import {
  startChain, makeMarket, makeSeller, account, openTrade, reverts, increaseTime, latestTimestamp, rand32, conserved, everyone, claim, CODE_HASH,
  type Chain
} from '../../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

const BUDGET = 3n * EPSILON_UNIT // 3 epsilon
const CLAMPS = [{ column: 2, decimals: 1, lower: -400n, upper: 500n }]

/** A market of one node and one private offer with BUDGET. */
async function privateMarket (budget = BUDGET): ReturnType<typeof makeMarket> {
  const m = await makeMarket(chain, 0, 1)
  m.sellers.push(await makeSeller(chain, { epsilonBudget: budget, clamps: CLAMPS }))
  return m
}

test('a private listing keeps its budget and mode in CISC and its clamps in the DatasetPrivate event', async () => {
  const m = await privateMarket()
  const o = await m.buyer.client.cisc.offer(m.sellers[0].offerId)
  assert.equal([o.privateMode, o.anyCode, o.epsilonBudget, o.epsilonSpent], [true, false, BUDGET, 0n])
  assert.is(await m.buyer.client.cisc.remainingBudget(m.sellers[0].offerId), BUDGET)
  assert.equal(await m.buyer.client.cisc.clampsOf(m.sellers[0].offerId), CLAMPS)
  assert.ok(await m.buyer.client.cisc.isCodeAllowed(m.sellers[0].offerId, rand32()), 'private mode: any analysis (through the private precompiles)')
  // An 'any' offer has neither.
  const any = await makeSeller(chain)
  const a = await m.buyer.client.cisc.offer(any.offerId)
  assert.equal([a.privateMode, a.epsilonBudget, a.epsilonSpent], [false, 0n, 0n])
  assert.equal(await m.buyer.client.cisc.clampsOf(any.offerId), [])
})

test('CISC refuses a private policy that contradicts itself or lacks its budget or clamps', async () => {
  const s = await account(chain)
  await s.client.cisc.registerSeller('12D3KooW' + s.address.slice(2, 20))
  const base: DatasetPolicy = { allowedCodeHashes: [], anyCode: false, outputCap: 10n, minOutputPrice: 0n, privateMode: true, epsilonBudget: BUDGET, clamps: CLAMPS }
  const listing = async (policy: Partial<DatasetPolicy>): Promise<unknown> =>
    await s.client.cisc.listDataset({ tag: 'census', size: 1n, unitPrice: 1n, commitment: rand32(), policy: { ...base, ...policy } })
  await reverts(listing({ anyCode: true }), 'InvalidPolicy')
  await reverts(listing({ allowedCodeHashes: [CODE_HASH] }), 'InvalidPolicy')
  await reverts(listing({ epsilonBudget: 0n }), 'InvalidPolicy')
  await reverts(listing({ privateMode: false, anyCode: true }), 'InvalidPolicy') // a budget without private mode
  await reverts(listing({ clamps: [] }), 'InvalidClamps')
  await reverts(listing({ clamps: Array.from({ length: 17 }, (_, i) => ({ ...CLAMPS[0], column: i })) }), 'InvalidClamps')
  await reverts(listing({ clamps: [{ column: 0, decimals: 0, lower: 1n, upper: 0n }] }), 'InvalidClamps')
  await reverts(listing({ privateMode: false, anyCode: true, epsilonBudget: 0n }), 'InvalidClamps') // clamps without private mode
  await listing({})
})

test('trades that sum to exactly the budget open; the next one reverts; the seller refuses it too', async () => {
  const m = await privateMarket()
  const offerId = m.sellers[0].offerId
  const cisc = m.buyer.client.cisc
  const first = await openTrade(m, { epsilon: EPSILON_UNIT })
  assert.is(await cisc.remainingBudget(offerId), 2n * EPSILON_UNIT)
  // More than what is left (2) is refused, and changes nothing.
  const over = await reverts(openTrade(m, { epsilon: 2n * EPSILON_UNIT + 1n }), 'PrivacyBudgetExceeded')
  assert.equal(over.args, [offerId, 2n * EPSILON_UNIT + 1n, 2n * EPSILON_UNIT])
  assert.is(await cisc.remainingBudget(offerId), 2n * EPSILON_UNIT)
  await openTrade(m, { epsilon: 2n * EPSILON_UNIT - 1n })
  await openTrade(m, { epsilon: 1n }) // the last micro-epsilon: exactly the budget
  const o = await cisc.offer(offerId)
  assert.equal([o.epsilonSpent, await cisc.remainingBudget(offerId)], [BUDGET, 0n])
  const next = await reverts(openTrade(m, { epsilon: 1n }), 'PrivacyBudgetExceeded')
  assert.equal(next.args, [offerId, 1n, 0n])
  // A trade without an epsilon is refused on a private offer (it would not be charged).
  await reverts(openTrade(m, {}), 'EpsilonRequired')
  // The node reads each trade's epsilon from chain (TradePrivate).
  assert.is((await m.buyer.client.dtmc.trade(first.tradeId))?.epsilon, EPSILON_UNIT)

  // The seller judges from the same chain state: a demand over what is left is refused before any trade.
  const ds: PricedDataset = {
    unitPrice: m.sellers[0].unitPrice.toString(),
    size: Number(m.sellers[0].size),
    policy: parsePolicy({ mode: 'private', minOutputPrice: '0', epsilonBudget: BUDGET.toString(), clamps: [{ column: 2, decimals: 1, lower: '-400', upper: '500' }] }, m.sellers[0].unitPrice),
    epsilonSpent: o.epsilonSpent
  }
  const demand: TradeTerms = {
    codeHash: rand32(), outputCap: 1n, outputPrice: 0n, dataFee: m.sellers[0].unitPrice * m.sellers[0].size, buyer: m.buyer.address, now: await latestTimestamp(chain), epsilon: 1n
  }
  assert.match(judgePolicy(ds, demand) ?? '', /exceeds the remaining privacy budget 0/)
  assert.is(judgePolicy({ ...ds, epsilonSpent: BUDGET - 1n }, demand), null, 'one micro-epsilon left: a demand for it passes')
  assert.match(judgePolicy({ ...ds, epsilonSpent: 0n }, { ...demand, epsilon: BUDGET + 1n }) ?? '', /exceeds the remaining privacy budget 3000000/)
  assert.match(judgePolicy({ ...ds, epsilonSpent: 0n }, { ...demand, epsilon: 0n }) ?? '', /must declare an epsilon/)
})

test('a refund gives no budget back once the seller claimed its delivery (the enclaves may already have answered)', async () => {
  const m = await privateMarket()
  const offerId = m.sellers[0].offerId
  await conserved(chain, everyone(m), async () => {
    const t = await openTrade(m, { epsilon: BUDGET })
    await increaseTime(chain, 3601)
    const { outcome } = await m.buyer.client.dtmc.finalize(t.tradeId)
    assert.is(outcome, 'refunded')
    // Still reserved through the claim window: the seller may yet show a receipt.
    assert.is(await m.buyer.client.cisc.remainingBudget(offerId), 0n)
    await reverts(openTrade(m, { epsilon: 1n }), 'PrivacyBudgetExceeded')
    await claim(m, t, 0, 0)
  })
  assert.is(await m.buyer.client.cisc.remainingBudget(offerId), 0n)
  await reverts(openTrade(m, { epsilon: 1n }), 'PrivacyBudgetExceeded')
})

test('the release gives back exactly the unclaimed private sellers\' reservations, once', async () => {
  const m = await privateMarket()
  m.sellers.push(await makeSeller(chain)) // an "any" offer: nothing reserved, nothing released
  m.sellers.push(await makeSeller(chain, { epsilonBudget: BUDGET, clamps: CLAMPS }))
  const cisc = m.buyer.client.cisc
  const t = await openTrade(m, { epsilon: EPSILON_UNIT })
  const other = await openTrade(m, { epsilon: EPSILON_UNIT }) // another trade's reservation on the same offers stays
  await increaseTime(chain, 3601)
  await m.buyer.client.dtmc.finalize(t.tradeId)
  await claim(m, t, 2, 0)
  await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'ClaimWindowOpen')
  await increaseTime(chain, CLAIM_WINDOW + 1)
  const { logs } = await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
  const released = logs.map(l => cisc.iface.parseLog(l)).filter(e => e?.name === 'PrivacyBudgetReleased')
  assert.equal(released.map(e => [e!.args.offerId, e!.args.tradeId, e!.args.epsilon, e!.args.spent]), [[m.sellers[0].offerId, t.tradeId, EPSILON_UNIT, EPSILON_UNIT]])
  assert.equal(
    [await cisc.remainingBudget(m.sellers[0].offerId), await cisc.remainingBudget(m.sellers[2].offerId), (await cisc.offer(m.sellers[1].offerId)).epsilonSpent],
    [BUDGET - EPSILON_UNIT, BUDGET - 2n * EPSILON_UNIT, 0n]
  )
  await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'NothingHeld')
  assert.is((await m.buyer.client.dtmc.trade(other.tradeId))?.state, 'open')
})

test('each private offer of a trade pays its epsilon; an "any" offer in the same trade is not charged', async () => {
  const m = await privateMarket()
  m.sellers.push(await makeSeller(chain, { epsilonBudget: EPSILON_UNIT }))
  m.sellers.push(await makeSeller(chain))
  const t = await openTrade(m, { epsilon: EPSILON_UNIT })
  const cisc = m.buyer.client.cisc
  assert.equal(
    [await cisc.remainingBudget(m.sellers[0].offerId), await cisc.remainingBudget(m.sellers[1].offerId), await cisc.remainingBudget(m.sellers[2].offerId)],
    [BUDGET - EPSILON_UNIT, 0n, 0n]
  )
  assert.is((await cisc.offer(m.sellers[2].offerId)).epsilonSpent, 0n)
  assert.is((await m.buyer.client.dtmc.trade(t.tradeId))?.epsilon, EPSILON_UNIT)
  // The second offer's budget is spent: the whole trade reverts, the first offer keeps its budget.
  await reverts(openTrade(m, { epsilon: EPSILON_UNIT }), 'PrivacyBudgetExceeded')
  assert.is(await cisc.remainingBudget(m.sellers[0].offerId), BUDGET - EPSILON_UNIT)
})

test('a trade on "any" offers is unchanged: no epsilon, no TradePrivate, nothing charged', async () => {
  const m = await makeMarket(chain, 2, 1)
  const t = await openTrade(m)
  const view = await m.buyer.client.dtmc.trade(t.tradeId)
  assert.is(view?.epsilon, 0n)
  assert.is(m.buyer.client.dtmc.eventsIn(t.receipt, 'TradePrivate').length, 0)
  for (const s of m.sellers) assert.is((await m.buyer.client.cisc.offer(s.offerId)).epsilonSpent, 0n)
})

test.run()
