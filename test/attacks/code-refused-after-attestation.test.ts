// Attacks on the buyer's attestation step by registered nodes, and one false positive of the defence.
//
// (1) A node whose enclave attests but whose host refuses the buyer's code: the buyer sent the code to its n chosen
// nodes at once, one refusal threw out of the step, the trade stayed `attesting`, and every later look attested again
// and sent new code envelopes, which the honest enclaves refused too (an enclave keeps the first code of its task).
// The trade never ended. Now a node that does not take the code is struck like one whose attestation failed, the
// envelope sent to each task is kept (sent again as is: the enclave's harmless retry), and the buyer collects again.
// (2) A node relaying the attestation of another offering node's enclave as its own: the buyer held two valid quotes
// of one enclave, chose both, and DTMC refused the escrow (DuplicateEnclave) at every look. Now a quote names the
// node account that runs the enclave (reportData's operator): the relayed quote does not verify for the relayer.
// (3) The defence's false positive: a node that misses one attestation (a timeout, as an honest node under load would)
// was struck like a forged one. Now a missed answer is spared once per account, struck at a second miss.
// (4) A host handing over a task key of its own with its enclave's genuine quote, to read the code.
// (5) The spare's bound: a node that never answers is spared once, then struck at its second miss (not spared again
// and again, which would let one silent node hold every round of a trade up by the attestation timeout).
//
// Real parts: anvil, a relay, a buyer, a seller and node daemons as separate processes. Each attacker is a libp2p host
// with an account of its own registered in CISC as a node, offering on every demand; (1), (3) and (4) run a real enclave
// of their own (this build, the testnet's attestation root, the attacker's account as operator), as a node with a
// genuine enclave behind a host of its own would.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getBytes, hexlify } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { DEFAULT_ATTEST_TIMEOUT_MS } from '../../config/daemon-defaults.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { generateKeyPair } from '../../enclave/index.ts'
import { openCodeEnvelope } from '../../enclave/crypto.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { RefuseRequest, attestProtocol, datasetKey, offerProtocol, signOffer, type AttestHandlers, type P2PHost } from '../../p2p/index.ts'
import { attackerEnclave, attackerHost, attackTestnet, fundedAccount, listenForDemands } from '../helpers/attacker.ts'

const TAG = 'attack-code-refused'
const dataset = sampleDataset(300, 53)
/** Long enough for a node started mid-trade to be found by the window's solicitation on a loaded machine. */
const OFFER_WINDOW_MS = 8_000
const TRADE = { offerWindowMs: OFFER_WINDOW_MS }
/** The demands' price per gas (the nodes' default price is below it). */
const NODE_PRICE = 1n

const bench = attackTestnet(test, 'code-refused', { sellers: 1, nodes: 1, config: { trade: TRADE } })

interface BuyerRecord {
  role: string, state: string, reason?: string, timeline: Array<{ state: string, note?: string }>, rejected?: Array<{ peerId: string, why: string }>,
  chosenNodes?: Array<{ peerId: string }>, unattestedPeers?: string[], unattestedAccounts?: string[], unansweredAccounts?: string[]
}

async function buyerRecord (tradeId: string): Promise<BuyerRecord> {
  const v = await bench.net.buyers[0].rpc.call<{ records: BuyerRecord[] }>('trade_get', { tradeId })
  return v.records.find(r => r.role === 'buyer')!
}

async function postDemand (nodes: number): Promise<string> {
  const { tradeId } = await bench.net.buyers[0].rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes, sellers: 1,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: String(NODE_PRICE), nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: 600
  })
  return tradeId
}

/** A registered node of the attacker's: a host serving `/sdte/attest/1` with `handlers`, offering on every demand. */
async function registeredNode (handlers: (host: P2PHost, account: string) => AttestHandlers): Promise<{ host: P2PHost, account: string }> {
  const net = bench.net
  const host = await attackerHost(net)
  bench.hosts.push(host)
  const { wallet, chain } = await fundedAccount(net.network)
  await chain.cisc.registerNode({ peerId: host.peerId, measurement: net.network.measurements[0], pricePerGas: NODE_PRICE, maxGas: 10n ** 12n })
  chain.close()
  const account = wallet.address.toLowerCase()
  await attestProtocol(host).start(handlers(host, account))
  listenForDemands(host, (d) => {
    const offer = signOffer({ type: 'offer', demandId: d.demandId, kind: 'node', account, measurement: net.network.measurements[0].toLowerCase() },
      { chainId: d.chainId, dtmc: d.dtmc, peerId: host.peerId }, wallet.privateKey)
    void offerProtocol(host).sendOffer(d.buyerPeer, offer).catch(() => {})
  })
  return { host, account }
}

