// The seller's terms through its control API, on a real devnet with a seller daemon as a process
// (issue 15): seller_addDataset lists a policy-less dataset as "no code" in CISC, a chosen buyer list,
// maximum and expiry as given; bad terms are refused before any transaction; seller_delistDataset
// makes CISC refuse new trades on the dataset at once and shows in seller_datasets; a private dataset's
// budget and clamps reach CISC; and the epsilon a buyer's trade reserved on it, or the place in a dataset's
// maxTrades, comes back when that trade ends without the seller's data (the seller daemon ends the trade and
// releases it itself: issue 15's budget drain and maxTrades drain), or at once when its checks refused the trade
// (it declines it: a stranger's trades at a fee below the price). Last, a dataset listed before commitments were salted
// (its record without `saltedCommitment`) is neither offered nor hidden: the seller says so at start, in
// seller_datasets and when a demand of its tag comes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet, keccak256, toUtf8Bytes, id } from 'ethers'
import { LocalTestnet } from '../../../daemon/tools/testnet.ts'
import { waitFor } from '../../../daemon/tools/child-daemons.ts'
import { ChainClient } from '../../../contracts/index.ts'
import { CLAIM_WINDOW, DECLINE_NODE_CLAIM_WINDOW } from '../../../contracts/client.ts'
import { readKeyFile, rpc as anvilRpc } from '../../../contracts/devnet-accounts.ts'
import { makeQuote, rand32 } from '../../../contracts/tools/market.ts'
import { sampleDataset } from '../../../enclave/examples.ts'
import { fundedAccount } from '../../helpers/attacker.ts'
import { Store } from '../../../daemon/store.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createP2PHost } from '../../../p2p/host/index.ts'
import { offerProtocol, type RequestRefusedError } from '../../../p2p/index.ts'
import { demandHashOf, signDemand } from '../../../p2p/demand/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-seller-terms-'))
let net: LocalTestnet
let chain: ChainClient

test.before(async () => {
  net = await LocalTestnet.start({ dir, buyers: 0, sellers: 1, nodes: 0 })
  chain = await ChainClient.connect({ network: net.network, signer: Wallet.createRandom().privateKey })
})

test.after(async () => {
  chain?.close()
  await net?.stop()
  if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
})

async function errorOf (p: Promise<unknown>): Promise<{ name?: string, message: string }> {
  try {
    await p
  } catch (err) {
    return { name: (err as { data?: { name: string } }).data?.name, message: (err as Error).message }
  }
  throw new Error('expected an error')
}

