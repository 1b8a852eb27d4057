// Attack (issue 10, property 5): gasUsed, public on chain, leaks the data even with an output cap of 0. Before the
// fix the signed ResultInfo (DTMC's events) carried gasUsed, and nodes were paid nodePrice × gasUsed: an analysis
// that returns nothing but burns gas according to the data sent ~31 bits a trade. Run before the fix: the public
// result info of two datasets with the same (empty) output differed ("gasUsed": "89" against "1007"). Now gasUsed
// is in neither the result info nor the host's response: it travels inside the encrypted result, to the buyer,
// and DTMC pays each node the flat min(nodePrice × gasCap, nodeCap) of the trade's terms.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getBytes } from 'ethers'
import { openResult, type EnclaveHost } from '../../enclave/index.ts'
import { buyerSetup, random32, sellerDeliver, startEnclave } from '../helpers/enclave.ts'
import { startChain, makeMarket, openTrade, submit, paid, type Chain } from '../../contracts/tools/market.ts'

// analyze(bytes[]) that copies its call data to memory (gas grows with the data) and returns empty bytes.
const BURN_BY_SIZE = getBytes('0x366000600037' + '6020600052600060205260406000f3')
let e: EnclaveHost
let chain: Chain
test.before(async () => { e = await startEnclave(); chain = await startChain() })
test.after(async () => { await e?.close(); await chain?.stop() })

test('what leaves the enclave in clear is the same for two datasets that give the same (empty) output', async () => {
  const resultSalt = random32()
  const pub: Array<Record<string, unknown>> = []
  const gas: bigint[] = []
  for (const size of [100, 5000]) {
    const task = await buyerSetup(e, BURN_BY_SIZE, { outputCap: 0n, resultSalt })
    await sellerDeliver(e, task, 0, new Uint8Array(size).fill(65))
    const r = await e.execute(task.taskId, { sellerCount: 1 })
    assert.not.ok('gasUsed' in r.resultInfo)
    assert.not.ok('gasUsed' in r, 'the host does not learn it either')
    // tradeId, taskId and inputHash are public anyway (they come from the chain); the rest is the result.
    const { tradeId: _t, taskId: _k, inputHash: _i, ...fields } = r.resultInfo
    pub.push(fields)
    gas.push(openResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt }).gasUsed)
  }
  assert.equal(pub[0], pub[1], 'the public result info differs with the data')
  assert.ok(gas[1] > gas[0], 'the buyer still learns the gas each run used')
})

test('DTMC pays every node the flat min(nodePrice × gasCap, nodeCap), whatever the run used', async () => {
  const m = await makeMarket(chain, 1, 1)
  for (const gasCap of [1_000n, 5_000_000n, 10n ** 12n]) {
    const t = await openTrade(m, { gasCap })
    const before = await paid(m, t.tradeId, m.nodes[0].address)
    await submit(m, t, 0)
    const got = await paid(m, t.tradeId, m.nodes[0].address) - before
    const flat = t.terms.nodePrice * gasCap
    assert.is(got, flat < t.terms.nodeCap ? flat : t.terms.nodeCap)
    const [opened] = m.buyer.client.dtmc.eventsIn(t.receipt, 'TradeOpened')
    assert.is(opened.args.gasCap, gasCap)
  }
})

test.run()