async function tradeEnd (tradeId: string): Promise<BuyerRecord> {
  return await waitFor('the trade to end', async () => {
    const r = await buyerRecord(tradeId)
    return ['delivered', 'failed', 'refunded'].includes(r.state) ? r : undefined
  }, 120_000, 250)
}

test('a node that attests but refuses the code does not stall the trade: it is struck, and the trade goes on without it', async () => {
  const net = bench.net
  const [honest] = net.nodes
  const seller = net.sellers[0]
  writeFileSync(join(seller.datadir, 'data.csv'), dataset)
  await seller.rpc.call('seller_addDataset', { path: join(seller.datadir, 'data.csv'), tag: TAG, unitPrice: '5', policy: { mode: 'any' } })
  await waitFor('DHT announcement', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG) })).length >= 1, 30_000, 300)

  let attested = 0
  let codeRefused = 0
  let enclave: Awaited<ReturnType<typeof attackerEnclave>> | undefined
  const attacker = await registeredNode((_host, account) => ({
    onAttest: async (_buyer, req) => {
      enclave ??= await attackerEnclave(net, account)
      const r = await enclave.attest({ tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce })
      attested++
      return { type: 'quote', quote: r.quote, enclavePublicKey: r.enclavePublicKey }
    },
    onCode: async () => {
      codeRefused++
      throw new RefuseRequest('NotToday', 'this node takes no code')
    }
  }))
  try {
    // Two nodes asked for, the honest node and the attacker offering: both taken, both quotes valid.
    const tradeId = await postDemand(2)
    const struck = await waitFor('the attacker\'s refusal to take the code judged', async () => {
      const r = await buyerRecord(tradeId)
      return (r.unattestedPeers?.includes(attacker.host.peerId) === true || r.state === 'failed') ? r : undefined
    }, 90_000, 200).catch(async (err: Error) => {
      const r = await buyerRecord(tradeId)
      throw new Error(`${err.message}; the trade is ${r.state} after ${attested} attestations and ${codeRefused} code deliveries refused`)
    })
    assert.is.not(struck.state, 'failed', `the trade failed on one node refusing its code: ${struck.reason ?? ''}`)
    assert.ok(attested >= 1 && codeRefused >= 1, `the attacker's quote was taken and its code sent: ${attested} attested, ${codeRefused} refused`)
    assert.ok(struck.rejected?.some(x => x.peerId === attacker.host.peerId && x.why.startsWith('code delivery failed')), `the refusal names the code delivery: ${JSON.stringify(struck.rejected)}`)
    assert.equal(struck.unattestedAccounts, [attacker.account], 'the attacker\'s account is struck too')

    // A second honest node comes online; the first keeps the code it already took (the same envelope again is a retry).
    const second = await net.add('node2', 'node', {}, { config: { trade: TRADE } })
    const done = await tradeEnd(tradeId)
    assert.is(done.state, 'delivered', `${done.reason ?? ''} ${JSON.stringify(done.rejected)}`)
    assert.equal(done.chosenNodes?.map(n => n.peerId).sort(), [honest.info.peerId, second.info.peerId].sort(), 'the two honest nodes ran it')
    assert.not.ok(done.rejected?.some(x => x.peerId === honest.info.peerId), `the honest node that took the code first was not refused later: ${JSON.stringify(done.rejected)}`)
    const result = await net.buyers[0].rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
    assert.ok(result.verified)
    assert.equal(getBytes(result.result), referenceOutput('Stats', [dataset]))
    assert.is(codeRefused, 1, 'the struck attacker was not sent the code again')
  } finally {
    // Struck from that trade only: it would offer on the next test's demand too.
    await attacker.host.stop()
    await enclave?.close()
  }
})

