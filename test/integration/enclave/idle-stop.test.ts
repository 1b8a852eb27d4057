// idleStopMs (issue 13, a resting node without its enclave thread): the host stops the worker thread once it holds no
// task and no request came for that long, answers `tasks` without it, and starts it again on the next request from the
// sealed store; a thread holding a task is never stopped. Thread starts are counted by the store reads of the sealed
// index (each worker reads it once at its start), stops by the host's log line.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { hexlify } from 'ethers'
import { ResultStatus } from '../../../contracts/formats.ts'
import { createEnclave, decryptResult, encryptDataset, MemoryBlobStore, verifyQuote, wrapDataKey } from '../../../enclave/index.ts'
import type { ComponentLogger } from '../../../config/index.ts'
import type { EnclaveHost } from '../../../enclave/index.ts'
import { referenceOutput, sampleDataset } from '../../../enclave/examples.ts'
import { waitFor } from '../../../daemon/tools/child-daemons.ts'
import { artifactCode, buyerSetup, deliverSigned, domain, nodeOperator, platformSecret, random32, rejectsWith, root, startEnclave } from '../../helpers/enclave.ts'

/** Short, so the test is quick; the waits below are bounded conditions, not sleeps of this length. */
const IDLE_MS = 300
/** Far above IDLE_MS: what a loaded machine may take to stop or start a thread. */
const WAIT_MS = 30_000

/** A memory store that counts the reads of the sealed index: one per worker start. */
class CountingStore extends MemoryBlobStore {
  starts = 0
  override async get (key: string): Promise<Uint8Array | undefined> {
    if (key.endsWith('/index')) this.starts++
    return await super.get(key)
  }
}

function recordingLogger (onStop = (): void => {}): { logger: ComponentLogger, stops: () => number } {
  let stops = 0
  const drop = (): void => {}
  return {
    stops: () => stops,
    logger: {
      forComponent: (namespace) => ({
        namespace,
        error: drop,
        warn: drop,
        info: drop,
        debug: (msg) => { if (msg === 'enclave thread stopped while idle') { stops++; onStop() } },
        trace: drop,
        enabled: () => true
      })
    }
  }
}

const open: EnclaveHost[] = []
async function start (store: MemoryBlobStore, logger: ComponentLogger, opts = {}): Promise<EnclaveHost> {
  const e = await createEnclave({ attestationKey: root.privateKey, domain, operator: nodeOperator.address, platformSecret, store, idleStopMs: IDLE_MS, ...opts }, { logger })
  open.push(e)
  return e
}
test.after(async () => { for (const e of open) await e.close() })

test('an idle enclave without tasks stops its thread, answers tasks without it, and starts it again for a request', async () => {
  const store = new CountingStore()
  const log = recordingLogger()
  // onIdleStop: the daemon gives the stopped thread's memory back (daemon/memory.ts); told once per stop.
  let told = 0
  const e = await start(store, log.logger, { onIdleStop: () => { told++ } })
  assert.is(store.starts, 1)
  assert.is(told, 0)
  await waitFor('the idle thread to stop', () => log.stops() === 1, WAIT_MS, 20)
  assert.is(told, 1)
  // The node's tick asks for the tasks: no thread starts for that, and the answer is right (it stopped with none).
  assert.equal(await e.tasks(), [])
  assert.equal(await e.resume(), [])
  assert.is(store.starts, 1)

  // A quote request starts a thread on the same store: the same build, the same attestation root.
  const nonce = random32()
  const tradeId = random32()
  const codeHash = random32()
  const q = await e.attest({ tradeId, codeHash, nonce })
  assert.is(store.starts, 2)
  verifyQuote(q.quote, { domain, expectedRoot: root.address, acceptedMeasurements: [e.measurement], tradeId, codeHash, nonce, enclavePublicKey: q.enclavePublicKey, operator: nodeOperator.address })
  assert.is((await e.tasks()).length, 1)
  await e.dropTask(q.taskId)
  await waitFor('the thread to stop again', () => log.stops() === 2, WAIT_MS, 20)
  assert.equal(await e.tasks(), [])

  // warm() starts a stopped thread ahead of a request; unused, it stops again.
  e.warm()
  await waitFor('warm() to start the thread', () => store.starts === 3, WAIT_MS, 20)
  await waitFor('the warmed thread to stop', () => log.stops() === 3, WAIT_MS, 20)
  assert.is(store.starts, 3)
  assert.is(told, 3, 'onIdleStop once per stop')
})

