// Every refusal of the contracts, each with its own custom error (decoded by the chain client into
// ChainRevertError.errorName), and no wei created or lost around them.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, keccak256 } from 'ethers'
import { ResultStatus, SECP256K1_HALF_N, resultCommitmentOf, resultDigestOf, signDigest } from '../../../contracts/formats.ts'
import { ChainRevertError, COMMIT_WINDOW, decodeRevert, factsTupleOf, type DatasetPolicy } from '../../../contracts/client.ts'
import {
  startChain, makeMarket, makeSeller, account, openTrade, submit, commit, reveal, signedResult, makeQuote, increaseTime, conserved,
  everyone, reverts, latestTimestamp, rand32, CODE_HASH, MEASUREMENT, type Chain, type Market
} from '../../../contracts/tools/market.ts'

let chain: Chain
let m: Market

test.before(async () => {
  chain = await startChain()
  m = await makeMarket(chain, 1, 3)
})
test.after(async () => { await chain?.stop() })

/** Runs `body` checking that the market's balances (and DTMC's) add up to the wei around it. */
const balanced = async (body: () => Promise<void>): Promise<void> => await conserved(chain, everyone(m), body)

const stranger = (): Wallet => new Wallet(Wallet.createRandom().privateKey)

/** The malleable twin of a low-s signature: same signer, s' = n - s, v flipped. */
function highS (sig: string): string {
  const n = SECP256K1_HALF_N * 2n + 1n
  const s = BigInt('0x' + sig.slice(66, 130))
  const v = sig.slice(130) === '1b' ? '1c' : '1b'
  return sig.slice(0, 66) + (n - s).toString(16).padStart(64, '0') + v
}

test('a quote not signed by the attestation root: QuoteNotFromRoot', async () => {
  await balanced(async () => {
    const salt = rand32()
    const tradeId = m.buyer.client.dtmc.tradeIdOf(m.buyer.address, salt)
    const fake = stranger()
    const enclave = stranger()
    const nodes = m.nodes.map(n => ({ payee: n.address, quote: makeQuote(chain, stranger().address, tradeId, CODE_HASH, n.address) }))
    nodes[1] = { payee: m.nodes[1].address, quote: makeQuote({ ...chain, root: fake }, enclave.address, tradeId, CODE_HASH, m.nodes[1].address) }
    const err = await reverts(openTrade(m, { salt, nodes }), 'QuoteNotFromRoot')
    assert.equal(err.args, [1n])
    assert.is(err.contract, 'DTMC')
    assert.is(err.method, 'openTrade')
    assert.instance(err, ChainRevertError)
  })
})

test('a quote for another codeHash: QuoteCodeHashMismatch', async () => {
  await balanced(async () => {
    const salt = rand32()
    const tradeId = m.buyer.client.dtmc.tradeIdOf(m.buyer.address, salt)
    const nodes = m.nodes.map(n => ({ payee: n.address, quote: makeQuote(chain, stranger().address, tradeId, CODE_HASH, n.address) }))
    nodes[2] = { payee: m.nodes[2].address, quote: makeQuote(chain, stranger().address, tradeId, keccak256('0x6001'), m.nodes[2].address) }
    const err = await reverts(openTrade(m, { salt, nodes }), 'QuoteCodeHashMismatch')
    assert.equal(err.args, [2n])
    // a quote for this codeHash but another trade is refused the same way
    const other = m.nodes.map(n => ({ payee: n.address, quote: makeQuote(chain, stranger().address, rand32(), CODE_HASH, n.address) }))
    await reverts(openTrade(m, { salt, nodes: other }), 'QuoteCodeHashMismatch')
  })
})