test('a node relaying the quotes of another offering node is refused: a quote names the node account that runs the enclave', async () => {
  const net = bench.net
  const [relayed, second] = net.nodes
  let relayedCount = 0
  let codeTaken = 0
  const relayer = await registeredNode((host) => {
    const attest = attestProtocol(host)
    return {
      onAttest: async (_buyer, req) => {
        const reply = await attest.attest(relayed.info.peerId, { tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce })
        relayedCount++
        return reply
      },
      onCode: async () => { codeTaken++ }
    }
  })
  try {
    await relayer.host.connect(relayed.info.addresses[0])
    // Three nodes asked for, three offering (node1, node2, the relayer): the relayer is certain to be a candidate.
    const tradeId = await postDemand(3)
    const struck = await waitFor('the relayed quote judged', async () => {
      const r = await buyerRecord(tradeId)
      return ((r.unattestedPeers?.length ?? 0) > 0 || ['failed', 'escrowed', 'delivered'].includes(r.state)) ? r : undefined
    }, 120_000, 200)
    assert.ok(relayedCount >= 1, 'the relayer handed over node1\'s quote')
    assert.equal(struck.unattestedPeers, [relayer.host.peerId], `only the relaying peer is struck: ${struck.state} ${struck.reason ?? ''} ${JSON.stringify(struck.rejected)}`)
    assert.equal(struck.unattestedAccounts, [relayer.account], 'and its account')
    assert.ok(struck.rejected?.some(x => x.peerId === relayer.host.peerId && x.why.startsWith('QuoteSignatureError')), `the relayed quote does not verify for the relayer: ${JSON.stringify(struck.rejected)}`)
    assert.not.ok(struck.rejected?.some(x => x.peerId === relayed.info.peerId), 'the node whose enclave it is was not refused')
    assert.is(codeTaken, 0, 'the relaying peer was not sent the code')

    const third = await net.add('node3', 'node', {}, { config: { trade: TRADE } })
    const done = await tradeEnd(tradeId)
    assert.is(done.state, 'delivered', `${done.reason ?? ''} ${JSON.stringify(done.rejected)}`)
    assert.equal(done.chosenNodes?.map(n => n.peerId).sort(), [relayed.info.peerId, second.info.peerId, third.info.peerId].sort(), 'the three honest nodes ran it')
    const result = await net.buyers[0].rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
    assert.ok(result.verified)
    assert.equal(getBytes(result.result), referenceOutput('Stats', [dataset]))
  } finally {
    await relayer.host.stop()
  }
})

test('a node that misses one attestation is given another round, not struck', async () => {
  const net = bench.net
  const [node1, node2, node3] = net.nodes
  let asked = 0
  let enclave: Awaited<ReturnType<typeof attackerEnclave>> | undefined
  const slow = await registeredNode((_host, account) => ({
    onAttest: async (_buyer, req) => {
      enclave ??= await attackerEnclave(net, account)
      // The first request waits past the buyer's attestation timeout (trade.attestTimeoutMs, the default).
      if (asked++ === 0) await new Promise(resolve => setTimeout(resolve, DEFAULT_ATTEST_TIMEOUT_MS + 1_000))
      const r = await enclave.attest({ tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce })
      return { type: 'quote', quote: r.quote, enclavePublicKey: r.enclavePublicKey }
    },
    onCode: async () => {}
  }))
  try {
    // Four nodes asked for, four offering: the slow one is certain to be a candidate, and needed.
    const tradeId = await postDemand(4)
    const missed = await waitFor('the missed attestation judged', async () => {
      const r = await buyerRecord(tradeId)
      return (r.unansweredAccounts?.includes(slow.account) === true || r.unattestedPeers?.includes(slow.host.peerId) === true || r.state === 'failed') ? r : undefined
    }, 90_000, 200).catch(async (err: Error) => {
      const r = await buyerRecord(tradeId)
      throw new Error(`${err.message}; the trade is ${r.state} (${r.timeline.map(e => `${e.state}${e.note !== undefined ? `: ${e.note}` : ''}`).join('; ')}), ` +
        `asked ${asked} times, ${JSON.stringify(r.rejected)}`)
    })
    assert.ok(missed.rejected?.some(x => x.peerId === slow.host.peerId && x.why.startsWith('attestation failed')), `the missed answer is on record: ${JSON.stringify(missed.rejected)}`)
    assert.not.ok(missed.unattestedPeers?.includes(slow.host.peerId), 'a node that missed one answer is not struck')
    assert.ok(missed.unansweredAccounts?.includes(slow.account), 'its account is noted, to be struck at a second miss')
    // The next round attests it again; it answers, takes the code, and the trade opens with it.
    const chosen = await waitFor('the escrow', async () => {
      const r = await buyerRecord(tradeId)
      return (r.chosenNodes !== undefined || r.state === 'failed') ? r : undefined
    }, 90_000, 200)
    assert.is.not(chosen.state, 'failed', chosen.reason)
    assert.equal(chosen.chosenNodes?.map(n => n.peerId).sort(), [node1.info.peerId, node2.info.peerId, node3.info.peerId, slow.host.peerId].sort(), 'the slow node is chosen in the next round')
    assert.ok(asked >= 2, 'attested again')
  } finally {
    await slow.host.stop()
    await enclave?.close()
  }
})

