// The chain client: one nonce queue per account, reverts decoded before sending and after mining,
// wrong-chain and missing-contract errors, BDBC demands and CISC records through the typed wrappers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Transaction, Wallet, keccak256, parseEther } from 'ethers'
import { ChainClient, ChainConfigError, ChainRevertError, decodeRevert } from '../../../contracts/client.ts'
import { startChain, account, makeMarket, openTrade, submit, commit, reveal, rand32, MEASUREMENT, type Chain } from '../../../contracts/tools/market.ts'
import { createMetrics } from '../../../daemon/metrics.ts'

let chain: Chain

test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

test('concurrent sends from one client never collide on nonces', async () => {
  const a = await account(chain)
  const hashes = Array.from({ length: 25 }, rand32)
  const receipts = await Promise.all(hashes.map(h => a.client.bdbc.postDemand(h)))
  assert.equal(receipts.map(r => r.status), hashes.map(() => 1))
  const demands = await a.client.bdbc.demands({ buyer: a.address })
  assert.equal(new Set(demands.map(d => d.demandHash)), new Set(hashes))
  assert.is(await chain.provider.getTransactionCount(a.address), 25)
})

test('a revert among concurrent sends fails alone; the queue goes on', async () => {
  const a = await account(chain)
  const results = await Promise.allSettled([
    a.client.bdbc.postDemand(rand32()),
    a.client.bdbc.postDemand('0x' + '00'.repeat(32)), // ZeroDemandHash
    a.client.bdbc.postDemand(rand32()),
    a.client.dtmc.withdraw(), // NothingToWithdraw
    a.client.bdbc.postDemand(rand32())
  ])
  assert.equal(results.map(r => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
  assert.is(((results[1] as PromiseRejectedResult).reason as ChainRevertError).errorName, 'ZeroDemandHash')
  assert.is(((results[3] as PromiseRejectedResult).reason as ChainRevertError).errorName, 'NothingToWithdraw')
  assert.is(await chain.provider.getTransactionCount(a.address), 3)
})

test('a client handed a registry counts its transactions by outcome, their gas, and errors by name', async () => {
  const a = await account(chain)
  const metrics = await createMetrics()
  const client = await ChainClient.connect({ network: chain.network, signer: a.wallet.privateKey, pollingIntervalMs: 50, metrics: metrics.daemon.registry })
  chain.clients.push(client)
  // Two receipts: random hashes cost different calldata gas (a zero byte is cheaper).
  const receipts = [await client.bdbc.postDemand(rand32()), await client.bdbc.postDemand(rand32())]
  await client.dtmc.withdraw().then(() => assert.unreachable(), (e: ChainRevertError) => { assert.is(e.errorName, 'NothingToWithdraw') })
  await client.cisc.seller(a.address) // a read that succeeds counts nothing
  const text = await metrics.prometheus.metrics()
  const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1])
  assert.is(value('sdte_chain_transactions_total{contract="BDBC",method="postDemand",outcome="mined"}'), 2)
  assert.is(value('sdte_chain_gas_used_total{contract="BDBC",method="postDemand"}'), receipts.reduce((sum, r) => sum + Number(r.gasUsed), 0))
  assert.is(value('sdte_chain_transactions_total{contract="DTMC",method="withdraw",outcome="rejected"}'), 1)
  assert.is(value('sdte_chain_errors_total{contract="DTMC",method="withdraw",error="NothingToWithdraw"}'), 1)
  assert.not.match(text, /contract="CISC"/)
})

test('the nonce is re-read after another sender used the same account', async () => {
  const a = await account(chain)
  await a.client.bdbc.postDemand(rand32())
  // a second client on the same key moves the nonce behind the first one's back
  const twin = await ChainClient.connect({ network: chain.network, signer: a.wallet.privateKey })
  try {
    await twin.bdbc.postDemand(rand32())
    await twin.bdbc.postDemand(rand32())
  } finally {
    twin.close()
  }
  await a.client.bdbc.postDemand(rand32())
  assert.is(await chain.provider.getTransactionCount(a.address), 4)
})