test('quotes: unaccepted measurement, high-s signature, duplicate enclave; a rotated root', async () => {
  await balanced(async () => {
    const salt = rand32()
    const tradeId = m.buyer.client.dtmc.tradeIdOf(m.buyer.address, salt)
    const good = () => m.nodes.map(n => ({ payee: n.address, quote: makeQuote(chain, stranger().address, tradeId, CODE_HASH, n.address) }))
    const nodes = good()
    nodes[0].quote = makeQuote(chain, stranger().address, tradeId, CODE_HASH, nodes[0].payee, keccak256('0x01'))
    await reverts(openTrade(m, { salt, nodes }), 'MeasurementNotAccepted')
    const malleable = good()
    malleable[0].quote = { ...malleable[0].quote, signature: highS(malleable[0].quote.signature) }
    await reverts(openTrade(m, { salt, nodes: malleable }), 'InvalidSignature')
    const dup = good()
    dup[1] = { payee: dup[1].payee, quote: dup[0].quote }
    await reverts(openTrade(m, { salt, nodes: dup }), 'DuplicateEnclave')
  })
  // Rotation: only the admin may; afterwards the old root's quotes are refused and the new root's pass.
  const newRoot = stranger()
  await reverts(m.buyer.client.dtmc.setAttestationRoot(newRoot.address), 'NotAdmin')
  await reverts(m.buyer.client.dtmc.setMeasurement(keccak256('0x02'), true), 'NotAdmin')
  await chain.admin.dtmc.setAttestationRoot(newRoot.address)
  try {
    assert.is(await m.buyer.client.dtmc.attestationRoot(), newRoot.address)
    const salt = rand32()
    const tradeId = m.buyer.client.dtmc.tradeIdOf(m.buyer.address, salt)
    const old = m.nodes.map(n => ({ payee: n.address, quote: makeQuote(chain, stranger().address, tradeId, CODE_HASH, n.address) }))
    await reverts(openTrade(m, { salt, nodes: old }), 'QuoteNotFromRoot')
    const fresh = m.nodes.map(n => ({ payee: n.address, quote: makeQuote({ ...chain, root: newRoot }, stranger().address, tradeId, CODE_HASH, n.address) }))
    await openTrade(m, { salt, nodes: fresh })
  } finally {
    await chain.admin.dtmc.setAttestationRoot(chain.root.address)
  }
})

test('openTrade terms: deposit, counts, deadline, duplicates, trade id reuse', async () => {
  await balanced(async () => {
    const t = await openTrade(m)
    const err = await reverts(openTrade(m, { deposit: t.deposit - 1n }), 'DepositMismatch')
    assert.equal(err.args, [t.deposit, t.deposit - 1n])
    await reverts(openTrade(m, { deposit: t.deposit + 1n }), 'DepositMismatch')
    await reverts(openTrade(m, { salt: t.terms.salt }), 'TradeExists')
    await reverts(openTrade(m, { offerIds: [] }), 'BadSellerCount')
    await reverts(openTrade(m, { offerIds: [m.sellers[0].offerId, m.sellers[0].offerId] }), 'DuplicateOffer')
    await reverts(openTrade(m, { deadline: await latestTimestamp(chain) }), 'DeadlineNotInFuture')
    await reverts(openTrade(m, { offerIds: [999n] }), 'UnknownOffer')
    const salt = rand32()
    const tradeId = m.buyer.client.dtmc.tradeIdOf(m.buyer.address, salt)
    const ten = Array.from({ length: 10 }, () => ({ payee: m.nodes[0].address, quote: makeQuote(chain, stranger().address, tradeId, CODE_HASH, m.nodes[0].address) }))
    await reverts(openTrade(m, { salt, nodes: ten }), 'BadNodeCount')
  })
})

test("a seller's usage policy: allowed code hashes, output cap, delisting", async () => {
  const strict = await makeSeller(chain, { allowed: [keccak256('0x6002')], outputCap: 100n })
  const market = { ...m, sellers: [strict] }
  await reverts(openTrade(market), 'CodeNotAllowed')
  await reverts(openTrade(market, { codeHash: keccak256('0x6002') }), 'OutputCapNotAllowed')
  assert.ok(await m.buyer.client.cisc.isCodeAllowed(strict.offerId, keccak256('0x6002')))
  assert.not.ok(await m.buyer.client.cisc.isCodeAllowed(strict.offerId, CODE_HASH))
  await openTrade(market, { codeHash: keccak256('0x6002'), outputCap: 100n })
  await reverts(m.buyer.client.cisc.delistDataset(strict.offerId), 'NotOfferOwner')
  await strict.client.cisc.delistDataset(strict.offerId)
  await reverts(strict.client.cisc.delistDataset(strict.offerId), 'OfferInactive')
  await reverts(openTrade(market, { codeHash: keccak256('0x6002'), outputCap: 100n }), 'OfferInactive')
  const unregistered = await account(chain)
  await reverts(unregistered.client.cisc.listDataset({ tag: 't', size: 1n, unitPrice: 1n, commitment: rand32(), policy: { allowedCodeHashes: [], anyCode: true, outputCap: 1n, minOutputPrice: 0n } }), 'NotRegisteredSeller')
  await reverts(unregistered.client.cisc.registerSeller(''), 'InvalidPeerId')
  await reverts(unregistered.client.cisc.registerNode({ peerId: 'p', measurement: '0x' + '00'.repeat(32), pricePerGas: 1n, maxGas: 1n }), 'InvalidMeasurement')
  await unregistered.client.cisc.registerSeller('p')
  await reverts(unregistered.client.cisc.listDataset({ tag: 'x'.repeat(65), size: 1n, unitPrice: 1n, commitment: rand32(), policy: { allowedCodeHashes: [], anyCode: true, outputCap: 1n, minOutputPrice: 0n } }), 'InvalidTag')
  await reverts(unregistered.client.cisc.listDataset({ tag: 't', size: 1n, unitPrice: 1n, commitment: rand32(), policy: { allowedCodeHashes: Array.from({ length: 17 }, rand32), anyCode: false, outputCap: 1n, minOutputPrice: 0n } }), 'TooManyCodeHashes')
  const listing = (policy: Partial<DatasetPolicy>): Promise<unknown> => unregistered.client.cisc.listDataset({ tag: 't', size: 1n, unitPrice: 1n, commitment: rand32(), policy: { allowedCodeHashes: [], anyCode: true, outputCap: 1n, minOutputPrice: 0n, ...policy } })
  await reverts(listing({ allowedBuyers: Array.from({ length: 17 }, () => stranger().address) }), 'TooManyBuyers')
  await reverts(listing({ allowedCodeHashes: [CODE_HASH] }), 'InvalidPolicy') // "any code" and a list
  await reverts(listing({ expiresAt: await latestTimestamp(chain) }), 'InvalidPolicy') // already expired
})

