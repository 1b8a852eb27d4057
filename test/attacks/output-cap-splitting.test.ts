// Attack (issue 10, property 9, the output cap): a buyer forces a refund by splitting its nodes into result groups
// with the output cap. The trade's output cap is on DTMC, but each node's code envelope carries its own, and the
// node passed the enclave only the trade's gas cap: each enclave ran with min(its envelope's output cap, the
// sellers' data-key caps, MAX_OUTPUT_CAP). A buyer that gives one node's envelope the trade's cap and another's an
// output cap of 1 byte gets status 0 (Ok) from the first and status 4 (OutputOverCap) from the second: two groups,
// no majority, a refund, and the nodes that ran are unpaid. Now the node passes DTMC's outputCap with the gas cap,
// the enclave refuses an envelope whose cap differs (CapMismatchError) before anything runs, and the node's part
// ends without a result: no node runs under terms the trade does not hold.
//
// Shown twice: at the enclave (two enclaves of one trade, asked as the node asks), and through a real node daemon
// (anvil, a relay and a node daemon as separate processes; the attacker is an independent libp2p host with two
// funded accounts of its own, the buyer and a seller it registers and lists a dataset for).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { hexlify, randomBytes } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import type { EnclaveHost } from '../../enclave/index.ts'
import { ResultStatus } from '../../contracts/formats.ts'
import { GASLEFT_CODE, TINY_DATA, attackerTrade, attackTestnet, nodeTradeAttacker } from '../helpers/attacker.ts'
import { groupKeyOf } from '../helpers/dtmc-checks.ts'
import { buyerSetup, rejectsWith, sellerDeliver, startEnclave } from '../helpers/enclave.ts'

const bench = attackTestnet(test, 'output-cap-split', { buyers: 0, sellers: 0, nodes: 1 })
const random32 = (): string => hexlify(randomBytes(32)).toLowerCase()
const TAG = 'output-cap-split'
const CODE = GASLEFT_CODE
const DATA = TINY_DATA
const GAS_CAP = 1_000_000n
/** The trade's output cap on DTMC (and the seller's listed cap): the 96-byte output fits. */
const TRADE_OUTPUT_CAP = 4096n
/** The attacker's cap in one node's envelope: the output does not fit, status OutputOverCap. */
const SPLIT_OUTPUT_CAP = 1n

let enclaves: EnclaveHost[] = []
test.after(async () => { for (const e of enclaves) await e.close(); enclaves = [] })

test('two enclaves of one trade, envelopes with output caps 4096 and 1: the one that differs from DTMC\'s refuses, nothing splits', async () => {
  for (let i = 0; i < 2; i++) enclaves.push(await startEnclave({ platformSecret: new Uint8Array(32).fill(40 + i) }))
  const salt = random32()
  const statuses: string[] = []
  const keys: string[] = []
  for (const [i, outputCap] of [TRADE_OUTPUT_CAP, SPLIT_OUTPUT_CAP].entries()) {
    const task = await buyerSetup(enclaves[i], CODE, { gasCap: GAS_CAP, outputCap }, salt)
    await sellerDeliver(enclaves[i], task, 0, DATA)
    // What the node asks: the trade's caps as DTMC has them.
    try {
      const r = await enclaves[i].execute(task.taskId, { sellerCount: 1, gasCap: GAS_CAP, outputCap: TRADE_OUTPUT_CAP })
      statuses.push(String(r.resultInfo.status))
      keys.push(groupKeyOf(r.resultInfo))
    } catch (err) {
      statuses.push((err as Error).name)
    }
  }
  assert.equal(statuses, [String(ResultStatus.Ok), 'CapMismatchError'], `the enclaves answered ${statuses.join(', ')}`)
  assert.is(keys.length, 1, 'one result group only')
  // The other way round: a host that does not pass DTMC's cap is what let the split through; it still cannot lower it.
  const task = await buyerSetup(enclaves[0], CODE, { gasCap: GAS_CAP, outputCap: TRADE_OUTPUT_CAP })
  await sellerDeliver(enclaves[0], task, 0, DATA)
  await rejectsWith(enclaves[0].execute(task.taskId, { sellerCount: 1, gasCap: GAS_CAP, outputCap: SPLIT_OUTPUT_CAP }), 'CapMismatchError')
})

interface NodeRecord { role: string, state: string, reason?: string }

test('a node daemon given an envelope with an output cap of 1 (DTMC\'s is 4096) runs nothing and submits no result', async () => {
  const attacker = await nodeTradeAttacker(bench, { tag: TAG, data: DATA, outputCap: TRADE_OUTPUT_CAP })
  try {
    // The node's default price per gas is 1 wei: a fee of GAS_CAP wei pays for the whole cap. The seller delivers as an
    // honest seller daemon does: its data key carries its listed cap (the trade's); the buyer's envelope carries 1.
    const { tradeId, outcome, view: opened } = await attackerTrade(attacker, {
      code: CODE, nodePrice: 1n, nodeCap: GAS_CAP, gasCap: GAS_CAP, outputCap: TRADE_OUTPUT_CAP, envelopeOutputCap: SPLIT_OUTPUT_CAP
    })
    assert.is(opened.outputCap, TRADE_OUTPUT_CAP, 'DTMC holds the trade\'s output cap')
    assert.is(outcome, 'complete', 'the node took the data and acknowledged receipt: it would run')
    // The node's part ends: before the fix it ran with the envelope's 1 byte (OutputOverCap) and committed that.
    const record = await waitFor('the node to end or commit its part', async () => {
      const r = (await attacker.node.rpc.call<{ records: NodeRecord[] }>('trade_get', { tradeId }).catch(() => ({ records: [] }))).records.find(x => x.role === 'node')
      return r !== undefined && ['failed', 'submitted', 'finalized'].includes(r.state) ? r : undefined
    }, 90_000, 250)
    assert.is(record.state, 'failed', `the node ran the envelope's output cap of ${SPLIT_OUTPUT_CAP} byte and went on to ${record.state}`)
    assert.match(record.reason ?? '', /output cap/, `the node's part failed for another reason: ${record.reason}`)
    const view = await attacker.buyer.chain.dtmc.trade(tradeId)
    assert.is(view?.nodes[0]?.committed, false, 'the node committed a result on DTMC')
  } finally {
    attacker.close()
  }
})

test.run()
