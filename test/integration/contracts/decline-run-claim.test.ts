// DTMC.claimRun on anvil (the daemons' side: test/attacks/decline-after-run.test.ts): after an open trade's decline
// each node's fee is held for DECLINE_NODE_CLAIM_WINDOW and paid only on the decliner's acknowledgement of that
// node's own receipt, once, within the window; the rest goes back to the buyer at the release after it, to the wei.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Wallet } from 'ethers'
import { DECLINE_NODE_CLAIM_WINDOW } from '../../../contracts/client.ts'
import { receiptAckDigestOf, receiptDigestOf, signDigest } from '../../../contracts/formats.ts'
import {
  startChain, makeMarket, openTrade, reverts, increaseTime, paid, conserved, everyone, commit,
  type Chain, type Market, type OpenedTrade
} from '../../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

/** Seller `sellerIndex`'s acknowledgement of node `node`'s receipt for its delivery, signed by `signer` (default the seller). */
function ackOf (m: Market, t: OpenedTrade, node: number, sellerIndex: number, signer?: Wallet): string {
  const s = m.sellers[sellerIndex]
  const receipt = receiptDigestOf(t.domain, t.tradeId, t.enclaves[node].quote.taskId, sellerIndex, s.commitment, s.address)
  return signDigest((signer ?? s.wallet).signingKey, receiptAckDigestOf(receipt))
}

const commitments = (m: Market): string[] => m.sellers.map(s => s.commitment)

test('two sellers, three nodes: seller 1 declines; only its acks of each node\'s own receipt pay, once, within the window', async () => {
  const m = await makeMarket(chain, 2, 3)
  const t = await openTrade(m)
  const view = (await m.buyer.client.dtmc.trade(t.tradeId))!
  const [fee0] = view.sellers.map(s => s.fee)
  const nodeFee = view.nodeFee
  const decliner = m.sellers[1]
  // Nothing is held for nodes before a decline.
  await reverts(m.nodes[0].client.dtmc.claimRun(t.tradeId, 0, commitments(m), ackOf(m, t, 0, 1)), 'NodeFeeNotHeld')
  await conserved(chain, everyone(m), async () => {
    const declined = await decliner.client.dtmc.declineTrade(t.tradeId, 1)
    console.log(`declineTrade of an open 3-node, 2-seller trade: ${declined.gasUsed} gas`)
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fee0 - 3n * nodeFee, 'seller 0\'s fee and the node fees held')
    const claims = await m.buyer.client.dtmc.claimsOf(t.tradeId)
    assert.equal(claims.held, [0])
    assert.equal(claims.nodesHeld, [0, 1, 2])
    assert.is(claims.decliner, 1)
    const at = (await chain.provider.getBlock(declined.blockNumber!))!.timestamp
    assert.is(claims.nodeUntil, at + DECLINE_NODE_CLAIM_WINDOW)

    // Refused: the other seller's ack, the buyer's signature, the decliner's ack of another node's receipt, wrong commitments.
    await reverts(m.nodes[0].client.dtmc.claimRun(t.tradeId, 0, commitments(m), ackOf(m, t, 0, 0)), 'NotDeclinerAck')
    await reverts(m.nodes[0].client.dtmc.claimRun(t.tradeId, 0, commitments(m), ackOf(m, t, 0, 1, m.buyer.wallet)), 'NotDeclinerAck')
    await reverts(m.nodes[0].client.dtmc.claimRun(t.tradeId, 0, commitments(m), ackOf(m, t, 1, 1)), 'NotDeclinerAck')
    await reverts(m.nodes[0].client.dtmc.claimRun(t.tradeId, 0, [commitments(m)[1], commitments(m)[0]], ackOf(m, t, 0, 1)), 'CommitmentsMismatch')
    await reverts(m.nodes[0].client.dtmc.claimRun(t.tradeId, 3, commitments(m), ackOf(m, t, 0, 1)), 'UnknownNode')

    // Node 0 claims (anyone may relay: the buyer sends it here); the fee goes to its payee, once.
    const claimed = await m.buyer.client.dtmc.claimRun(t.tradeId, 0, commitments(m), ackOf(m, t, 0, 1))
    console.log(`claimRun: ${claimed.gasUsed} gas`)
    assert.is(await paid(m, t.tradeId, m.nodes[0].address), nodeFee)
    await reverts(m.nodes[0].client.dtmc.claimRun(t.tradeId, 0, commitments(m), ackOf(m, t, 0, 1)), 'NodeFeeNotHeld')
    // Within the window nothing is released.
    await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'ClaimWindowOpen')

    // Past the window node 1 is too late; the release gives the buyer nodes 1 and 2's fees, not seller 0's yet.
    await increaseTime(chain, DECLINE_NODE_CLAIM_WINDOW + 1)
    await reverts(m.nodes[1].client.dtmc.claimRun(t.tradeId, 1, commitments(m), ackOf(m, t, 1, 1)), 'ClaimWindowClosed')
    const released = await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
    console.log(`releaseUnclaimed of 2 node fees: ${released.gasUsed} gas`)
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fee0 - nodeFee)
    const after = await m.buyer.client.dtmc.claimsOf(t.tradeId)
    assert.equal(after.nodesHeld, [])
    assert.equal(after.held, [0], 'seller 0\'s fee waits for its own claim window')
    await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'ClaimWindowOpen')
  })
})

test('no node fee is held on a decline of a refunded trade, nor on a refund without a decline', async () => {
  const m = await makeMarket(chain, 1, 2)
  const t = await openTrade(m)
  await increaseTime(chain, 3601)
  assert.is((await m.buyer.client.dtmc.finalize(t.tradeId)).outcome, 'refunded')
  assert.equal((await m.buyer.client.dtmc.claimsOf(t.tradeId)).nodesHeld, [])
  await m.sellers[0].client.dtmc.declineTrade(t.tradeId, 0)
  assert.equal((await m.buyer.client.dtmc.claimsOf(t.tradeId)).nodesHeld, [])
  assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit, 'the whole deposit: the seller gave its held fee up')
  await reverts(m.nodes[0].client.dtmc.claimRun(t.tradeId, 0, commitments(m), ackOf(m, t, 0, 0)), 'NodeFeeNotHeld')
  // And a committed trade cannot be declined at all (its nodes are paid by the settlement).
  const c = await openTrade(m)
  await commit(m, c, 0)
  await reverts(m.sellers[0].client.dtmc.declineTrade(c.tradeId, 0), 'DeclineTooLate')
})

test.run()
