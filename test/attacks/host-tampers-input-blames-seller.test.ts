// Attack (issue 10, property 6): a node's host changes a seller's chunks on their way into the enclave (or
// cuts the stream), the enclave reports "input invalid" (status 5), and DTMC paid the sellers their full data
// fees for nothing while the buyer paid for a failed trade; nobody could tell the host from the seller. Before
// the fix any ChunkAuthError or cut stream marked the delivery refused and the run said status 5. Now the seller
// signs every chunk with its account key: bytes it did not sign are the host's fault (the chunk is dropped, the
// delivery stays open, that node has no result until it passes the seller's bytes on), while signed bytes that
// fail GCM, the size or the commitment are the seller's fault (status 5). DTMC pays no data fee on a status-5
// settlement except on a receipt from a node of the final group, which the faulty seller cannot have.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { ResultStatus } from '../../contracts/formats.ts'
import { encryptDataset, signChunk, wrapDataKey, type EnclaveHost } from '../../enclave/index.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { artifactCode, buyerSetup, deliverSigned, domain, rejectsWith, signedDelivery, startEnclave } from '../helpers/enclave.ts'
import { COMMIT_WINDOW } from '../../contracts/client.ts'
import { startChain, makeMarket, openTrade, submit, reveal, reverts, claim, signedReceipt, increaseTime, conserved, everyone, paid, type Chain } from '../../contracts/tools/market.ts'

let enclave: EnclaveHost
let chain: Chain
const code = artifactCode('StatsFast')
const data = sampleDataset(800)

test.before(async () => {
  enclave = await startEnclave()
  chain = await startChain()
})
test.after(async () => {
  await enclave?.close()
  await chain?.stop()
})

function prepared (task: { taskId: string, enclavePublicKey: string }) {
  const ds = encryptDataset(data, { chunkSize: 1024 })
  const wrappedKey = wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
  return { ds, wrappedKey, d: { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks: ds.chunks } }
}

test('a host that flips a byte of a signed chunk, or re-signs it, is at fault: no status 5, the delivery resumes', async () => {
  const task = await buyerSetup(enclave, code)
  const p = prepared(task)
  const frames = [...(signedDelivery(task.taskId, p.d).chunks as Uint8Array[])]
  const flipped = frames.map(f => Uint8Array.from(f)); flipped[2][100] ^= 1
  const delivery = signedDelivery(task.taskId, p.d)
  await rejectsWith(enclave.deliverData(task.taskId, { ...delivery, chunks: flipped }), 'ChunkNotFromSellerError')
  // The host's own signature over its changed bytes does not help: it is not the account that delivered the key.
  const host = new Wallet(Wallet.createRandom().privateKey)
  const resigned = [...frames]
  const bad = Uint8Array.from(p.ds.chunks[2]); bad[40] ^= 1
  resigned[2] = signChunk(host.signingKey, domain, task.taskId, 0, p.wrappedKey, bad)
  await rejectsWith(enclave.deliverData(task.taskId, { ...delivery, chunks: resigned }), 'ChunkNotFromSellerError')
  const [summary] = (await enclave.tasks()).filter(t => t.taskId === task.taskId)
  assert.is(summary.sellers[0].invalid, undefined, 'the seller is not blamed')
  assert.is(summary.sellers[0].nextChunk, 2, 'what the seller sent before stays')
  // Before the fix: execute returned a signed status 5 here. Now this node has no result at all.
  await rejectsWith(enclave.execute(task.taskId), 'TaskStateError')
  // The seller's own bytes, passed on unchanged, complete the delivery and the task runs.
  assert.ok((await deliverSigned(enclave, task.taskId, p.d)).complete)
  assert.is((await enclave.execute(task.taskId)).resultInfo.status, ResultStatus.Ok)
})

