// Code and data delivery: every fault in bytes the seller signed (chunks, keys, commitments) is
// refused, the delivery is marked refused in sealed state, and the task's result then says "input
// invalid" without running any code. A gap or a cut stream, which a host can cause on its own, blames
// nobody: the chunk is refused, the delivery stays where it was and resumes (issue 10, property 6;
// bytes the seller did not sign are in test/attacks/host-tampers-input-blames-seller.test.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, keccak256, toUtf8Bytes } from 'ethers'
import { recoverDigest, resultDigestOf, ResultStatus, tradeIdOf } from '../../../contracts/formats.ts'
import {
  encryptChunk, encryptCodeForEnclave, encryptDataset, generateKeyPair, openDiagnosis, wrapDataKey
} from '../../../enclave/index.ts'
import type { EnclaveHost } from '../../../enclave/index.ts'
import { sampleDataset } from '../../../enclave/examples.ts'
import { artifactCode, buyer, buyerSetup, domain, deliverCodeAs, deliverSigned, random32, rejectsWith, sellerDeliver, startEnclave } from '../../helpers/enclave.ts'
import type { BuyerTask } from '../../helpers/enclave.ts'

let enclave: EnclaveHost
let other: EnclaveHost
const code = artifactCode('StatsFast')
const data = sampleDataset(2000)

test.before(async () => {
  enclave = await startEnclave()
  other = await startEnclave()
})
test.after(async () => {
  await enclave?.close()
  await other?.close()
})

function prepared (task: BuyerTask, chunkSize = 2048) {
  const ds = encryptDataset(data, { chunkSize })
  const wrappedKey = wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
  return { ds, wrappedKey }
}

/** Not the seller's fault: nothing marked, nothing runs, and the seller's full delivery then completes and runs. */
async function expectResumable (task: BuyerTask, p: { ds: ReturnType<typeof encryptDataset>, wrappedKey: Uint8Array }): Promise<void> {
  const [summary] = (await enclave.tasks()).filter(t => t.taskId === task.taskId)
  assert.is(summary.sellers[0].invalid, undefined)
  await rejectsWith(enclave.execute(task.taskId, { sellerCount: 1 }), 'TaskStateError')
  const st = await deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: p.ds.commitment, wrappedKey: p.wrappedKey, chunks: p.ds.chunks })
  assert.ok(st.complete)
  assert.is((await enclave.execute(task.taskId, { sellerCount: 1 })).resultInfo.status, ResultStatus.Ok)
}

async function expectInputInvalid (task: BuyerTask): Promise<void> {
  const r = await enclave.execute(task.taskId, { sellerCount: 1 })
  assert.is(r.resultInfo.status, ResultStatus.InputInvalid)
  assert.is(r.reason.startsWith('input invalid: seller 0 (0x'), true, 'no code ran; the host hears which seller')
  assert.is(r.resultInfo.resultSize, 0n)
  assert.is(r.encryptedResult.length, 0)
  assert.is(recoverDigest(resultDigestOf(domain, r.resultInfo), r.signature).toLowerCase(), task.enclaveAddress)
  // The buyer's diagnosis names the seller (its index and the account that signed the delivery) and why.
  const d = openDiagnosis(r.encryptedDiagnosis, task.resultKey.privateKey, { taskId: task.taskId, enclaveAddress: task.enclaveAddress })
  assert.is(d.status, ResultStatus.InputInvalid)
  assert.is(d.invalidSellers?.length, 1)
  assert.is(d.invalidSellers?.[0].index, 0)
  assert.match(d.invalidSellers?.[0].account ?? '', /^0x[0-9a-f]{40}$/)
  assert.ok((d.invalidSellers?.[0].why ?? '').length > 0)
}

test('an intact delivery is accepted and reports its progress', async () => {
  const task = await buyerSetup(enclave, code)
  const st = await sellerDeliver(enclave, task, 0, data, 2048)
  assert.ok(st.complete)
  assert.is(st.size, data.length)
  assert.is(st.nextChunk, Math.ceil(data.length / 2048))
  const r = await enclave.execute(task.taskId)
  assert.is(r.resultInfo.status, ResultStatus.Ok)
})

