// Sealed state: a worker killed mid-task restarts and continues the task from its sealed state;
// another enclave build or another platform cannot unseal it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { hexlify } from 'ethers'
import { ResultStatus } from '../../../contracts/formats.ts'
import { decryptResult, encryptDataset, MemoryBlobStore, verifyQuote, wrapDataKey } from '../../../enclave/index.ts'
import type { EnclaveHost } from '../../../enclave/index.ts'
import { referenceOutput, sampleDataset } from '../../../enclave/examples.ts'
import { DATA_CHUNKS_IN_FLIGHT } from '../../../enclave/constants.ts'
import { artifactCode, buyerSetup, deliverSigned, domain, nodeOperator, random32, rejectsWith, root, startEnclave } from '../../helpers/enclave.ts'

const data = sampleDataset(3000, 3)
const open: EnclaveHost[] = []
async function start (store: MemoryBlobStore, opts = {}): Promise<EnclaveHost> {
  const e = await startEnclave({ store, ...opts })
  open.push(e)
  return e
}
test.after(async () => { for (const e of open) await e.close() })

test('killed mid-delivery, the restarted enclave continues the task from its sealed state', async () => {
  const store = new MemoryBlobStore()
  const first = await start(store)
  const task = await buyerSetup(first, artifactCode('HistogramFast'))
  const ds = encryptDataset(data, { chunkSize: 1024 })
  const wrappedKey = wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
  const half = Math.floor(ds.chunks.length / 2)

  // The seller's stream reaches half way, then the worker dies in the middle of the delivery.
  async function * stream () {
    for (let i = 0; i < ds.chunks.length; i++) {
      if (i === half) {
        await first.close()
      }
      yield ds.chunks[i]
    }
  }
  await rejectsWith(deliverSigned(first, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks: stream() }), 'EnclaveClosedError')
  await rejectsWith(first.tasks(), 'EnclaveClosedError')

  const second = await start(store)
  assert.is(second.measurement, first.measurement)
  const [resumed] = await second.resume()
  assert.is(resumed.taskId, task.taskId)
  assert.ok(resumed.hasCode, 'code survived')
  // The host posts up to DATA_CHUNKS_IN_FLIGHT chunks ahead of the worker's answers: when the stream reached `half`,
  // every chunk before the last DATA_CHUNKS_IN_FLIGHT - 1 was acknowledged, and those must have survived.
  const held = resumed.sellers[0].nextChunk
  assert.ok(held >= half - (DATA_CHUNKS_IN_FLIGHT - 1) && held <= half, `every acknowledged chunk survived (${held} of ${half} sent)`)
  assert.not.ok(resumed.sellers[0].complete)

  // The seller attests the same task again after the restart (same key, fresh quote) ...
  const nonce = random32()
  const q = await second.attest({ tradeId: task.tradeId, codeHash: task.codeHash, nonce })
  assert.is(q.taskId, task.taskId)
  verifyQuote(q.quote, { domain, expectedRoot: root.address, acceptedMeasurements: [second.measurement], tradeId: task.tradeId, codeHash: task.codeHash, nonce, enclaveAddress: task.enclaveAddress, taskId: task.taskId, enclavePublicKey: q.enclavePublicKey, operator: nodeOperator.address })
  // ... and sends the rest (chunks the enclave already holds are skipped).
  const st = await deliverSigned(second, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey, chunks: ds.chunks.slice(held) })
  assert.ok(st.complete)
  const r = await second.execute(task.taskId)
  assert.is(r.resultInfo.status, ResultStatus.Ok)
  const out = decryptResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt: task.resultSalt })
  assert.is(hexlify(out), hexlify(referenceOutput('Histogram', [data])))
})

test('killed mid-execution, the restarted enclave runs the task again to the same result', async () => {
  const store = new MemoryBlobStore()
  const first = await start(store)
  const task = await buyerSetup(first, artifactCode('StatsPlain'))
  const ds = encryptDataset(data)
  await deliverSigned(first, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size }), chunks: ds.chunks })
  // Caught at once: the rejection arrives while close() runs, before anything awaits it.
  const running = first.execute(task.taskId).then(() => undefined, (err: Error) => err)
  await new Promise(resolve => setTimeout(resolve, 150))
  await first.close()
  assert.is((await running)?.name, 'EnclaveClosedError')

  const second = await start(store)
  const [resumed] = await second.resume()
  assert.ok(resumed.sellers[0].complete)
  assert.not.ok(resumed.executed)
  const r = await second.execute(task.taskId)
  assert.is(r.resultInfo.status, ResultStatus.Ok)
  const out = decryptResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt: task.resultSalt })
  assert.is(hexlify(out), hexlify(referenceOutput('Stats', [data])))

  // The result itself is sealed: a third start returns the same signed result without running.
  await second.close()
  const third = await start(store)
  const again = await third.execute(task.taskId)
  assert.equal(again.resultInfo, r.resultInfo)
  assert.is(again.signature, r.signature)
})

