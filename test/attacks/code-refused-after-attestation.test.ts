// Attack (on the buyer's trades, by a registered node whose enclave attests but whose host refuses the buyer's code):
// the buyer attested its candidates, then sent the code to the n fastest valid ones all at once; one refusal threw out
// of the step, the trade stayed `attesting`, and every later look attested again and sent new code envelopes, which
// the honest enclaves refused too (an enclave keeps the first code delivered to its task). The trade never ended: one
// registration stalled every trade the node was a candidate of.
// The defence: a node that does not take the code is struck from the trade like one whose attestation failed, the
// code envelope sent to each task is kept (sent again as is, the enclave's harmless retry), the others' code stays
// delivered, and the buyer collects offers again; a trade found still `attesting` after its demand expired fails.
//
// Real parts: anvil, a relay, a buyer, a seller and node daemons as separate processes. The attacker is a libp2p host
// with an account of its own registered in CISC as a node; its quotes are genuine: it relays each attestation request
// to an honest node daemon (node1, which does not offer on this demand: its price is above the demand's) and returns
// that enclave's quote, as a node running a real enclave behind a host of its own would. It refuses every code
// delivery. The demand asks for 2 nodes; node2 is the only honest one offering at first, so the attacker is certain to
// be chosen; a third node starts once the attacker is struck.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getBytes } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { DEFAULT_ATTEST_TIMEOUT_MS } from '../../config/daemon-defaults.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { RefuseRequest, attestProtocol, datasetKey, offerProtocol, signOffer } from '../../p2p/index.ts'
import { attackerHost, attackTestnet, fundedAccount, listenForDemands } from '../helpers/attacker.ts'

const TAG = 'attack-code-refused'
const dataset = sampleDataset(300, 53)
/** Long enough for the third node to start and be found by the window's solicitation on a loaded machine. */
const OFFER_WINDOW_MS = 8_000
const TRADE = { offerWindowMs: OFFER_WINDOW_MS }
/** The demand's price per gas; node1 asks more, so only the attacker and node2 offer at first. */
const NODE_PRICE = 1n

const bench = attackTestnet(test, 'code-refused', {
  sellers: 1,
  nodes: 2,
  nodeConfig: (i) => ({ trade: i === 0 ? { ...TRADE, nodePricePerGas: String(NODE_PRICE + 1n) } : TRADE }),
  config: { trade: TRADE }
})

interface BuyerRecord {
  role: string, state: string, reason?: string, timeline: Array<{ state: string, note?: string }>, rejected?: Array<{ peerId: string, why: string }>,
  chosenNodes?: Array<{ peerId: string }>, unattestedPeers?: string[], unattestedAccounts?: string[], unansweredPeers?: string[]
}

async function buyerRecord (tradeId: string): Promise<BuyerRecord> {
  const v = await bench.net.buyers[0].rpc.call<{ records: BuyerRecord[] }>('trade_get', { tradeId })
  return v.records.find(r => r.role === 'buyer')!
}

