// Attack (review of DTMC.declineTrade): a buyer that also controls a seller of its own trade (a dataset it listed
// itself) has the trusted node take its data, acknowledges the node's delivery receipt (the enclave may run from
// then on) and declines the trade as that seller before the node's first commitment: DTMC cannot see a delivery
// before a commitment, so the open trade was refunded whole and the node had worked for nothing (its run's CPU,
// bounded by the gas cap). Now an open trade's decline holds every node's fee for DECLINE_NODE_CLAIM_WINDOW, and a
// node that shows the decliner's acknowledgement of its own receipt (the seller's signature over receiptAckDigestOf,
// which the node keeps from the data stream) is paid it (`claimRun`); what nobody claims goes back to the buyer after
// the window (`releaseUnclaimed`), so a buyer refused honestly (no ack, no delivery) gets all of it back within it.
// The test is deterministic where the attack is a race (a decline sent once the ack is in, against the node's run and
// commitment): the attacker holds its code back, so the node takes the data and the ack and then cannot run nor
// commit, and declines then. DTMC cannot tell this from a decline during the run, which is the point: what pays the
// node is the decliner's acknowledgement, which the seller had to give before any enclave of the trade could run.
//
// Real parts: anvil, a relay and a node daemon as separate processes; the attacker is an independent libp2p host with
// two funded accounts of its own: the buyer, and a seller it registers and lists a dataset for.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { DECLINE_NODE_CLAIM_WINDOW } from '../../contracts/client.ts'
import { rpc as anvilRpc } from '../../contracts/devnet-accounts.ts'
import { GASLEFT_CODE, TINY_DATA, attackerTrade, attackTestnet, nodeTradeAttacker, type NodeTradeAttacker } from '../helpers/attacker.ts'

const bench = attackTestnet(test, 'decline-after-run', { buyers: 0, sellers: 0, nodes: 1 })
const TAG = 'decline-after-run'
const CODE = GASLEFT_CODE
const DATA = TINY_DATA
const OUTPUT_CAP = 64n
/** The node's price per gas (DEFAULT_NODE_PRICE_PER_GAS) and a gas cap it takes: the node's fee is their product. */
const NODE_PRICE = 1n
const GAS_CAP = 1_000_000n

interface NodeRecord { role: string, state: string, payment?: string }

let attacker: NodeTradeAttacker | undefined
test.after(() => { attacker?.close() })

async function nodeRecord (a: NodeTradeAttacker, tradeId: string): Promise<NodeRecord | undefined> {
  return (await a.node.rpc.call<{ records: NodeRecord[] }>('trade_get', { tradeId }).catch(() => ({ records: [] }))).records.find(r => r.role === 'node')
}

/** The buyer's balance change over `fn` (the seller sends every transaction here, so it is exactly what DTMC paid the buyer). */
async function buyerGets (a: NodeTradeAttacker, fn: () => Promise<void>): Promise<bigint> {
  const before = await a.buyer.chain.provider.getBalance(a.buyer.wallet.address)
  await fn()
  return await a.buyer.chain.provider.getBalance(a.buyer.wallet.address) - before
}