test('policy-less, restricted and "any code" datasets in CISC; bad terms refused; delisting', async () => {
  const seller = net.sellers[0]
  const path = join(seller.datadir, 'data.csv')
  writeFileSync(path, sampleDataset(200, 1))
  const code = keccak256(toUtf8Bytes('some analysis'))
  const buyer = Wallet.createRandom().address

  const bare = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', { path, tag: 'terms', unitPrice: '10' })
  const bareOffer = await chain.cisc.offer(BigInt(bare.datasetId))
  assert.is(bareOffer.anyCode, false)
  assert.not.ok(await chain.cisc.isCodeAllowed(BigInt(bare.datasetId), code), 'a policy-less dataset allows no code on chain')

  const until = Math.floor(Date.now() / 1000) + 86_400
  const kept = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', {
    path, tag: 'terms', unitPrice: '10', policy: { mode: 'any', allowedBuyers: [buyer], maxTrades: 3, expiresAt: until }
  })
  const keptOffer = await chain.cisc.offer(BigInt(kept.datasetId))
  assert.equal([keptOffer.anyCode, keptOffer.buyerCount, keptOffer.maxTrades, keptOffer.expiresAt, keptOffer.active], [true, 1, 3, until, true])
  assert.ok(await chain.cisc.isBuyerAllowed(BigInt(kept.datasetId), buyer))
  assert.not.ok(await chain.cisc.isBuyerAllowed(BigInt(kept.datasetId), Wallet.createRandom().address))

  const count = await chain.cisc.offerCount()
  // A policy without its mode fails the param's served schema (-32602); what a schema cannot say (an expiry
  // already past, an empty buyer list) the seller refuses (Rejected).
  const refusals: Array<[Record<string, unknown>, string]> = [
    [{ allowedCodeHashes: [code] }, 'InvalidParams'], [{ mode: 'any', expiresAt: 1 }, 'Rejected'], [{ mode: 'any', allowedBuyers: [] }, 'Rejected']
  ]
  for (const [policy, name] of refusals) {
    const err = await errorOf(seller.rpc.call('seller_addDataset', { path, tag: 'terms', unitPrice: '10', policy }))
    assert.is(err.name, name, JSON.stringify(policy))
  }
  assert.is(await chain.cisc.offerCount(), count, 'a refused policy lists nothing')

  // Mode private: the budget in CISC's offer, the clamps in its DatasetPrivate event, any code allowed on chain.
  const priv = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', {
    path, tag: 'terms', unitPrice: '10', policy: { mode: 'private', epsilonBudget: '2500000', clamps: [{ column: 2, decimals: 1, lower: '-300', upper: 450 }] }
  })
  const privOffer = await chain.cisc.offer(BigInt(priv.datasetId))
  assert.equal([privOffer.privateMode, privOffer.anyCode, privOffer.epsilonBudget, privOffer.epsilonSpent], [true, false, 2_500_000n, 0n])
  assert.equal(await chain.cisc.clampsOf(BigInt(priv.datasetId)), [{ column: 2, decimals: 1, lower: -300n, upper: 450n }])
  assert.ok(await chain.cisc.isCodeAllowed(BigInt(priv.datasetId), code))
  for (const policy of [{ mode: 'private', clamps: [{ column: 0, decimals: 0, lower: '0', upper: '1' }] }, { mode: 'private', epsilonBudget: '1' }]) {
    assert.is((await errorOf(seller.rpc.call('seller_addDataset', { path, tag: 'terms', unitPrice: '10', policy }))).name, 'Rejected', JSON.stringify(policy))
  }

  await seller.rpc.call('seller_delistDataset', { datasetId: kept.datasetId })
  assert.is((await chain.cisc.offer(BigInt(kept.datasetId))).active, false)
  const listed = await seller.rpc.call<Array<{ datasetId: string, delisted?: boolean, policy: { mode: string, epsilonBudget?: string } }>>('seller_datasets', {})
  assert.equal(listed.map(d => [d.datasetId, d.policy.mode, d.delisted, d.policy.epsilonBudget]),
    [[bare.datasetId, 'none', false, undefined], [kept.datasetId, 'any', true, undefined], [priv.datasetId, 'private', false, '2500000']])
  assert.is((await errorOf(seller.rpc.call('seller_delistDataset', { datasetId: kept.datasetId }))).name, 'Rejected')
  assert.is((await errorOf(seller.rpc.call('seller_delistDataset', { datasetId: '999' }))).name, 'NotFound')
})

// A stranger's trades at a fee below the price (zero, and one wei short) holding a private dataset's whole budget and
// a dataset's only trade: the seller daemon refuses them at its checks and declines them at once (DTMC.declineTrade),
// long before their deadline, so the budget and the place are back for other buyers within a few ticks
// (test/attacks/zero-deposit-reservation-lock.test.ts). Before the fix they stayed until deadline + claim window.
test('trades at a fee below the price that reserve a private budget or a dataset\'s only trade are declined at once', async () => {
  const seller = net.sellers[0]
  const path = join(seller.datadir, 'data.csv')
  writeFileSync(path, sampleDataset(200, 1))
  const budget = 2_000_000n
  const { datasetId } = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', {
    path, tag: 'decline', unitPrice: '10', policy: { mode: 'private', epsilonBudget: budget.toString(), clamps: [{ column: 1, decimals: 0, lower: '0', upper: '1100' }] }
  })
  const capped = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', { path, tag: 'decline-count', unitPrice: '10', policy: { mode: 'any', maxTrades: 1 } })
  const price = 10n * BigInt(sampleDataset(200, 1).length)
  const attacker = await fundedAccount(net.network)
  try {
    const deadline = Math.floor(Date.now() / 1000) + 3600
    const zeroFee = await openAttackTrade(attacker, 'decline', [BigInt(datasetId)], budget, 0n, deadline)
    const shortFee = await openAttackTrade(attacker, 'decline-count', [BigInt(capped.datasetId)], 0n, price - 1n, deadline)
    await waitFor('the seller declines both', async () => (await chain.dtmc.trade(zeroFee))?.state === 'refunded' && (await chain.dtmc.trade(shortFee))?.state === 'refunded', 60_000, 200)
    assert.is(await chain.cisc.remainingBudget(BigInt(datasetId)), budget, 'the epsilon is back')
    assert.is((await chain.cisc.offer(BigInt(capped.datasetId))).trades, 0, 'the place is back')
    assert.ok((await chain.provider.getBlock('latest'))!.timestamp < deadline, 'before the deadline: nobody waited for it')
    for (const tradeId of [zeroFee, shortFee]) {
      const declined = await chain.dtmc.contract.queryFilter(chain.dtmc.contract.filters.TradeDeclined(tradeId), 0)
      assert.is(declined.length, 1, 'declined by the seller')
      const view = (await chain.dtmc.trade(tradeId))!
      const credited = await chain.dtmc.contract.queryFilter(chain.dtmc.contract.filters.Credited(attacker.wallet.address, tradeId), 0)
      // All of it but the node fee, which DTMC holds for DECLINE_NODE_CLAIM_WINDOW for a run claim (this attacker's node
      // never ran: no ack to show, so it comes back at a release after that window; test/attacks/decline-after-run.test.ts).
      assert.equal(credited.map(l => chain.dtmc.contract.interface.parseLog(l)!.args.amount as bigint), [view.deposit - view.nodeFee], 'the buyer got its deposit back but the node fee')
      const claims = await chain.dtmc.claimsOf(tradeId)
      assert.equal(claims.nodesHeld, [0], 'the node fee held for a run claim')
      const declinedAt = (await chain.provider.getBlock(declined[0].blockNumber))!.timestamp
      assert.is(claims.nodeUntil, declinedAt + DECLINE_NODE_CLAIM_WINDOW)
      const record = await seller.rpc.call<{ records: Array<{ role: string, state: string, reason?: string }> }>('trade_get', { tradeId })
      assert.match(record.records.find(r => r.role === 'seller')?.reason ?? '', /below the price/)
    }
  } finally {
    attacker.chain.close()
  }
})