test('results: not from the attested enclave, wrong task, wrong input, not committed to, twice, bad info, above the output cap', async () => {
  const m1 = await makeMarket(chain, 1, 1)
  await conserved(chain, [...new Set([...everyone(m1), ...everyone(m)])], async () => {
    const dtmc = m1.nodes[0].client.dtmc
    // One-node trades: the node's own commitment opens reveals at once.
    const t = await openTrade(m1)
    const { info, signature } = signedResult(t, 0)
    const nonce = rand32()
    await reverts(dtmc.submitResult(info, 0, signature, nonce), 'RevealTooEarly') // nothing committed yet
    await dtmc.commitResult(t.tradeId, 0, resultCommitmentOf(resultDigestOf(t.domain, info), 0, nonce))
    // signed by a key that is not node 0's attested enclave
    await reverts(dtmc.submitResult(info, 0, signDigest(stranger().signingKey, resultDigestOf(t.domain, info)), nonce), 'NotAttestedEnclave')
    const high = await reverts(dtmc.submitResult(info, 0, highS(signature), nonce), 'InvalidSignature')
    assert.ok(high)
    // another task's result, another result than the committed one, or the wrong nonce
    const other = signedResult(t, 0, { taskId: rand32() })
    await reverts(dtmc.submitResult(other.info, 0, other.signature, nonce), 'WrongTask')
    const changed = signedResult(t, 0, { resultSize: 1n })
    assert.equal((await reverts(dtmc.submitResult(changed.info, 0, changed.signature, nonce), 'CommitmentMismatch')).args, [0n])
    await reverts(dtmc.submitResult(info, 0, signature, rand32()), 'CommitmentMismatch')
    await reverts(dtmc.submitResult(info, 3, signature, nonce), 'UnknownNode')
    await reverts(dtmc.submitResult({ ...info, tradeId: rand32() }, 0, signature, nonce), 'UnknownTrade')
    // bad result info, each in a fresh trade (a node commits once)
    await reverts(submit(m1, await openTrade(m1), 0, { inputHash: rand32() }), 'InputHashMismatch')
    await reverts(submit(m1, await openTrade(m1), 0, { status: 7 }), 'InvalidResultInfo')
    await reverts(submit(m1, await openTrade(m1), 0, { status: ResultStatus.Reverted, resultSize: 5n }), 'InvalidResultInfo')
    // a result whose output fee would be above its cap (more bytes than outputCap)
    const err = await reverts(submit(m1, await openTrade(m1), 0, { resultSize: t.terms.outputCap + 1n }), 'PayoutAboveCap')
    assert.equal(err.args, [t.terms.outputCap + 1n, t.terms.outputCap])
    // nothing above changed the trade
    assert.is((await dtmc.trade(t.tradeId))!.nResults, 0)
    await dtmc.submitResult(info, 0, signature, nonce)
    assert.is((await dtmc.trade(t.tradeId))!.state, 'settled')

    // Three nodes: a reveal twice, and commitments: only the payee, once, not zero, not after they closed.
    const t3 = await openTrade(m)
    await commit(m, t3, 0)
    await reverts(reveal(m, t3, 0), 'RevealTooEarly')
    await reverts(commit(m, t3, 0), 'AlreadyCommitted')
    await reverts(m.nodes[0].client.dtmc.commitResult(t3.tradeId, 1, rand32()), 'NotNodePayee')
    await reverts(m.nodes[1].client.dtmc.commitResult(t3.tradeId, 1, '0x' + '00'.repeat(32)), 'ZeroCommitment')
    await commit(m, t3, 1)
    await commit(m, t3, 2)
    await reveal(m, t3, 0)
    await reverts(reveal(m, t3, 0), 'AlreadySubmitted')
    const view = await dtmc.trade(t3.tradeId)
    assert.is(view!.nResults, 1)
    assert.is(view!.nCommits, 3)
    assert.equal(view!.groups.map(g => g.count), [1])
    await reveal(m, t3, 1)
    await reveal(m, t3, 2)
  })
})