test('a buyer\'s own seller declines after acknowledging the node\'s receipt: the node is paid its fee, the buyer gets the rest', async () => {
  attacker = await nodeTradeAttacker(bench, { tag: TAG, data: DATA, outputCap: OUTPUT_CAP })
  const a = attacker
  const { tradeId, outcome, view } = await attackerTrade(a, {
    code: CODE, nodePrice: NODE_PRICE, nodeCap: GAS_CAP * NODE_PRICE, gasCap: GAS_CAP, outputCap: OUTPUT_CAP, withholdCode: true
  })
  assert.is(outcome, 'complete', 'the node took the data and the seller\'s acknowledgement')
  // The node has the ack (its trade is past `escrowed`): the seller declines now, no node having committed.
  await waitFor('the node to take the trade up', async () => (await nodeRecord(a, tradeId))?.state === 'delivering', 60_000, 200)
  const refund = await buyerGets(a, async () => { await a.seller.chain.dtmc.declineTrade(tradeId, 0) })
  const nodeFee = view.nodeFee
  assert.is(nodeFee, GAS_CAP * NODE_PRICE)
  // The decline refunded everything but the node's fee (the only seller gave up its own fee: nothing else is held).
  assert.is(refund, view.deposit - nodeFee, 'the node\'s fee is held for its claim')
  const claims = await a.buyer.chain.dtmc.claimsOf(tradeId)
  assert.equal(claims.held, [], 'no data fee held: the only seller declined')
  // The node sees the decline and claims with the ack it kept. Before the fix: refunded with a payment of 0.
  const record = await waitFor('the node to record the trade\'s end', async () => {
    const r = await nodeRecord(a, tradeId)
    return r?.state === 'refunded' ? r : undefined
  }, 60_000, 200)
  assert.is(record.payment, nodeFee.toString(), 'the node was paid its fee for the run the buyer\'s own seller declined')
  assert.equal((await a.buyer.chain.dtmc.claimsOf(tradeId)).nodesHeld, [], 'claimed')
  // Nothing left for the buyer to release: it got the deposit less the node fee, to the wei.
  const rest = await buyerGets(a, async () => {
    await anvilRpc(bench.net.network.rpcUrl, 'evm_increaseTime', [DECLINE_NODE_CLAIM_WINDOW + 10])
    await anvilRpc(bench.net.network.rpcUrl, 'evm_mine', [])
    await a.seller.chain.dtmc.releaseUnclaimed(tradeId).then(() => assert.unreachable('released twice'), (err: Error) => {
      assert.is((err as { errorName?: string }).errorName, 'NothingHeld', err.message)
    })
  })
  assert.is(rest, 0n)
})

test('a seller that declines without acknowledging (an honest refusal): no node can claim, the buyer gets the node fee back after the window', async () => {
  const a = attacker ?? await nodeTradeAttacker(bench, { tag: TAG, data: DATA, outputCap: OUTPUT_CAP })
  attacker = a
  let refund: bigint | undefined
  // The seller declines and then sends no acknowledgement (its callback fails): the enclave never may run.
  const { tradeId, outcome, view } = await attackerTrade(a, {
    code: CODE, nodePrice: NODE_PRICE, nodeCap: GAS_CAP * NODE_PRICE, gasCap: GAS_CAP, outputCap: OUTPUT_CAP,
    beforeAck: async (id) => {
      refund = await buyerGets(a, async () => { await a.seller.chain.dtmc.declineTrade(id, 0) })
      throw new Error('refused: no acknowledgement')
    }
  })
  assert.is.not(outcome, 'complete', 'no acknowledgement reached the node')
  assert.is(refund, view.deposit - view.nodeFee, 'the node fee is held for the window')
  const claims = await a.buyer.chain.dtmc.claimsOf(tradeId)
  assert.equal(claims.nodesHeld, [0])
  // The node records the refund without a claim (it holds no acknowledgement): paid nothing.
  const record = await waitFor('the node to record the trade\'s end', async () => {
    const r = await nodeRecord(a, tradeId)
    return r?.state === 'refunded' ? r : undefined
  }, 60_000, 200)
  assert.is(record.payment, '0')
  // Within the window the fee stays held; after it, anyone's release gives it to the buyer: its whole deposit, to the wei.
  await a.seller.chain.dtmc.releaseUnclaimed(tradeId).then(() => assert.unreachable('released within the window'), (err: Error) => {
    assert.is((err as { errorName?: string }).errorName, 'ClaimWindowOpen', err.message)
  })
  const rest = await buyerGets(a, async () => {
    await anvilRpc(bench.net.network.rpcUrl, 'evm_increaseTime', [DECLINE_NODE_CLAIM_WINDOW + 10])
    await anvilRpc(bench.net.network.rpcUrl, 'evm_mine', [])
    await a.seller.chain.dtmc.releaseUnclaimed(tradeId)
  })
  assert.is(rest, view.nodeFee)
  assert.is(refund! + rest, view.deposit, 'the buyer has its whole deposit back')
  assert.equal((await a.buyer.chain.dtmc.claimsOf(tradeId)).nodesHeld, [])
})

test.run()