/** Opens a trade as `attacker` on a node of its own (an attested enclave key it never uses). */
async function openAttackTrade (
  attacker: Awaited<ReturnType<typeof fundedAccount>>, tag: string, offerIds: bigint[], epsilon: bigint, sellerCap: bigint, deadline: number
): Promise<string> {
  const root = new Wallet(readKeyFile(join(net.networkPath, '..', 'attestation-root.key')))
  const salt = rand32()
  const tradeId = attacker.chain.dtmc.tradeIdOf(attacker.wallet.address, salt)
  const codeHash = rand32()
  await attacker.chain.dtmc.openTrade({
    salt, tagHash: id(tag), codeHash, deadline, sellerCap, nodePrice: 1n, nodeCap: 1000n, outputPrice: 10n, outputCap: 16n, gasCap: 1000n, epsilon, offerIds,
    nodes: [{ payee: attacker.wallet.address, quote: makeQuote({ root, network: net.network }, Wallet.createRandom().address, tradeId, codeHash, attacker.wallet.address, net.network.measurements[0]) }]
  })
  return tradeId
}

// Last in the file: it moves the chain's clock past a trade's deadline and the claim window (3 days).
test('trades that reserved a private dataset\'s whole budget or a dataset\'s only trade and never got the data give them back through the seller daemon', async () => {
  const seller = net.sellers[0]
  const path = join(seller.datadir, 'data.csv')
  const budget = 2_000_000n
  const { datasetId } = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', {
    path, tag: 'drain', unitPrice: '10', policy: { mode: 'private', epsilonBudget: budget.toString(), clamps: [{ column: 1, decimals: 0, lower: '0', upper: '1100' }] }
  })
  const offerId = BigInt(datasetId)
  const capped = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', { path, tag: 'drain-count', unitPrice: '10', policy: { mode: 'any', maxTrades: 1 } })
  const cappedId = BigInt(capped.datasetId)
  // The attacker opens a trade with all of it on a node of its own (an attested enclave key it never uses), and one
  // with the capped dataset's only trade.
  const attacker = await fundedAccount(net.network)
  try {
    const root = new Wallet(readKeyFile(join(net.networkPath, '..', 'attestation-root.key')))
    const deadline = Math.floor(Date.now() / 1000) + 600
    const open = async (tag: string, offerIds: bigint[], epsilon: bigint): Promise<string> => {
      const salt = rand32()
      const tradeId = attacker.chain.dtmc.tradeIdOf(attacker.wallet.address, salt)
      const codeHash = rand32()
      const enclave = Wallet.createRandom()
      await attacker.chain.dtmc.openTrade({
        salt, tagHash: id(tag), codeHash, deadline, sellerCap: 10n * BigInt(sampleDataset(200, 1).length), nodePrice: 1n, nodeCap: 1000n,
        outputPrice: 10n, outputCap: 16n, gasCap: 1000n, epsilon, offerIds,
        nodes: [{ payee: attacker.wallet.address, quote: makeQuote({ root, network: net.network }, enclave.address, tradeId, codeHash, attacker.wallet.address, net.network.measurements[0]) }]
      })
      return tradeId
    }
    const tradeId = await open('drain', [offerId], budget)
    const countedId = await open('drain-count', [cappedId], 0n)
    assert.is(await chain.cisc.remainingBudget(offerId), 0n, 'reserved')
    assert.is((await chain.cisc.offer(cappedId)).trades, 1, 'counted')
    // Past the deadline nobody else ends it: the seller daemon finalizes (a refund: no result) ...
    await anvilRpc(net.network.rpcUrl, 'evm_increaseTime', [deadline - (await chain.provider.getBlock('latest'))!.timestamp + 10])
    await anvilRpc(net.network.rpcUrl, 'evm_mine', [])
    await waitFor('the seller ends the trades', async () => (await chain.dtmc.trade(tradeId))?.state === 'refunded' && (await chain.dtmc.trade(countedId))?.state === 'refunded', 60_000, 200)
    assert.is(await chain.cisc.remainingBudget(offerId), 0n, 'still reserved during the claim window')
    assert.is((await chain.cisc.offer(cappedId)).trades, 1, 'still counted during the claim window')
    // ... and after the claim window releases the fee to the buyer and the epsilon to its budget.
    await anvilRpc(net.network.rpcUrl, 'evm_increaseTime', [CLAIM_WINDOW + 10])
    await anvilRpc(net.network.rpcUrl, 'evm_mine', [])
    await waitFor('the budget back', async () => await chain.cisc.remainingBudget(offerId) === budget, 60_000, 200)
    assert.equal((await chain.dtmc.claimsOf(tradeId)).held, [])
    // Before the fix the count stayed at 1, and the dataset was dead for every other buyer.
    await waitFor('the count back', async () => (await chain.cisc.offer(cappedId)).trades === 0, 60_000, 200)
    assert.equal((await chain.dtmc.claimsOf(countedId)).held, [])
  } finally {
    attacker.chain.close()
  }
})