test('commitments close when the commit window ends; then only committed nodes reveal, and the last due reveal settles', async () => {
  await balanced(async () => {
    const t = await openTrade(m)
    await commit(m, t, 0)
    await commit(m, t, 1)
    await reverts(reveal(m, t, 0), 'RevealTooEarly')
    await increaseTime(chain, COMMIT_WINDOW)
    await reverts(commit(m, t, 2), 'CommitPhaseClosed')
    await reverts(m.nodes[2].client.dtmc.submitResult(signedResult(t, 2).info, 2, signedResult(t, 2).signature, rand32()), 'NotCommitted')
    await reveal(m, t, 0)
    await reveal(m, t, 1) // both committed results are in: the trade settles without node 2
    const view = await m.buyer.client.dtmc.trade(t.tradeId)
    assert.is(view!.state, 'settled')
    assert.equal(view!.final!.members, [0, 1])
  })
})

test('a result after the deadline: ResultAfterDeadline', async () => {
  await balanced(async () => {
    const t = await openTrade(m)
    await submit(m, t, 0)
    await increaseTime(chain, 3601)
    const err = await reverts(submit(m, t, 1), 'ResultAfterDeadline')
    assert.equal(err.args, [BigInt(t.terms.deadline)])
    await m.buyer.client.dtmc.finalize(t.tradeId)
  })
})

test('a second finalize, a withdrawal after the payouts were sent, a result after finalize', async () => {
  await balanced(async () => {
    const t = await openTrade(m)
    for (let i = 0; i < 3; i++) await commit(m, t, i)
    for (let i = 0; i < 2; i++) await reveal(m, t, i)
    await m.nodes[0].client.dtmc.finalize(t.tradeId) // two of three agree: the outcome is certain
    await reverts(m.nodes[0].client.dtmc.finalize(t.tradeId), 'AlreadyFinalized')
    await reverts(m.buyer.client.dtmc.finalize(t.tradeId), 'AlreadyFinalized')
    await reverts(m.buyer.client.dtmc.finalize(rand32()), 'UnknownTrade')
    await reverts(reveal(m, t, 2), 'AlreadyFinalized')
    // The payouts were sent with the settlement: a withdrawal finds nothing (a refused send: reentrancy.test.ts).
    for (const a of [m.buyer, m.sellers[0], m.nodes[0], m.nodes[1]]) await reverts(a.client.dtmc.withdraw(), 'NothingToWithdraw')
    const t2 = await openTrade(m)
    for (let i = 0; i < 3; i++) await submit(m, t2, i) // the last one settles
    await reverts(submit(m, t2, 0), 'AlreadyFinalized')
    await reverts(m.buyer.client.dtmc.finalize(t2.tradeId), 'AlreadyFinalized')
  })
})

test('ratings: only the buyer, once per seller, 1..5, only of a settled trade; only DTMC writes CISC', async () => {
  await balanced(async () => {
    const t = await openTrade(m)
    await reverts(m.buyer.client.dtmc.rate(t.tradeId, 0, 4), 'TradeNotSettled')
    for (let i = 0; i < 3; i++) await submit(m, t, i)
    await reverts(m.sellers[0].client.dtmc.rate(t.tradeId, 0, 5), 'NotBuyer')
    await reverts(m.nodes[0].client.dtmc.rate(t.tradeId, 0, 1), 'NotBuyer')
    await reverts(m.buyer.client.dtmc.rate(t.tradeId, 0, 0), 'InvalidScore')
    await reverts(m.buyer.client.dtmc.rate(t.tradeId, 0, 6), 'InvalidScore')
    await reverts(m.buyer.client.dtmc.rate(t.tradeId, 1, 3), 'UnknownSeller')
    await reverts(m.buyer.client.dtmc.rate(t.tradeId, 0, 3, 'x'.repeat(281)), 'CommentTooLong')
    const before = await m.buyer.client.cisc.feedbackCount(m.sellers[0].address)
    await m.buyer.client.dtmc.rate(t.tradeId, 0, 4, 'fine')
    const err = await reverts(m.buyer.client.dtmc.rate(t.tradeId, 0, 5), 'AlreadyRated')
    assert.equal(err.args, [t.tradeId, 0n])
    assert.is(await m.buyer.client.cisc.feedbackCount(m.sellers[0].address), before + 1)
  })
  // CISC takes feedback from DTMC only
  const cisc = m.buyer.client.cisc.contract.connect(m.buyer.client.signer!) as any
  try {
    await cisc.recordFeedback.staticCall(m.sellers[0].address, rand32(), 5, rand32(), 1n, 0, '')
    assert.unreachable('recordFeedback accepted a call from a buyer')
  } catch (err) {
    assert.is((err as any).revert?.name, 'NotDTMC')
  }
})