test('an execution over the host\'s timeout fails, but stops nothing: the run finishes and is sealed; a new enclave resumes it', async () => {
  const store = new MemoryBlobStore()
  const first = await start(store, { executeTimeoutMs: 100 })
  const task = await buyerSetup(first, artifactCode('LinearFitPlain'))
  const ds = encryptDataset(data)
  await deliverSigned(first, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size }), chunks: ds.chunks })
  await rejectsWith(first.execute(task.taskId), 'EnclaveTimeoutError')
  // The run goes on in its own thread, and the worker still answers; the run's result gets sealed.
  for (;;) {
    const t = (await first.tasks()).find(x => x.taskId === task.taskId)
    if (t?.executed === true) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  await first.close()
  const second = await start(store)
  const r = await second.execute(task.taskId)
  assert.is(r.resultInfo.status, ResultStatus.Ok)
  const out = decryptResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt: task.resultSalt })
  assert.is(hexlify(out), hexlify(referenceOutput('LinearFit', [data])))
  await second.close()
})

test('another enclave build, or another platform, cannot unseal the state', async () => {
  const store = new MemoryBlobStore()
  const first = await start(store)
  const task = await buyerSetup(first, artifactCode('StatsFast'))
  await first.close()
  const otherBuild = await start(store, { variant: 'patched build' })
  assert.equal(await otherBuild.resume(), [])
  await otherBuild.close()
  // Same build on another platform: its sealed index does not unseal, and the enclave says so at start.
  await rejectsWith(start(store, { platformSecret: new Uint8Array(32).fill(9) }), 'UnsealError')
  const same = await start(store)
  assert.equal((await same.resume()).map(t => t.taskId), [task.taskId])
  // Blobs copied into another build's place do not unseal there.
  const otherPrefix = `enclave/${otherBuild.measurement.slice(2)}/`
  for (const [key, blob] of [...store.blobs]) {
    if (key.startsWith(`enclave/${same.measurement.slice(2)}/`)) await store.put(otherPrefix + key.split('/').slice(2).join('/'), blob)
  }
  await rejectsWith(start(store, { variant: 'patched build' }), 'UnsealError')
  // A blob moved to another slot by the host does not unseal there either.
  const mine = `enclave/${same.measurement.slice(2)}/`
  const codeBlob = await store.get(`${mine}code/${task.taskId}`)
  await store.put(`${mine}task/${task.taskId}`, codeBlob!)
  await same.close()
  const moved = await start(store)
  assert.equal(await moved.resume(), [])
})

test('a store that fails a write fails the request, and no half-made task is handed out', async () => {
  const store = new MemoryBlobStore()
  const e = await start(store)
  const realPut = store.put.bind(store)
  store.put = async (key, blob) => { if (key.endsWith('/index')) throw new Error('disk full'); await realPut(key, blob) }
  const err = await rejectsWith(e.attest({ tradeId: random32(), codeHash: random32(), nonce: random32() }), 'EnclaveError')
  assert.match(err.message, /disk full/)
  assert.equal(await e.tasks(), [])
  store.put = realPut
  await e.attest({ tradeId: random32(), codeHash: random32(), nonce: random32() })
  assert.is((await e.tasks()).length, 1)
})

test('dropTask deletes the sealed state of a task', async () => {
  const store = new MemoryBlobStore()
  const e = await start(store)
  const task = await buyerSetup(e, artifactCode('StatsFast'))
  const ds = encryptDataset(data, { chunkSize: 8192 })
  await deliverSigned(e, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size }), chunks: ds.chunks })
  await e.dropTask(task.taskId)
  assert.equal([...store.blobs.keys()], [`enclave/${e.measurement.slice(2)}/index`])
  assert.equal(await e.tasks(), [])
})

test.run()
