// DTMC (with CISC) on a real anvil: whole trades, consensus outcomes, payouts to the wei, and feedback.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { keccak256 } from 'ethers'
import { QUOTE_TAG, RESULT_TAG, ResultStatus, inputHashOf } from '../../../contracts/formats.ts'
import { CLAIM_WINDOW, COMMIT_WINDOW } from '../../../contracts/client.ts'
import { groupKeyOf } from '../../helpers/dtmc-checks.ts'
import {
  startChain, makeMarket, openTrade, submit, commit, reveal, signedResult, increaseTime, conserved, everyone, reverts, paid, DEFAULT_TERMS,
  type Chain, type Market, type OpenedTrade
} from '../../../contracts/tools/market.ts'

let chain: Chain

test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

/** What docs/protocol.md says each party gets from a settled trade. */
function expectedPayouts (m: Market, t: OpenedTrade, winners: number[], result: { resultSize: bigint, status: number }): Map<string, bigint> {
  const out = new Map<string, bigint>()
  const add = (a: string, v: bigint): void => { out.set(a, (out.get(a) ?? 0n) + v) }
  // The output fee is per seller: outputPrice per output byte to each, never a share.
  const outputFee = result.status === 0 ? t.terms.outputPrice * result.resultSize : 0n
  let paid = 0n
  m.sellers.forEach((s) => {
    let fee = s.unitPrice * s.size
    if (fee > t.terms.sellerCap) fee = t.terms.sellerCap
    const amount = fee + outputFee
    add(s.address, amount)
    paid += amount
  })
  // flat: the trade's gas cap, whatever gas the run used (that never reaches the chain)
  let nodeFee = t.terms.nodePrice * t.terms.gasCap
  if (nodeFee > t.terms.nodeCap) nodeFee = t.terms.nodeCap
  for (const i of winners) { add(m.nodes[i].address, nodeFee); paid += nodeFee }
  add(m.buyer.address, t.deposit - paid)
  return out
}

/** What DTMC paid each party of the market (its Credited events; every test has a market of its own). */
async function credits (m: Market): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>()
  for (const a of everyone(m).slice(0, -1)) {
    const c = await paid(m, null, a)
    if (c !== 0n) out.set(a, c)
  }
  return out
}

/** The trade's state after the submissions: the last one (or the one after a majority) settles it by itself. */
async function stateOf (m: Market, t: OpenedTrade): Promise<string> {
  return (await m.buyer.client.dtmc.trade(t.tradeId))!.state
}

function withoutZeros (m: Map<string, bigint>): Map<string, bigint> {
  return new Map([...m].filter(([, v]) => v !== 0n))
}

test('the Solidity formats are formats.ts: tags, inputHash, group key', async () => {
  const m = await makeMarket(chain, 2, 1)
  const dtmc = m.buyer.client.dtmc
  assert.is(await dtmc.contract.QUOTE_TAG(), QUOTE_TAG)
  assert.is(await dtmc.contract.RESULT_TAG(), RESULT_TAG)
  const t = await openTrade(m)
  const view = await dtmc.trade(t.tradeId)
  assert.is(view!.inputHash, inputHashOf(m.sellers.map(s => s.commitment)))
  const receipt = await submit(m, t, 0)
  const [event] = dtmc.eventsIn(receipt, 'ResultSubmitted')
  assert.is(event.args.groupKey, groupKeyOf(signedResult(t, 0).info))
})