test('forged Facts (DTMC keeps only their hash): another buyer, deposit, node fee, output price, codeHash, inputHash, payee or enclave is FactsMismatch', async () => {
  const t = await openTrade(m)
  for (let i = 0; i < 3; i++) await submit(m, t, i) // settled: rate would pay nothing, finalize is refused anyway
  const f = await m.buyer.client.dtmc.factsOf(t.tradeId)
  const tuple = factsTupleOf
  const node = m.nodes[0]
  const dtmc = node.client.dtmc.contract.connect(node.client.signer!) as any
  const forged = [
    { ...f, buyer: node.address }, { ...f, deposit: f.deposit + 1n }, { ...f, nodeFee: f.nodeFee + 1n },
    { ...f, outputPrice: f.outputPrice + 1n }, { ...f, codeHash: rand32() }, { ...f, inputHash: rand32() },
    { ...f, nodes: f.nodes.map((n, i) => i === 0 ? { ...n, payee: m.sellers[0].address } : n) },
    { ...f, nodes: f.nodes.map((n, i) => i === 1 ? { ...n, enclave: node.address } : n) }
  ]
  for (const x of forged) {
    // A node posing as the buyer to rate, or anyone releasing fees to another buyer: refused before any other check.
    for (const call of [dtmc.rate.staticCall(t.tradeId, 0, 5, '', tuple(x)), dtmc.releaseUnclaimed.staticCall(t.tradeId, tuple(x))]) {
      try {
        await call
        assert.unreachable('forged Facts accepted')
      } catch (err) {
        assert.is((err as any).revert?.name, 'FactsMismatch')
      }
    }
  }
  // DTMC hashes the Facts' calldata bytes: the true Facts with a trailing word are refused too.
  const data = dtmc.interface.encodeFunctionData('rate', [t.tradeId, 0, 5, '', tuple(f)]) as string
  try {
    await chain.provider.call({ to: chain.network.contracts.DTMC, from: m.buyer.address, data: data + '00'.repeat(32) })
    assert.unreachable('trailing bytes accepted')
  } catch (err) {
    assert.is(decodeRevert((err as any).data)?.errorName, 'FactsMismatch')
  }
  const t2 = await openTrade(m)
  const f2 = await m.buyer.client.dtmc.factsOf(t2.tradeId)
  // Node 0 posing as node 1's payee to commit for it; anyone finalizing with a doubled deposit.
  const asPayeeOf1 = { ...f2, nodes: f2.nodes.map((n, i) => i === 1 ? { ...n, payee: node.address } : n) }
  for (const call of [dtmc.commitResult.staticCall(t2.tradeId, 1, rand32(), tuple(asPayeeOf1)), dtmc.finalize.staticCall(t2.tradeId, tuple({ ...f2, deposit: f2.deposit * 2n }))]) {
    try {
      await call
      assert.unreachable('forged Facts accepted')
    } catch (err) {
      assert.is((err as any).revert?.name, 'FactsMismatch')
    }
  }
})

test('admin handover is two steps', async () => {
  const next = await account(chain)
  await reverts(next.client.dtmc.acceptAdmin(), 'NotPendingAdmin')
  await chain.admin.dtmc.transferAdmin(next.address)
  assert.is(await next.client.dtmc.admin(), chain.deployer.address)
  await next.client.dtmc.acceptAdmin()
  assert.is(await next.client.dtmc.admin(), next.address)
  await reverts(chain.admin.dtmc.setMeasurement(MEASUREMENT, false), 'NotAdmin')
  await next.client.dtmc.transferAdmin(chain.deployer.address)
  await chain.admin.dtmc.acceptAdmin()
})

test.run()