// (4) A host that hands over a task key of its own with its enclave's genuine quote: the quote signs only the enclave's
// address, and the buyer encrypted the code to whatever key came with it, so the host read the buyer's code (and a
// seller's data key the same way). Now the key must be the quote's enclave key (verifyQuote enclavePublicKey).
test('a host handing over a task key of its own with a genuine quote gets no code', async () => {
  const net = bench.net
  const ownKey = generateKeyPair()
  let enclave: Awaited<ReturnType<typeof attackerEnclave>> | undefined
  let codeRead: Uint8Array | undefined
  const substituting = await registeredNode((_host, account) => ({
    onAttest: async (_buyer, req) => {
      enclave ??= await attackerEnclave(net, account)
      const r = await enclave.attest({ tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce })
      return { type: 'quote', quote: r.quote, enclavePublicKey: hexlify(ownKey.publicKey) }
    },
    onCode: async (_buyer, req) => {
      codeRead = openCodeEnvelope(ownKey.privateKey, req.taskId, getBytes(req.envelope)).code
    }
  }))
  try {
    // Four nodes asked for, four offering: the substituting node is certain to be a candidate, and needed.
    const tradeId = await postDemand(4)
    const judged = await waitFor('the handed-over key judged', async () => {
      const r = await buyerRecord(tradeId)
      return (r.rejected?.some(x => x.peerId === substituting.host.peerId) === true || r.chosenNodes !== undefined || r.state === 'failed') ? r : undefined
    }, 90_000, 200)
    assert.is(codeRead, undefined, 'the host read the buyer\'s code')
    assert.ok(judged.rejected?.some(x => x.peerId === substituting.host.peerId && x.why.startsWith('QuoteEnclaveKeyError')), `refused for its key: ${JSON.stringify(judged.rejected)}`)
    assert.ok(judged.unattestedPeers?.includes(substituting.host.peerId), 'and struck')
  } finally {
    await substituting.host.stop()
    await enclave?.close()
  }
})

test('a node that misses its attestation twice is struck at the second miss, and the trade collects again without it', async () => {
  let asked = 0
  const silent = await registeredNode(() => ({
    onAttest: async () => {
      asked++
      // Never answers in time: waits past the buyer's attestation timeout (trade.attestTimeoutMs, the default).
      await new Promise(resolve => setTimeout(resolve, DEFAULT_ATTEST_TIMEOUT_MS + 1_000))
      throw new RefuseRequest('TooLate', 'no answer')
    },
    onCode: async () => {}
  }))
  try {
    // Four nodes asked for, four offering (three honest, the silent one): the silent node is needed in every round.
    const tradeId = await postDemand(4)
    const struck = await waitFor('the second miss judged', async () => {
      const r = await buyerRecord(tradeId)
      return (r.unattestedPeers?.includes(silent.host.peerId) === true || r.state === 'failed') ? r : undefined
    }, 120_000, 200).catch(async (err: Error) => {
      const r = await buyerRecord(tradeId)
      throw new Error(`${err.message}; the trade is ${r.state} (${r.timeline.map(e => e.state).join(', ')}), asked ${asked} times, ${JSON.stringify(r.rejected)}`)
    })
    assert.is.not(struck.state, 'failed', struck.reason)
    assert.ok(asked >= 2, `asked ${asked} times: struck before its second miss`)
    const misses = struck.rejected?.filter(x => x.peerId === silent.host.peerId) ?? []
    assert.is(misses.length, 2, `one refusal on record per miss: ${JSON.stringify(struck.rejected)}`)
    assert.ok(struck.unattestedAccounts?.includes(silent.account), 'its account is struck too')
    // Struck, it is neither asked again nor does it stop the trade: the buyer goes back to collecting offers.
    const askedWhenStruck = asked
    const collecting = await waitFor('the trade collecting again', async () => {
      const r = await buyerRecord(tradeId)
      return (r.timeline.filter(e => e.state === 'demanded').length >= 3 || r.state === 'failed') ? r : undefined
    }, 60_000, 200)
    assert.is.not(collecting.state, 'failed', collecting.reason)
    assert.is(asked, askedWhenStruck, 'the struck node was asked again')
  } finally {
    await silent.host.stop()
  }
})

test.run()