test('a full trade: one seller, three nodes, deposit, results, payouts, refund of the rest, rating', async () => {
  const m = await makeMarket(chain, 1, 3)
  await conserved(chain, everyone(m), async () => {
    const held = await chain.provider.getBalance(chain.network.contracts.DTMC)
    const t = await openTrade(m)
    assert.is(t.deposit, DEFAULT_TERMS.sellerCap + 3n * DEFAULT_TERMS.nodeCap + DEFAULT_TERMS.outputPrice * DEFAULT_TERMS.outputCap)
    assert.is(await chain.provider.getBalance(chain.network.contracts.DTMC), held + t.deposit)

    const opened = await m.buyer.client.dtmc.trade(t.tradeId)
    assert.is(opened!.state, 'open')
    assert.is(opened!.buyer, m.buyer.address)
    assert.equal(opened!.nodes.map(n => n.enclave), t.enclaves.map(e => e.key.address))
    assert.is(opened!.sellers[0].fee, m.sellers[0].unitPrice * m.sellers[0].size) // below the cap

    await submit(m, t, 0)
    await submit(m, t, 1)
    assert.is(await stateOf(m, t), 'open', 'a majority, but the third node may still report')
    await submit(m, t, 2)
    // the submission after a majority settles the trade: nobody needs to call finalize
    assert.is(await stateOf(m, t), 'settled')
    await reverts(m.nodes[2].client.dtmc.finalize(t.tradeId), 'AlreadyFinalized')

    const { info } = signedResult(t, 0)
    const expected = expectedPayouts(m, t, [0, 1, 2], info)
    assert.equal(await credits(m), withoutZeros(expected))

    const view = await m.buyer.client.dtmc.trade(t.tradeId)
    assert.is(view!.state, 'settled')
    assert.is(view!.final!.resultHash, info.resultHash)
    assert.equal(view!.final!.members, [0, 1, 2])

    // push: each party was sent its payout at once (conserved() checks the balances): nothing is left to withdraw
    for (const a of [m.buyer, ...m.sellers, ...m.nodes]) {
      assert.is(await a.client.dtmc.creditOf(a.address), 0n)
      await reverts(a.client.dtmc.withdraw(), 'NothingToWithdraw')
    }
    assert.is(await chain.provider.getBalance(chain.network.contracts.DTMC), held)

    await m.buyer.client.dtmc.rate(t.tradeId, 0, 5, 'clean data')
    const seller = await m.buyer.client.cisc.seller(m.sellers[0].address)
    assert.is(seller!.ratingCount, 1)
    assert.is(seller!.ratingSum, 5)
    const [fb] = await m.buyer.client.cisc.feedback(m.sellers[0].address)
    assert.is(fb.tradeId, t.tradeId)
    assert.is(fb.score, 5)
    assert.is(fb.resultHash, info.resultHash)
    assert.is(fb.resultSize, info.resultSize)
    assert.is(fb.status, ResultStatus.Ok)
    assert.ok((await m.buyer.client.dtmc.trade(t.tradeId))!.sellers[0].rated)
  })
})

test('each of three sellers gets the whole output price per byte (no share); a seller fee is capped', async () => {
  const m = await makeMarket(chain, 3, 1)
  // nodePrice * gasCap is far above nodeCap
  const t = await openTrade(m, { sellerCap: m.sellers[0].unitPrice * m.sellers[0].size - 1n, outputPrice: 7n, gasCap: 20_000_000_000n })
  const result = { resultSize: 1000n }
  assert.is(t.deposit, 3n * (t.terms.sellerCap + 7n * t.terms.outputCap) + t.terms.nodeCap)
  await submit(m, t, 0, result)
  const c = await credits(m)
  const fee = t.terms.sellerCap
  for (const s of m.sellers) assert.is(c.get(s.address), fee + 7000n)
  assert.is(c.get(m.nodes[0].address), t.terms.nodeCap)
  assert.equal(c, withoutZeros(expectedPayouts(m, t, [0], { ...result, status: 0 })))
})

test('one of three nodes reports a different result: it is unpaid and the majority is final', async () => {
  const m = await makeMarket(chain, 1, 3)
  await conserved(chain, everyone(m), async () => {
    const t = await openTrade(m)
    const wrong = keccak256(Buffer.from('a wrong answer'))
    await submit(m, t, 0)
    await submit(m, t, 1, { resultHash: wrong })
    await submit(m, t, 2)
    assert.is(await stateOf(m, t), 'settled')
    const view = await m.buyer.client.dtmc.trade(t.tradeId)
    assert.is(view!.final!.resultHash, signedResult(t, 0).info.resultHash)
    assert.equal(view!.final!.members, [0, 2])
    assert.is(view!.groups.length, 2)
    assert.is(view!.nodes[1].group, view!.groups.findIndex(g => g.resultHash === wrong))
    const c = await credits(m)
    assert.is(c.get(m.nodes[1].address), undefined)
    assert.equal(c, withoutZeros(expectedPayouts(m, t, [0, 2], signedResult(t, 0).info)))
    await reverts(m.nodes[1].client.dtmc.withdraw(), 'NothingToWithdraw')
  })
})