test('a transaction that reverts after mining is decoded by replaying it', async () => {
  const m = await makeMarket(chain, 1, 1)
  const t = await openTrade(m)
  await chain.provider.send('evm_setAutomine', [false])
  try {
    // estimated (and accepted) before the deadline, mined in a block after it
    const sent = submit(m, t, 0).then(() => null, (err: unknown) => err)
    const until = Date.now() + 10_000
    while (Number(await chain.provider.send('eth_getBlockTransactionCountByNumber', ['pending'])) < 1) {
      if (Date.now() > until) throw new Error('the transaction never reached the pool')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    await chain.provider.send('evm_setNextBlockTimestamp', [Number(t.terms.deadline) + 1])
    await chain.provider.send('evm_mine', [])
    const err = await sent as ChainRevertError
    assert.instance(err, ChainRevertError)
    assert.is(err.errorName, 'ResultAfterDeadline')
    assert.equal(err.args, [BigInt(t.terms.deadline)])
    assert.ok(err.txHash !== undefined)
    assert.is((await chain.provider.getTransactionReceipt(err.txHash!))!.status, 0)
  } finally {
    await chain.provider.send('evm_setAutomine', [true])
  }
})

test('a reveal estimated before another node\'s reveal was mined still settles the trade (its gas covers the payouts)', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  for (const i of [0, 1, 2]) await commit(m, t, i)
  await reveal(m, t, 0)
  await chain.provider.send('evm_setAutomine', [false])
  let automine = false
  try {
    // Node 2's reveal is estimated and signed while it is the second of three (nothing to settle), as when
    // the nodes reveal together; it is then held back until node 1's reveal is mined, so that it settles.
    const revealed = reveal(m, t, 2).then(() => null, (err: unknown) => err)
    const until = Date.now() + 10_000
    let pending: string[] = []
    while ((pending = (await chain.provider.send('eth_getBlockByNumber', ['pending', false])).transactions).length < 1) {
      if (Date.now() > until) throw new Error('the reveal never reached the pool')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const raw = Transaction.from((await chain.provider.getTransaction(pending[0]))!).serialized
    await chain.provider.send('anvil_dropTransaction', [pending[0]])
    await chain.provider.send('evm_setAutomine', [true])
    automine = true
    await reveal(m, t, 1)
    assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.state, 'open', 'two of three revealed: the next reveal settles')
    await chain.provider.broadcastTransaction(raw)
    assert.is(await revealed, null, 'the reveal that settled was mined without a revert')
    const view = await m.buyer.client.dtmc.trade(t.tradeId)
    assert.is(view!.state, 'settled')
    assert.equal(view!.final!.members, [0, 1, 2])
  } finally {
    if (!automine) await chain.provider.send('evm_setAutomine', [true])
  }
})

test('decodeRevert: custom errors of all three contracts, Panic, Error(string), unknown', async () => {
  const { dtmc, cisc } = chain.admin
  assert.equal(decodeRevert(dtmc.iface.encodeErrorResult('NotBuyer', [rand32()]))?.errorName, 'NotBuyer')
  assert.equal(decodeRevert(cisc.iface.encodeErrorResult('OfferInactive', [3n])), { errorName: 'OfferInactive', args: [3n] })
  assert.is(decodeRevert('0x4e487b710000000000000000000000000000000000000000000000000000000000000011')?.errorName, 'Panic')
  assert.is(decodeRevert('0xdeadbeef'), undefined)
  assert.is(decodeRevert(undefined), undefined)
})

test('connect refuses a wrong chain id and a missing contract; a read-only client reads', async () => {
  try {
    await ChainClient.connect({ network: { ...chain.network, chainId: 1 } })
    assert.unreachable()
  } catch (err) {
    assert.instance(err, ChainConfigError)
    assert.match((err as Error).message, /chain 31337, the network file says 1/)
  }
  try {
    await ChainClient.connect({ network: { ...chain.network, contracts: { ...chain.network.contracts, BDBC: Wallet.createRandom().address } } })
    assert.unreachable()
  } catch (err) {
    assert.match((err as Error).message, /no BDBC contract/)
  }
  try {
    await ChainClient.connect({ network: chain.network, rpcUrl: 'http://127.0.0.1:1' })
    assert.unreachable()
  } catch (err) {
    assert.match((err as Error).message, /cannot reach/)
  }
  const ro = await ChainClient.connect({ network: chain.network })
  try {
    assert.is(await ro.dtmc.attestationRoot(), chain.root.address)
    assert.ok(await ro.dtmc.isMeasurementAccepted(MEASUREMENT))
    assert.is(await ro.dtmc.trade(rand32()), null)
    await ro.bdbc.postDemand(rand32()).then(() => assert.unreachable(), (err: Error) => assert.match(err.message, /no signer/))
  } finally {
    ro.close()
  }
})

test('CISC records through the typed wrappers: seller, node, offers by tag', async () => {
  const a = await account(chain)
  assert.is(await a.client.cisc.seller(a.address), null)
  await a.client.cisc.registerSeller('12D3KooWseller')
  await a.client.cisc.registerNode({ peerId: '12D3KooWnode', measurement: MEASUREMENT, pricePerGas: 7n, maxGas: 1000n })
  const s = await a.client.cisc.seller(a.address)
  assert.is(s!.peerId, '12D3KooWseller')
  assert.is(s!.ratingCount, 0)
  const n = await a.client.cisc.node(a.address)
  assert.equal([n!.measurement, n!.pricePerGas, n!.maxGas], [MEASUREMENT, 7n, 1000n])
  const tag = `weather-${Date.now()}`
  const allowed = [keccak256('0x01'), keccak256('0x02')]
  const { offerId } = await a.client.cisc.listDataset({ tag, size: 1234n, unitPrice: parseEther('0.000001'), commitment: rand32(), policy: { allowedCodeHashes: allowed, anyCode: false, outputCap: 64n, minOutputPrice: 5n } })
  await a.client.cisc.listDataset({ tag: 'other', size: 1n, unitPrice: 1n, commitment: rand32(), policy: { allowedCodeHashes: [], anyCode: true, outputCap: 1n, minOutputPrice: 0n } })
  const offers = await a.client.cisc.offersByTag(tag)
  assert.is(offers.length, 1)
  assert.is(offers[0].offerId, offerId)
  assert.is(offers[0].seller, a.address)
  assert.equal(offers[0].allowedCodeHashes, allowed)
  assert.ok(offers[0].active)
  assert.ok(await a.client.cisc.offerCount() > offerId)
})

test.run()