test('a node that attests but refuses the code does not stall the trade: it is struck, and the trade goes on without it', async () => {
  const net = bench.net
  const [quoteSource, honest] = net.nodes
  const seller = net.sellers[0]
  writeFileSync(join(seller.datadir, 'data.csv'), dataset)
  await seller.rpc.call('seller_addDataset', { path: join(seller.datadir, 'data.csv'), tag: TAG, unitPrice: '5', policy: { mode: 'any' } })

  // The attacker: registered as a node for its own peer id, offering on every demand, relaying attestations.
  const attacker = await attackerHost(net)
  bench.hosts.push(attacker)
  const account = await fundedAccount(net.network)
  await account.chain.cisc.registerNode({ peerId: attacker.peerId, measurement: net.network.measurements[0], pricePerGas: NODE_PRICE, maxGas: 10n ** 12n })
  account.chain.close()
  await attacker.connect(quoteSource.info.addresses[0])
  const attest = attestProtocol(attacker)
  let relayed = 0
  let codeRefused = 0
  await attest.start({
    onAttest: async (_buyer, req) => {
      const reply = await attest.attest(quoteSource.info.peerId, { tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce })
      relayed++
      return reply
    },
    onCode: async () => {
      codeRefused++
      throw new RefuseRequest('Busy', 'not today')
    }
  })
  listenForDemands(attacker, (d) => {
    const offer = signOffer({ type: 'offer', demandId: d.demandId, kind: 'node', account: account.wallet.address.toLowerCase(), measurement: net.network.measurements[0].toLowerCase() },
      { chainId: d.chainId, dtmc: d.dtmc, peerId: attacker.peerId }, account.wallet.privateKey)
    void offerProtocol(attacker).sendOffer(d.buyerPeer, offer).catch(() => {})
  })
  await waitFor('DHT announcement', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG) })).length >= 1, 30_000, 300)

  const { tradeId } = await net.buyers[0].rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: 2, sellers: 1,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: String(NODE_PRICE), nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: 600
  })
  // Both offers are taken (they are the only node offers), both quotes are valid, the attacker refuses its code.
  const struck = await waitFor('the attacker\'s refusal to take the code judged', async () => {
    const r = await buyerRecord(tradeId)
    return (r.unattestedPeers?.includes(attacker.peerId) === true || r.state === 'failed') ? r : undefined
  }, 90_000, 200).catch(async (err: Error) => {
    const r = await buyerRecord(tradeId)
    throw new Error(`${err.message}; the trade is ${r.state} after ${r.timeline.filter(e => e.state === 'attesting').length} attestation rounds, ` +
      `${relayed} quotes relayed, ${codeRefused} code deliveries refused`)
  })
  assert.is.not(struck.state, 'failed', `the trade failed on one node refusing its code: ${struck.reason ?? ''}`)
  assert.ok(relayed >= 1 && codeRefused >= 1, `the attacker's quote was taken and its code sent: ${relayed} relayed, ${codeRefused} refused`)
  assert.ok(struck.rejected?.some(x => x.peerId === attacker.peerId && x.why.includes('code')), `the refusal names the code delivery: ${JSON.stringify(struck.rejected)}`)
  assert.equal(struck.unattestedAccounts, [account.wallet.address.toLowerCase()], 'the attacker\'s account is struck too')

  // A third node comes online; the honest node2 keeps the code it already took (the same envelope again is a retry).
  const third = await net.add('node3', 'node', {}, { config: { trade: TRADE } })
  const done = await waitFor('the trade to end', async () => {
    const r = await buyerRecord(tradeId)
    return ['delivered', 'failed', 'refunded'].includes(r.state) ? r : undefined
  }, 120_000, 250)
  assert.is(done.state, 'delivered', `${done.reason ?? ''} ${JSON.stringify(done.rejected)}`)
  assert.equal(done.chosenNodes?.map(n => n.peerId).sort(), [honest.info.peerId, third.info.peerId].sort(), 'the two honest nodes ran it')
  assert.not.ok(done.rejected?.some(x => x.peerId === honest.info.peerId), `the honest node that took the code first was not refused later: ${JSON.stringify(done.rejected)}`)
  const result = await net.buyers[0].rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  assert.ok(result.verified)
  assert.equal(getBytes(result.result), referenceOutput('Stats', [dataset]))
  assert.is(codeRefused, 1, 'the struck attacker was not sent the code again')
  // Struck from that trade only: it would offer on the next test's demand too.
  await attacker.stop()
})

// The same attacker's other way to stall: it relays the quotes of a node that offers too (node2) and takes the code
// (passing it on to node2, which gets the very envelope the buyer kept for that task). The buyer had two valid
// quotes of one enclave among its candidates and chose both; DTMC refused the escrow (DuplicateEnclave), and the
// buyer attested, delivered and sent openTrade again at every look, until the demand expired. Now a second quote of an
// enclave already attested is refused (the slower: a relay answers after the enclave it relays), its node struck.
test('a node relaying the quotes of another offering node does not stall the trade with a duplicate enclave', async () => {
  const net = bench.net
  const [, relayedNode, third] = net.nodes
  const attacker = await attackerHost(net)
  bench.hosts.push(attacker)
  const account = await fundedAccount(net.network)
  await account.chain.cisc.registerNode({ peerId: attacker.peerId, measurement: net.network.measurements[0], pricePerGas: NODE_PRICE, maxGas: 10n ** 12n })
  account.chain.close()
  await attacker.connect(relayedNode.info.addresses[0])
  const attest = attestProtocol(attacker)
  let relayed = 0
  let codeTaken = 0
  await attest.start({
    onAttest: async (_buyer, req) => {
      const reply = await attest.attest(relayedNode.info.peerId, { tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce })
      relayed++
      return reply
    },
    onCode: async (_buyer, req) => {
      codeTaken++
      await attest.sendCode(relayedNode.info.peerId, { taskId: req.taskId, envelope: req.envelope, salt: req.salt, signature: req.signature }).catch(() => {})
    }
  })
  listenForDemands(attacker, (d) => {
    const offer = signOffer({ type: 'offer', demandId: d.demandId, kind: 'node', account: account.wallet.address.toLowerCase(), measurement: net.network.measurements[0].toLowerCase() },
      { chainId: d.chainId, dtmc: d.dtmc, peerId: attacker.peerId }, account.wallet.privateKey)
    void offerProtocol(attacker).sendOffer(d.buyerPeer, offer).catch(() => {})
  })
  // Three nodes asked for, three offering (node2, node3, the attacker): the attacker is certain to be a candidate.
  const { tradeId } = await net.buyers[0].rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: 3, sellers: 1,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: String(NODE_PRICE), nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: 600
  })
  const struck = await waitFor('the duplicate enclave judged', async () => {
    const r = await buyerRecord(tradeId)
    return ((r.unattestedPeers?.length ?? 0) > 0 || ['failed', 'escrowed', 'delivered'].includes(r.state)) ? r : undefined
  }, 120_000, 200)
  assert.ok(relayed >= 1, 'the attacker relayed a quote')
  assert.equal(struck.unattestedPeers, [attacker.peerId], `the relaying peer is struck (its quote came after the enclave's own): ${struck.state} ${struck.reason ?? ''} ${JSON.stringify(struck.rejected)}`)
  assert.ok(struck.rejected?.some(x => x.peerId === attacker.peerId && x.why.includes(relayedNode.info.peerId)), `the refusal names the node whose enclave it is: ${JSON.stringify(struck.rejected)}`)
  assert.is(codeTaken, 0, 'the relaying peer was not sent the code')

  const fourth = await net.add('node4', 'node', {}, { config: { trade: TRADE } })
  const done = await waitFor('the trade to end', async () => {
    const r = await buyerRecord(tradeId)
    return ['delivered', 'failed', 'refunded'].includes(r.state) ? r : undefined
  }, 120_000, 250)
  assert.is(done.state, 'delivered', `${done.reason ?? ''} ${JSON.stringify(done.rejected)}`)
  assert.equal(done.chosenNodes?.map(n => n.peerId).sort(), [relayedNode.info.peerId, third.info.peerId, fourth.info.peerId].sort(), 'the three honest nodes ran it')
  const result = await net.buyers[0].rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  assert.ok(result.verified)
  assert.equal(getBytes(result.result), referenceOutput('Stats', [dataset]))
})