test('a thread that holds a task is not stopped: the trade goes on to its result, then the thread stops', async () => {
  const store = new CountingStore()
  const log = recordingLogger()
  const e = await start(store, log.logger)
  const data = sampleDataset(2000, 3)
  const task = await buyerSetup(e, artifactCode('HistogramFast'))
  const starts = store.starts
  // Several idle periods pass with the task held: the tick's tasks() is no activity, and the one idle check that comes
  // finds the task and does not stop the thread (nor arms again: the task's next request does, when it ends).
  const until = Date.now() + 4 * IDLE_MS
  while (Date.now() < until) {
    assert.is((await e.tasks()).length, 1)
    await new Promise(resolve => setTimeout(resolve, IDLE_MS / 3))
  }
  assert.is(log.stops(), 0)
  const ds = encryptDataset(data, { chunkSize: 1024 })
  const st = await deliverSigned(e, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size }), chunks: ds.chunks })
  assert.ok(st.complete && st.acked)
  const r = await e.execute(task.taskId)
  assert.is(r.resultInfo.status, ResultStatus.Ok)
  const out = decryptResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt: task.resultSalt })
  assert.is(hexlify(out), hexlify(referenceOutput('Histogram', [data])))
  assert.is(store.starts, starts, 'one thread served the whole task')
  assert.is(log.stops(), 0)
  await e.dropTask(task.taskId)
  await waitFor('the thread to stop once the task is gone', () => log.stops() === 1, WAIT_MS, 20)
})

test('warm() on a running thread pushes back its idle stop as a request would', async () => {
  // A longer idle period than the other cases, so that warm() comes before the first stop even on a loaded machine;
  // when the first stop still came first, the case starts again on a new enclave (at most WARM_ATTEMPTS times).
  const idleMs = 4 * IDLE_MS
  const WARM_ATTEMPTS = 3
  for (let attempt = 1; ; attempt++) {
    const store = new CountingStore()
    let stoppedAt = 0
    const log = recordingLogger(() => { stoppedAt = Date.now() })
    const e = await start(store, log.logger, { idleStopMs: idleMs })
    // The idle timer was armed before createEnclave resolved: it fires at armedBy + idleMs at the earliest.
    const armedBy = Date.now()
    await waitFor('half an idle period', () => Date.now() >= armedBy + idleMs / 2, WAIT_MS, 10)
    if (log.stops() !== 0) {
      // The machine was too loaded for warm() to come first: this attempt proves nothing, it says so.
      console.log(`warm() attempt ${attempt}: the thread stopped before warm() was called (loaded machine)`)
      assert.ok(attempt < WARM_ATTEMPTS, `the thread stopped before warm() in all ${WARM_ATTEMPTS} attempts (machine overloaded)`)
      continue
    }
    const warmedAt = Date.now()
    e.warm()
    await waitFor('the warmed thread to stop', () => log.stops() === 1, WAIT_MS, 10)
    // A timer never fires early: a stop at or after warmedAt + idleMs came from the timer warm() armed, not the first.
    assert.ok(stoppedAt >= warmedAt + idleMs - 2, `stopped ${stoppedAt - warmedAt} ms after warm(), before a full idle period`)
    assert.is(store.starts, 1, 'warm() on a running thread starts no other')
    return
  }
})

test('a thread started again on a changed build is refused with EnclaveBuildChangedError, and the host stays closed', async () => {
  const store = new CountingStore()
  const log = recordingLogger()
  let build = ''
  const e = await start(store, log.logger, { variant: () => build })
  await waitFor('the idle thread to stop', () => log.stops() === 1, WAIT_MS, 20)
  build = 'changed on disk'
  await rejectsWith(e.attest({ tradeId: random32(), codeHash: random32(), nonce: random32() }), 'EnclaveBuildChangedError')
  assert.is(store.starts, 2, 'the changed build was started once, and compared')
  // Every later request fails the same way, without starting it again: the node must not take it for a lost enclave.
  await rejectsWith(e.tasks(), 'EnclaveBuildChangedError')
  await rejectsWith(e.attest({ tradeId: random32(), codeHash: random32(), nonce: random32() }), 'EnclaveBuildChangedError')
  e.warm()
  assert.is(store.starts, 2)
})

test('a closed enclave stays closed; idleStopMs must be a positive integer', async () => {
  const store = new CountingStore()
  const log = recordingLogger()
  const e = await start(store, log.logger)
  await waitFor('the idle thread to stop', () => log.stops() === 1, WAIT_MS, 20)
  await e.close()
  await rejectsWith(e.attest({ tradeId: random32(), codeHash: random32(), nonce: random32() }), 'EnclaveClosedError')
  e.warm()
  assert.is(store.starts, 1)
  for (const idleStopMs of [0, -1, 1.5, Number.NaN]) {
    await rejectsWith(startEnclave({ idleStopMs }), 'InvalidRequestError')
  }
})

test.run()
