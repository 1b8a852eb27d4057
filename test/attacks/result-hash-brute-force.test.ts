// Attack (issue 10, property 5): the public resultHash of a small output is found by brute force. Before the fix
// resultHash was keccak256(output), public in DTMC's events: anyone tried the 256 one-byte outputs. Run before
// the fix: "the output byte 164 was recovered from the public resultHash". Now resultHash = keccak256(resultSalt ‖
// output), the salt the buyer's secret, sent to the enclaves inside the encrypted code envelope: every enclave of
// the trade hashes alike (consensus still compares), nobody outside can test a guess, and the buyer checks the
// decrypted result with the same salt.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getBytes, keccak256 } from 'ethers'
import { resultHashOf } from '../../contracts/formats.ts'
import { decryptResult, type EnclaveHost } from '../../enclave/index.ts'
import { buyerSetup, random32, sellerDeliver, startEnclave } from '../helpers/enclave.ts'

// analyze(bytes[]) returning one byte that depends on the data: the low byte of CALLDATASIZE.
const ONE_BYTE_COUNT = getBytes('0x6020600052600160205236' + '60f81b604052' + '60606000f3')
const DATA = new TextEncoder().encode('a,b\n1,2\n3,4\n')
let a: EnclaveHost
let b: EnclaveHost
test.before(async () => {
  a = await startEnclave()
  b = await startEnclave({ platformSecret: new Uint8Array(32).fill(5) })
})
test.after(async () => { await a?.close(); await b?.close() })

test('nobody outside the trade finds a one-byte result from what goes on chain; the trade\'s enclaves still agree', async () => {
  const salt = random32()
  const runs = []
  for (const enclave of [a, b]) {
    const task = await buyerSetup(enclave, ONE_BYTE_COUNT, {}, salt)
    await sellerDeliver(enclave, task, 0, DATA)
    runs.push({ task, r: await enclave.execute(task.taskId, { sellerCount: 1 }) })
  }
  const pub = runs[0].r.resultInfo
  assert.is(pub.resultSize, 1n)
  // The attacker outside the trade: every one-byte output, hashed as before and with a salt of its own guess.
  let found: number | undefined
  for (let v = 0; v < 256; v++) {
    if (keccak256(Uint8Array.of(v)) === pub.resultHash || resultHashOf(random32(), Uint8Array.of(v)) === pub.resultHash) found = v
  }
  assert.is(found, undefined, `the output byte ${found} was recovered from the public resultHash`)
  // Consensus still works: both enclaves of the trade report the same hash.
  assert.is(runs[1].r.resultInfo.resultHash, pub.resultHash)
  // The buyer opens and checks it with its salt.
  const { task, r } = runs[0]
  const output = decryptResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: pub.resultHash, resultSalt: task.resultSalt })
  assert.is(output.length, 1)
  assert.is(resultHashOf(task.resultSalt, output), pub.resultHash)
})

test.run()