test('a tampered chunk is refused, and nothing executes', async () => {
  const task = await buyerSetup(enclave, code)
  const { ds, wrappedKey } = prepared(task)
  const chunks = ds.chunks.map(c => Uint8Array.from(c))
  chunks[3][40] ^= 1
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks }), 'ChunkAuthError')
  const [summary] = (await enclave.tasks()).filter(t => t.taskId === task.taskId)
  assert.match(summary.sellers[0].invalid ?? '', /ChunkAuthError/)
  await expectInputInvalid(task)
})

test('a chunk whose header index was rewritten is refused', async () => {
  const task = await buyerSetup(enclave, code)
  const { ds, wrappedKey } = prepared(task)
  // Chunk 2 relabelled as chunk 1, and chunk 1 dropped: the index is bound into the chunk's AAD.
  const relabelled = Uint8Array.from(ds.chunks[2]); relabelled[5] = 1
  const chunks = [ds.chunks[0], relabelled, ...ds.chunks.slice(3)]
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks }), 'ChunkAuthError')
  await expectInputInvalid(task)
})

test('reordered chunks are refused; the delivery resumes', async () => {
  const task = await buyerSetup(enclave, code)
  const p = prepared(task)
  const chunks = [...p.ds.chunks]; [chunks[1], chunks[2]] = [chunks[2], chunks[1]]
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: p.ds.commitment, wrappedKey: p.wrappedKey, chunks }), 'ChunkOrderError')
  await expectResumable(task, p)
})

test('a dropped chunk is refused; the delivery resumes', async () => {
  const task = await buyerSetup(enclave, code)
  const p = prepared(task)
  const chunks = p.ds.chunks.filter((_, i) => i !== 4)
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: p.ds.commitment, wrappedKey: p.wrappedKey, chunks }), 'ChunkOrderError')
  await expectResumable(task, p)
})

test('a truncated stream is refused (and resumes), also when the cut chunk is relabelled as last', async () => {
  const task = await buyerSetup(enclave, code)
  const p = prepared(task)
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: p.ds.commitment, wrappedKey: p.wrappedKey, chunks: p.ds.chunks.slice(0, -2) }), 'TruncatedDataError')
  await expectResumable(task, p)

  const task2 = await buyerSetup(enclave, code)
  const p2 = prepared(task2)
  const cut = p2.ds.chunks.slice(0, 3)
  const fakeLast = Uint8Array.from(cut[2]); fakeLast[1] = 1
  await rejectsWith(deliverSigned(enclave, task2.taskId, { sellerIndex: 0, commitment: p2.ds.commitment, wrappedKey: p2.wrappedKey, chunks: [cut[0], cut[1], fakeLast] }), 'ChunkAuthError')
})

test('a data key wrapped to another enclave is refused', async () => {
  const task = await buyerSetup(enclave, code)
  const elsewhere = await buyerSetup(other, code, {}, task.salt)
  const ds = encryptDataset(data)
  const wrappedKey = wrapDataKey(elsewhere.enclavePublicKey, elsewhere.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks: ds.chunks }), 'EnvelopeError')
  // Wrapped to the right key but for another seller position: refused too.
  const asSeller1 = wrapDataKey(task.enclavePublicKey, task.taskId, 1, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey: asSeller1, chunks: ds.chunks }), 'EnvelopeError')
  assert.equal((await enclave.tasks()).find(t => t.taskId === task.taskId)?.sellers, [])
  await rejectsWith(enclave.execute(task.taskId, { sellerCount: 1 }), 'TaskStateError')
})

test('a wrong commitment is refused: announced, wrapped, or not matching the data', async () => {
  const task = await buyerSetup(enclave, code)
  const { ds, wrappedKey } = prepared(task)
  const bogus = keccak256(toUtf8Bytes('another dataset'))
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: bogus, wrappedKey, chunks: ds.chunks }), 'CommitmentMismatchError')

  // The seller encrypts other data under a commitment that does not match it.
  const lie = encryptDataset(data)
  const key = lie.key
  const chunks = [encryptChunk(key, bogus, 0, true, data)]
  const lyingKey = wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key, commitment: bogus, commitmentSalt: lie.commitmentSalt, size: data.length })
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: bogus, wrappedKey: lyingKey, chunks }), 'CommitmentMismatchError')
  await expectInputInvalid(task)
})