// The strike's false positive: a node that misses one attestation (a timeout, as an honest node under load would)
// was struck like a forged one and lost the trade. Now a missed answer is spared once (struck at a second miss);
// a refusal or a bad quote is struck at once as before. Here the last node (relaying node1's genuine quotes, as a
// real enclave behind its host) answers its first attestation after the buyer's timeout, then at once.
test('a node that misses one attestation is given another round, not struck', async () => {
  const net = bench.net
  const [quoteSource, node2, node3, node4] = net.nodes
  const slow = await attackerHost(net)
  bench.hosts.push(slow)
  const account = await fundedAccount(net.network)
  await account.chain.cisc.registerNode({ peerId: slow.peerId, measurement: net.network.measurements[0], pricePerGas: NODE_PRICE, maxGas: 10n ** 12n })
  account.chain.close()
  await slow.connect(quoteSource.info.addresses[0])
  const attest = attestProtocol(slow)
  let asked = 0
  await attest.start({
    onAttest: async (_buyer, req) => {
      // The first request waits past the buyer's attestation timeout (trade.attestTimeoutMs, 10 s by default).
      if (asked++ === 0) await new Promise(resolve => setTimeout(resolve, DEFAULT_ATTEST_TIMEOUT_MS + 1_000))
      return await attest.attest(quoteSource.info.peerId, { tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce })
    },
    onCode: async () => {}
  })
  listenForDemands(slow, (d) => {
    const offer = signOffer({ type: 'offer', demandId: d.demandId, kind: 'node', account: account.wallet.address.toLowerCase(), measurement: net.network.measurements[0].toLowerCase() },
      { chainId: d.chainId, dtmc: d.dtmc, peerId: slow.peerId }, account.wallet.privateKey)
    void offerProtocol(slow).sendOffer(d.buyerPeer, offer).catch(() => {})
  })
  // Four nodes asked for, four offering: the slow one is certain to be a candidate, and needed.
  const { tradeId } = await net.buyers[0].rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: 4, sellers: 1,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: String(NODE_PRICE), nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: 600
  })
  const missed = await waitFor('the missed attestation judged', async () => {
    const r = await buyerRecord(tradeId)
    return (r.rejected?.some(x => x.peerId === slow.peerId) === true || r.state === 'failed') ? r : undefined
  }, 90_000, 200)
  assert.ok(missed.rejected?.some(x => x.peerId === slow.peerId && x.why.startsWith('attestation failed')), `the missed answer is on record: ${JSON.stringify(missed.rejected)}`)
  assert.not.ok(missed.unattestedPeers?.includes(slow.peerId), 'a node that missed one answer is not struck')
  assert.ok(missed.unansweredPeers?.includes(slow.peerId), 'it is noted, to be struck at a second miss')
  // The next round attests it again; it answers, takes the code and the trade opens with it.
  const chosen = await waitFor('the escrow', async () => {
    const r = await buyerRecord(tradeId)
    return (r.chosenNodes !== undefined || r.state === 'failed') ? r : undefined
  }, 90_000, 200)
  assert.is.not(chosen.state, 'failed', chosen.reason)
  assert.equal(chosen.chosenNodes?.map(n => n.peerId).sort(), [node2.info.peerId, node3.info.peerId, node4.info.peerId, slow.peerId].sort(), 'the slow node is chosen in the next round')
  assert.is(asked, 2, 'attested twice')
  await slow.stop()
})

test.run()
