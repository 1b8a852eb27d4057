// Attack (issue 15, differential-privacy mode): a seller opens its dataset to any analysis under a privacy budget,
// and the buyer's analysis simply returns what it was given. Before the private mode the enclave handed every
// analysis the sellers' plaintext as call data, so this analysis got the raw records back, byte for byte (run before
// the change: the output held "id,value,x,y" and every record). Now a delivery whose wrapped key carries privacy
// terms runs only in the private mode: the call data holds no input, the only way to the records is the private
// precompiles (noisy, clamped), and a host that asks for an ordinary run of such data is refused.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getBytes } from 'ethers'
import { decryptResult, encryptDataset, wrapDataKey, type EnclaveHost } from '../../enclave/index.ts'
import { buyerSetup, deliverSigned, random32, rejectsWith, startEnclave } from '../helpers/enclave.ts'

// analyze(bytes[]) that returns abi.encode(bytes msg.data): all the call data it was given.
const ECHO_CALLDATA = getBytes('0x36600060403760206000523660205236604001' + '6000f3')
const CSV = new TextEncoder().encode('id,value,x,y\n1,123456,7,8\n2,654321,9,10\n')
const terms = { secret: getBytes(random32()), epsilon: 1_000_000n, skipHeader: true, columns: [{ column: 1, decimals: 0, lo: 0n, hi: 1_000_000n }] }

let e: EnclaveHost
test.before(async () => { e = await startEnclave() })
test.after(async () => { await e?.close() })

async function privateTask () {
  const task = await buyerSetup(e, ECHO_CALLDATA)
  const ds = encryptDataset(CSV)
  await deliverSigned(e, task.taskId, {
    sellerIndex: 0,
    commitment: ds.commitment,
    wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size, privacy: terms }),
    chunks: ds.chunks
  })
  return task
}

const contains = (hay: Uint8Array, needle: Uint8Array): boolean => Buffer.from(hay).includes(Buffer.from(needle))

test('an analysis that returns its call data gets no record of a private dataset', async () => {
  const task = await privateTask()
  const r = await e.execute(task.taskId, { sellerCount: 1, privacy: { epsilon: terms.epsilon } })
  assert.is(r.resultInfo.status, 0, r.reason)
  const out = decryptResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt: task.resultSalt })
  assert.not.ok(contains(out, new TextEncoder().encode('123456')), 'a raw value reached the analysis')
  assert.not.ok(contains(out, new TextEncoder().encode('id,value')), 'the raw header reached the analysis')
  // What it got is analyze(bytes[]) with no input at all: selector, offset, length 0.
  assert.is(out.length, 4 + 64)
})

test('a host that asks for an ordinary (non-private) run of private data is refused', async () => {
  const task = await privateTask()
  await rejectsWith(e.execute(task.taskId, { sellerCount: 1 }), 'PrivacyMismatchError')
  await rejectsWith(e.execute(task.taskId, { sellerCount: 1, privacy: { epsilon: terms.epsilon * 2n } }), 'PrivacyMismatchError')
  await rejectsWith(e.execute(task.taskId, { sellerCount: 1, privacy: { epsilon: 'one' } }), 'InvalidRequestError')
  await rejectsWith(e.execute(task.taskId, { sellerCount: 1, privacy: { epsilon: 1.5 as unknown as bigint } }), 'InvalidRequestError')
  // The right epsilon, as a decimal string, runs it.
  assert.is((await e.execute(task.taskId, { sellerCount: 1, privacy: { epsilon: '1000000' } })).resultInfo.status, 0)
})

test.run()