test('a host that replays signed chunks of an earlier delivery (another data key) is at fault, not the seller', async () => {
  const task = await buyerSetup(enclave, code)
  const first = prepared(task)
  const oldFrames = [...(signedDelivery(task.taskId, first.d).chunks as Uint8Array[])]
  await rejectsWith(enclave.deliverData(task.taskId, { ...signedDelivery(task.taskId, first.d), chunks: oldFrames.slice(0, 2) }), 'TruncatedDataError')
  // The seller starts over with a new data key; the host slips in a chunk it kept from the first delivery.
  const second = prepared(task)
  const frames = [...(signedDelivery(task.taskId, second.d).chunks as Uint8Array[])]
  frames[1] = oldFrames[1]
  await rejectsWith(enclave.deliverData(task.taskId, { ...signedDelivery(task.taskId, second.d), chunks: frames }), 'ChunkNotFromSellerError')
  const [summary] = (await enclave.tasks()).filter(t => t.taskId === task.taskId)
  assert.is(summary.sellers[0].invalid, undefined, 'the seller is not blamed')
  assert.ok((await deliverSigned(enclave, task.taskId, second.d)).complete)
})

test('a host that cuts the stream is not blamed on the seller either', async () => {
  const task = await buyerSetup(enclave, code)
  const p = prepared(task)
  await rejectsWith(deliverSigned(enclave, task.taskId, { ...p.d, chunks: p.ds.chunks.slice(0, 2) }), 'TruncatedDataError')
  const [summary] = (await enclave.tasks()).filter(t => t.taskId === task.taskId)
  assert.is(summary.sellers[0].invalid, undefined)
  await rejectsWith(enclave.execute(task.taskId), 'TaskStateError')
})

test('bytes the seller signed that fail are the seller\'s fault: status 5, and no receipt for that seller', async () => {
  const task = await buyerSetup(enclave, code)
  const p = prepared(task)
  const chunks = p.ds.chunks.map(c => Uint8Array.from(c)); chunks[1][30] ^= 1 // broken before the seller signed it
  await rejectsWith(deliverSigned(enclave, task.taskId, { ...p.d, chunks }), 'ChunkAuthError')
  const [summary] = (await enclave.tasks()).filter(t => t.taskId === task.taskId)
  assert.match(summary.sellers[0].invalid ?? '', /ChunkAuthError/)
  assert.is(summary.sellers[0].receipt, undefined)
  assert.is((await enclave.execute(task.taskId)).resultInfo.status, ResultStatus.InputInvalid)
})

test('DTMC: on a status-5 settlement the faulty seller is unpaid and the honest one claims with a final-group receipt', async () => {
  const m = await makeMarket(chain, 2, 3)
  const t = await openTrade(m)
  const fees = (await m.buyer.client.dtmc.trade(t.tradeId))!.sellers.map(s => s.fee)
  await conserved(chain, everyone(m), async () => {
    // Nodes 0 and 1 found seller 1's signed data broken; node 2 (a compromised enclave, or one the seller
    // fed good data alone) reports otherwise and gave seller 1 a receipt.
    await submit(m, t, 0, { status: ResultStatus.InputInvalid, resultSize: 0n })
    await submit(m, t, 1, { status: ResultStatus.InputInvalid, resultSize: 0n })
    // Node 2 never commits: reveals open after COMMIT_WINDOW, and the last committed reveal settles.
    await increaseTime(chain, COMMIT_WINDOW + 1)
    for (let i = 0; i < 2; i++) await reveal(m, t, i)
    const view = (await m.buyer.client.dtmc.trade(t.tradeId))!
    assert.is(view.state, 'settled')
    // Before the fix both sellers were credited their data fees here.
    assert.is(await paid(m, t.tradeId, m.sellers[0].address), 0n)
    assert.is(await paid(m, t.tradeId, m.sellers[1].address), 0n)
    await claim(m, t, 0, 1) // the honest seller: node 1 (final group) verified its data
    assert.is(await paid(m, t.tradeId, m.sellers[0].address), fees[0])
    await reverts(claim(m, t, 1, 2), 'ReceiptNotFromFinalGroup')
    await reverts(claim(m, t, 1, 0, signedReceipt(m, t, 2, 1)), 'NotAttestedEnclave')
    await increaseTime(chain, 3 * 24 * 3600 + 1)
    await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
    // Nodes are paid the flat min(nodePrice × gasCap, nodeCap) whatever the run did (the gas used is not public).
    const nodeFee = view.nodePrice * view.gasCap < view.nodeCap ? view.nodePrice * view.gasCap : view.nodeCap
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fees[0] - 2n * nodeFee)
  })
})

test.run()