test('a strict majority with a non-zero status is final: sellers and nodes paid, no output fee', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  const failed = { status: ResultStatus.OutOfGas, resultSize: 0n, resultHash: keccak256('0x') }
  for (let i = 0; i < 3; i++) await submit(m, t, i, failed)
  assert.is(await stateOf(m, t), 'settled')
  assert.equal(await credits(m), withoutZeros(expectedPayouts(m, t, [0, 1, 2], { ...signedResult(t, 0).info, ...failed })))
})

test('three different results: no majority, full refund', async () => {
  const m = await makeMarket(chain, 1, 3)
  await conserved(chain, everyone(m), async () => {
    const t = await openTrade(m)
    for (let i = 0; i < 3; i++) await submit(m, t, i, { resultHash: keccak256(Buffer.from(`answer ${i}`)) })
    assert.is(await stateOf(m, t), 'refunded', 'the last result closes the trade')
    // The sellers' data fees are held for delivery claims (DTMC.CLAIM_WINDOW); the rest goes back at once.
    const fee = (await m.buyer.client.dtmc.trade(t.tradeId))!.sellers[0].fee
    assert.equal(await credits(m), new Map([[m.buyer.address, t.deposit - fee]]))
    assert.equal(await m.buyer.client.dtmc.claimsOf(t.tradeId).then(c => c.held), [0])
    await reverts(m.buyer.client.dtmc.rate(t.tradeId, 0, 3), 'TradeNotSettled')
  })
})

test('two against two of four nodes is no strict majority: refund', async () => {
  const m = await makeMarket(chain, 1, 4)
  const t = await openTrade(m)
  const other = keccak256(Buffer.from('other'))
  await submit(m, t, 0)
  await submit(m, t, 1, { resultHash: other })
  await submit(m, t, 2)
  await submit(m, t, 3, { resultHash: other })
  assert.is(await stateOf(m, t), 'refunded')
})

test('too few results by the deadline: finalize waits for it, then refunds', async () => {
  const m = await makeMarket(chain, 1, 3)
  await conserved(chain, everyone(m), async () => {
    const t = await openTrade(m)
    await submit(m, t, 0)
    await reverts(m.buyer.client.dtmc.finalize(t.tradeId), 'FinalizeTooEarly')
    await increaseTime(chain, 3601)
    assert.is((await m.buyer.client.dtmc.finalize(t.tradeId)).outcome, 'refunded')
    const fee = (await m.buyer.client.dtmc.trade(t.tradeId))!.sellers[0].fee
    assert.equal(await credits(m), new Map([[m.buyer.address, t.deposit - fee]]))
    // Nobody claims the held fee within the window: it goes to the buyer too.
    await increaseTime(chain, CLAIM_WINDOW + 1)
    await m.sellers[0].client.dtmc.releaseUnclaimed(t.tradeId)
    assert.equal(await credits(m), new Map([[m.buyer.address, t.deposit]]))
  })
})

test('two of three committed by the end of the commit window are a strict majority of three: settled without the third', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  await commit(m, t, 0)
  await commit(m, t, 2)
  await increaseTime(chain, COMMIT_WINDOW)
  await reverts(commit(m, t, 1), 'CommitPhaseClosed')
  await reveal(m, t, 0)
  await reveal(m, t, 2) // the last committed result settles the trade
  assert.is(await stateOf(m, t), 'settled')
  await reverts(m.buyer.client.dtmc.finalize(t.tradeId), 'AlreadyFinalized')
  assert.equal(await credits(m), withoutZeros(expectedPayouts(m, t, [0, 2], signedResult(t, 0).info)))
})

test('tradesOf finds a trade by buyer, seller and node; events decode', async () => {
  const m = await makeMarket(chain, 2, 2)
  const t = await openTrade(m)
  const dtmc = m.buyer.client.dtmc
  assert.ok((await dtmc.tradesOf(m.buyer.address, 'buyer')).includes(t.tradeId))
  assert.ok((await dtmc.tradesOf(m.sellers[1].address, 'seller')).includes(t.tradeId))
  assert.ok((await dtmc.tradesOf(m.nodes[0].address, 'node')).includes(t.tradeId))
  const events = await m.buyer.client.events(t.receipt.blockNumber, t.receipt.blockNumber)
  assert.equal(events.map(e => e.name), ['TradeSeller', 'TradeSeller', 'TradeNode', 'TradeNode', 'TradeOpened'])
  assert.is(events[4].args.tradeId, t.tradeId)
})

test.run()
