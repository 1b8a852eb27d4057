// Attack (issue 10, property 1, the enclave half): the host of the buyer's chosen node takes the result the
// enclave hands out and keeps the seller's delivery receipt to itself, so the seller has nothing to claim its
// data fee with after the buyer lets the trade fail. Before the fix there was no receipt at all, and the
// enclave ran as soon as the data was in. Now the enclave signs a receipt when a seller's whole dataset
// matched its commitment and runs nothing until that seller has acknowledged it with the account that
// signed the data-key delivery: a host (or buyer) cannot forge the acknowledgement, so withholding the
// receipt withholds the result too.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { receiptDigestOf, recoverDigest, ResultStatus } from '../../contracts/formats.ts'
import { encryptDataset, signReceiptAck, wrapDataKey, type EnclaveHost } from '../../enclave/index.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { artifactCode, buyer, buyerSetup, domain, rejectsWith, seller, signedDelivery, startEnclave } from '../helpers/enclave.ts'

let enclave: EnclaveHost
const code = artifactCode('StatsFast')
const data = sampleDataset(500)

test.before(async () => { enclave = await startEnclave() })
test.after(async () => { await enclave?.close() })

test('the enclave runs nothing before the seller acknowledges its receipt, and only the seller can', async () => {
  const task = await buyerSetup(enclave, code)
  const ds = encryptDataset(data, { chunkSize: 4096 })
  const wrappedKey = wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
  const st = await enclave.deliverData(task.taskId, signedDelivery(task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks: ds.chunks }))
  assert.ok(st.complete)
  assert.is(st.acked, false)
  assert.is(st.seller, seller.address.toLowerCase())
  // The receipt is the task key's signature over this seller's delivery: what DTMC.claimDelivery checks.
  const digest = receiptDigestOf(domain, task.tradeId, task.taskId, 0, ds.commitment, seller.address)
  assert.is(recoverDigest(digest, st.receipt!).toLowerCase(), task.enclaveAddress)
  // The host kept the receipt: before the fix this ran and handed the host the buyer's encrypted result.
  await rejectsWith(enclave.execute(task.taskId), 'TaskStateError')
  const r = { tradeId: task.tradeId, taskId: task.taskId, sellerIndex: 0, commitment: ds.commitment, seller: seller.address }
  // Neither the buyer nor a host key can acknowledge in the seller's name.
  for (const forger of [buyer, new Wallet(Wallet.createRandom().privateKey)]) {
    await rejectsWith(enclave.ackReceipt(task.taskId, 0, signReceiptAck(forger.signingKey, domain, r)), 'ReceiptAckError')
  }
  await rejectsWith(enclave.execute(task.taskId), 'TaskStateError')
  // The seller acknowledges (it holds the receipt now): the task runs.
  const acked = await enclave.ackReceipt(task.taskId, 0, signReceiptAck(seller.signingKey, domain, r))
  assert.ok(acked.acked)
  assert.is((await enclave.execute(task.taskId)).resultInfo.status, ResultStatus.Ok)
})

test('a data-key delivery not signed by its sender is refused; an acknowledged delivery cannot be replaced', async () => {
  const task = await buyerSetup(enclave, code)
  const ds = encryptDataset(data, { chunkSize: 4096 })
  const wrappedKey = wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
  const d = signedDelivery(task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks: ds.chunks })
  await rejectsWith(enclave.deliverData(task.taskId, { ...d, sellerSignature: '0x' + '00'.repeat(65) }), 'DataKeyAuthorizationError')
  const st = await enclave.deliverData(task.taskId, d)
  const r = { tradeId: task.tradeId, taskId: task.taskId, sellerIndex: 0, commitment: ds.commitment, seller: seller.address }
  await enclave.ackReceipt(task.taskId, 0, signReceiptAck(seller.signingKey, domain, r))
  assert.ok(st.complete)
  // A host re-opening the slot with a key delivery of its own (so that it could acknowledge) is refused.
  const host = new Wallet(Wallet.createRandom().privateKey)
  const again = encryptDataset(data, { chunkSize: 4096 })
  const wk2 = wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: again.key, commitment: again.commitment, commitmentSalt: again.commitmentSalt, size: again.size })
  await rejectsWith(enclave.deliverData(task.taskId, signedDelivery(task.taskId, { sellerIndex: 0, commitment: again.commitment, wrappedKey: wk2, chunks: again.chunks }, host)), 'TaskStateError')
})

test.run()