test('a refused delivery can be made again from the start', async () => {
  const task = await buyerSetup(enclave, code)
  const { ds, wrappedKey } = prepared(task)
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks: ds.chunks.slice(1) }), 'ChunkOrderError')
  const again = prepared(task)
  const st = await deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: again.ds.commitment, wrappedKey: again.wrappedKey, chunks: again.ds.chunks })
  assert.ok(st.complete)
  assert.is(st.invalid, undefined)
  assert.is((await enclave.execute(task.taskId)).resultInfo.status, ResultStatus.Ok)
})

test('code that does not hash to the codeHash, or sealed to another task, is refused', async () => {
  const salt = random32()
  const a = await enclave.attest({ tradeId: tradeIdOf(buyer.address, salt), codeHash: keccak256(code), nonce: random32() })
  const wrong = artifactCode('StatsPlain')
  await rejectsWith(deliverCodeAs(enclave, a.taskId, salt, encryptCodeForEnclave(a.enclavePublicKey, a.taskId, { code: wrong, resultPublicKey: generateKeyPair().publicKey, resultSalt: random32() })), 'CodeHashMismatchError')
  const otherTask = await buyerSetup(enclave, code)
  await rejectsWith(deliverCodeAs(enclave, a.taskId, salt, encryptCodeForEnclave(a.enclavePublicKey, otherTask.taskId, { code, resultPublicKey: generateKeyPair().publicKey, resultSalt: random32() })), 'EnvelopeError')
  await rejectsWith(deliverCodeAs(enclave, '0x' + '00'.repeat(32), salt, new Uint8Array(200)), 'UnknownTaskError')
})

test('only the trade\'s buyer can give a task its code, once: a stranger cannot swap in its own result key', async () => {
  const salt = random32()
  const a = await enclave.attest({ tradeId: tradeIdOf(buyer.address, salt), codeHash: keccak256(code), nonce: random32() })
  const mine = encryptCodeForEnclave(a.enclavePublicKey, a.taskId, { code, resultPublicKey: generateKeyPair().publicKey, resultSalt: random32() })
  // Someone who knows the bytecode and attested the same task: its own signature, or the buyer's salt with its own signature.
  const stranger = Wallet.createRandom()
  await rejectsWith(deliverCodeAs(enclave, a.taskId, salt, mine, stranger), 'CodeAuthorizationError')
  await rejectsWith(enclave.deliverCode(a.taskId, mine, { salt, signature: '0x' + '00'.repeat(65) }), 'CodeAuthorizationError')
  assert.is((await enclave.tasks()).find(t => t.taskId === a.taskId)?.hasCode, false, 'nothing changed')
  await deliverCodeAs(enclave, a.taskId, salt, mine)
  await deliverCodeAs(enclave, a.taskId, salt, mine)
  const theirs = encryptCodeForEnclave(a.enclavePublicKey, a.taskId, { code, resultPublicKey: generateKeyPair().publicKey, resultSalt: random32() })
  await rejectsWith(deliverCodeAs(enclave, a.taskId, salt, theirs), 'TaskStateError')
})

test('malformed requests are refused with InvalidRequestError and change nothing', async () => {
  const task = await buyerSetup(enclave, code)
  const { ds, wrappedKey } = prepared(task)
  for (const sellerIndex of [-1, 1.5, 64]) {
    await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex, commitment: ds.commitment, wrappedKey, chunks: ds.chunks }), 'InvalidRequestError')
  }
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: 'nope', wrappedKey, chunks: ds.chunks }), 'InvalidRequestError')
  await rejectsWith(deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey: 'zz', chunks: ds.chunks }), 'InvalidRequestError')
  await rejectsWith(enclave.deliverCode(task.taskId, '0xgg', { salt: task.salt, signature: '0x' }), 'InvalidRequestError')
  await rejectsWith(enclave.execute(task.taskId, { sellerCount: -1 }), 'InvalidRequestError')
  assert.equal((await enclave.tasks()).find(t => t.taskId === task.taskId)?.sellers, [])
})

test('execute waits for every seller: an incomplete input is not run', async () => {
  const task = await buyerSetup(enclave, code)
  await sellerDeliver(enclave, task, 0, data)
  await rejectsWith(enclave.execute(task.taskId, { sellerCount: 2 }), 'TaskStateError')
})

test.run()
