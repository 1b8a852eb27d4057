// Attack (issue 10, property 9): honest nodes land in different result groups. Before the fix the enclave ran
// with min(buyer's gas cap, the node's own maxGas), so an analysis that reads GAS (gasleft()) returned different
// values on two honest nodes with different maxGas, and the trade was refunded for want of a majority. Run before
// the fix: "the two nodes disagree" (maxGas 30,000,000 and 500,000, buyer's cap 1,000,000). Now the trade's gas
// cap is in its terms (DTMC) and in the buyer-signed code envelope, the enclave runs with exactly it and refuses
// a host that asks for another (CapMismatchError), and a node whose maxGas is below it does not offer: GAS reads
// the same on every honest enclave. Nodes that differ in maxGas, chunk size or platform land in one group.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getBytes } from 'ethers'
import type { EnclaveHost } from '../../enclave/index.ts'
import { groupKeyOf } from '../helpers/dtmc-checks.ts'
import { buyerSetup, random32, rejectsWith, sellerDeliver, startEnclave } from '../helpers/enclave.ts'

// analyze(bytes[]) returning abi.encode(bytes(uint256(gasleft()))).
const RETURNS_GAS = getBytes('0x602060005260206020525a60405260606000f3')
const TRADE_GAS_CAP = 1_000_000n
let enclaves: EnclaveHost[] = []
test.before(async () => {
  for (let i = 0; i < 3; i++) enclaves.push(await startEnclave({ platformSecret: new Uint8Array(32).fill(10 + i) }))
})
test.after(async () => { for (const e of enclaves) await e.close(); enclaves = [] })

test('three honest nodes configured differently report one result', async () => {
  const data = new TextEncoder().encode('x,y\n1,2\n3,4\n5,6\n')
  const salt = random32()
  // Each node's own configuration: its maxGas (all at or above the trade's cap: the others do not offer) and the
  // chunk size its seller delivery used. What the node passes the enclave is the trade's cap as DTMC has it.
  const nodes = [{ maxGas: 30_000_000n, chunk: 4096 }, { maxGas: TRADE_GAS_CAP, chunk: 3 }, { maxGas: 2_000_000n, chunk: 7 }]
  const keys: string[] = []
  for (const [i, node] of nodes.entries()) {
    const task = await buyerSetup(enclaves[i], RETURNS_GAS, { gasCap: TRADE_GAS_CAP }, salt)
    await sellerDeliver(enclaves[i], task, 0, data, node.chunk)
    assert.ok(node.maxGas >= TRADE_GAS_CAP)
    const r = await enclaves[i].execute(task.taskId, { sellerCount: 1, gasCap: TRADE_GAS_CAP })
    keys.push(groupKeyOf(r.resultInfo))
  }
  assert.is(keys[1], keys[0], 'the two nodes disagree')
  assert.is(keys[2], keys[0], 'the two nodes disagree')
})

test('a host asking for another gas cap than the trade\'s (its own lower maxGas) gets a refusal, not another result', async () => {
  const task = await buyerSetup(enclaves[0], RETURNS_GAS, { gasCap: TRADE_GAS_CAP })
  await sellerDeliver(enclaves[0], task, 0, new Uint8Array([1, 2, 3]))
  await rejectsWith(enclaves[0].execute(task.taskId, { sellerCount: 1, gasCap: 500_000n }), 'CapMismatchError')
  await rejectsWith(enclaves[0].execute(task.taskId, { sellerCount: 1, gasCap: 30_000_000n }), 'CapMismatchError')
  assert.is((await enclaves[0].tasks()).find(t => t.taskId === task.taskId)?.executed, false, 'nothing ran')
})

test.run()