test('a dataset listed with an unsalted commitment (an older version) is said so and not offered; restarted as it was', async () => {
  let seller = net.sellers[0]
  const path = join(seller.datadir, 'old.csv')
  writeFileSync(path, sampleDataset(100, 7))
  const listed = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', { path, tag: 'unsalted', unitPrice: '10', policy: { mode: 'any' } })

  // A buyer's host soliciting a posted demand of the tag (checked as a gossiped one: posted to BDBC, asked by its buyer peer).
  const host = await createP2PHost({ bootstrap: [net.relay.info.addresses[0]] }, { privateKey: await generateKeyPair('Ed25519') })
  await host.start()
  const asker = await fundedAccount(net.network)
  const solicit = async (): Promise<string> => {
    const d = signDemand({
      chainId: net.network.chainId, dtmc: net.network.contracts.DTMC.toLowerCase(), buyerPeer: host.peerId, tag: 'unsalted',
      codeHash: keccak256(toUtf8Bytes('an analysis')), nodes: 1, sellers: 1, sellerPrice: 20n, sellerCap: 10n ** 9n, nodePrice: 1n, nodeCap: 10n ** 8n,
      outputPrice: 10n, outputCap: 1024n, expiresAt: Math.floor(Date.now() / 1000) + 120, tradeSeconds: 600
    }, { address: asker.wallet.address, privateKey: asker.wallet.privateKey })
    const { signature: _s, ...unsigned } = d
    await asker.chain.bdbc.postDemand(demandHashOf(unsigned))
    await host.connect(seller.info.addresses[0])
    try {
      const offer = await offerProtocol(host).solicit(seller.info.peerId, d)
      return offer.kind
    } catch (err) {
      return (err as RequestRefusedError).reason ?? String(err)
    }
  }
  try {
    assert.is(await solicit(), 'seller', 'a salted listing is offered')

    // The record as an older version left it: no saltedCommitment (its commitment was then the file's plain hash).
    await seller.stop('SIGTERM')
    const store = await Store.open(seller.datadir)
    const record = await store.datasets.get(listed.datasetId) as Record<string, unknown>
    assert.is(record.saltedCommitment, true)
    delete record.saltedCommitment
    await store.datasets.put(listed.datasetId, record)
    await store.close()
    seller = await net.add(seller.name, 'seller', {})

    assert.match(seller.output(), /warn +sdte:seller the dataset was listed with an unsalted commitment .*delist it and list it again/, 'said at start')
    const shown = (await seller.rpc.call<Array<{ datasetId: string, saltedCommitment?: boolean }>>('seller_datasets')).find(x => x.datasetId === listed.datasetId)
    assert.ok(shown !== undefined && shown.saltedCommitment === undefined, `seller_datasets shows it unsalted: ${JSON.stringify(shown)}`)
    assert.is(await solicit(), 'NoOffer', 'an unsalted listing is not offered')
    assert.match(seller.output(), /no offer for a demand of this dataset's tag .*unsalted commitment/, 'and the seller says why')
  } finally {
    asker.chain.close()
    await host.stop()
  }
})

test.run()
