// Attack (issue 10, property 3): a lazy node copies another node's result. Before the fix a result info was
// public (in the mempool, then in DTMC's ResultSubmitted event) as soon as a node sent it; a node whose enclave
// signs what its host asks (a compromised but still attested enclave, as faults.test.ts's "lying" node) read
// node 0's result and had its own enclave key sign a copy: it landed in the majority and was paid without
// running anything. Run before the fix: "the lazy node was paid" (its credit was the honest nodes' fee, not 0).
// Now a node commits first, to keccak(resultDigest, node, secret nonce): no result is public until every node
// has committed or COMMIT_WINDOW has passed, and then commitments are closed. A copied commitment opens to
// nothing the copier can sign, and a node that waits for a public result cannot commit any more.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { COMMIT_WINDOW } from '../../contracts/client.ts'
import {
  startChain, makeMarket, openTrade, commit, reveal, signedResult, increaseTime, reverts, rand32, paid, type Chain
} from '../../contracts/tools/market.ts'

let chain: Chain
test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

test('a node that copies another node\'s commitment cannot open it, and is not paid', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  const c0 = await commit(m, t, 0)
  await commit(m, t, 1)
  // All the lazy node 2 can see before it must commit: commitments. It copies node 0's.
  const [committed] = m.nodes[2].client.dtmc.eventsIn(c0, 'ResultCommitted')
  await m.nodes[2].client.dtmc.commitResult(t.tradeId, 2, committed.args.commitment as string)
  // Every node has committed: reveals open in the next block. Node 0's result is public now.
  const r0 = await reveal(m, t, 0)
  const [pub] = m.nodes[2].client.dtmc.eventsIn(r0, 'ResultSubmitted')
  const copy = signedResult(t, 2, { resultHash: pub.args.resultHash as string, resultSize: pub.args.resultSize as bigint, status: Number(pub.args.status) })
  // Its enclave signs the copy; no nonce opens the copied commitment to it (node 0's nonce was for node 0's digest).
  for (const nonce of [t.committed.get(0)!.nonce, rand32()]) {
    await reverts(m.nodes[2].client.dtmc.submitResult(copy.info, 2, copy.signature, nonce), 'CommitmentMismatch')
  }
  await reveal(m, t, 1)
  assert.is((await m.buyer.client.dtmc.finalize(t.tradeId)).outcome, 'settled') // two of three: certain
  const view = await m.buyer.client.dtmc.trade(t.tradeId)
  assert.equal(view!.final!.members, [0, 1])
  assert.is(await paid(m, t.tradeId, m.nodes[2].address), 0n, 'the lazy node was paid')
  assert.ok(await paid(m, t.tradeId, m.nodes[0].address) > 0n)
})

test('a node that waits for a public result to commit finds commitments closed', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  await commit(m, t, 0)
  await commit(m, t, 1)
  // The lazy node never commits: the others reveal only after the commit window, which also closes commitments.
  await reverts(reveal(m, t, 0), 'RevealTooEarly')
  await increaseTime(chain, COMMIT_WINDOW)
  const r0 = await reveal(m, t, 0)
  const [pub] = m.nodes[2].client.dtmc.eventsIn(r0, 'ResultSubmitted')
  await reverts(commit(m, t, 2, { resultHash: pub.args.resultHash as string, resultSize: pub.args.resultSize as bigint }), 'CommitPhaseClosed')
  await reveal(m, t, 1) // the last committed result settles the trade
  assert.equal((await m.buyer.client.dtmc.trade(t.tradeId))!.final!.members, [0, 1])
  assert.is(await paid(m, t.tradeId, m.nodes[2].address), 0n)
})

test('an honest trade is at most one block slower: reveals are accepted right after the last commitment', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  for (let i = 0; i < 3; i++) await commit(m, t, i)
  const first = await reveal(m, t, 0) // no waiting: every node committed
  const last = await commit(m, t, 2).catch(() => null)
  assert.is(last, null, 'commitments are closed once every node committed')
  await reveal(m, t, 1)
  await reveal(m, t, 2)
  const view = await m.buyer.client.dtmc.trade(t.tradeId)
  assert.is(view!.state, 'settled')
  assert.ok(first.blockNumber > 0)
})

test.run()
