// The example analyses give the right answers (checked against plain TypeScript) in both builds,
// and results are identical byte for byte across runs and across two enclave instances.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { hexlify } from 'ethers'
import { inputHashOf, ResultStatus } from '../../../contracts/formats.ts'
import { groupKeyOf } from '../../helpers/dtmc-checks.ts'
import { datasetCommitment, decryptResult, openResult } from '../../../enclave/index.ts'
import type { EnclaveHost, ExecuteResponse } from '../../../enclave/index.ts'
import { ALL_ANALYSES, referenceOutput, sampleDataset } from '../../../enclave/examples.ts'
import { artifactCode, buyerSetup, random32, sellerDeliver, startEnclave } from '../../helpers/enclave.ts'

let a: EnclaveHost
let b: EnclaveHost
// Two sellers; the second dataset has CRLF line ends, a blank line and no final newline.
const seller0 = sampleDataset(1500, 7)
const seller1 = new TextEncoder().encode(new TextDecoder().decode(sampleDataset(400, 9)).replace(/\n/g, '\r\n').replace(/\r\n$/, '').replace('\r\n5,', '\r\n\r\n5,'))
const inputs = [seller0, seller1]
/** The sellers' commitment salts: fixed, so that the test can compute the input hash the enclave reports. */
const salts = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)]

test.before(async () => {
  a = await startEnclave()
  b = await startEnclave({ platformSecret: new Uint8Array(32).fill(7) })
})
test.after(async () => {
  await a?.close()
  await b?.close()
})

async function run (enclave: EnclaveHost, name: string, tradeId = random32()): Promise<{ r: ExecuteResponse, output: Uint8Array, gasUsed: bigint }> {
  const task = await buyerSetup(enclave, artifactCode(name), {}, tradeId)
  await sellerDeliver(enclave, task, 0, seller0, undefined, salts[0])
  await sellerDeliver(enclave, task, 1, seller1, 1000, salts[1])
  const r = await enclave.execute(task.taskId, { sellerCount: 2 })
  assert.is(r.resultInfo.status, ResultStatus.Ok, `${name}: ${r.reason}`)
  const { output, gasUsed } = openResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt: task.resultSalt })
  return { r, output, gasUsed }
}

for (const analysis of ALL_ANALYSES) {
  test(`${analysis}: both builds give the TypeScript answer, identically on two enclaves`, async () => {
    const expected = hexlify(referenceOutput(analysis, inputs))
    const tradeId = random32()
    const plain = await run(a, `${analysis}Plain`, tradeId)
    const fast = await run(a, `${analysis}Fast`, tradeId)
    assert.is(hexlify(plain.output), expected)
    assert.is(hexlify(fast.output), expected)
    assert.ok(fast.gasUsed < plain.gasUsed, 'precompiles use less gas')
    assert.is(plain.r.resultInfo.inputHash, inputHashOf(inputs.map((data, i) => datasetCommitment(data, salts[i]))))
    assert.is(plain.r.inputSize, seller0.length + seller1.length)

    // The same task on another enclave instance (another platform, another task key): same group key.
    const again = await run(b, `${analysis}Fast`, tradeId)
    assert.is(hexlify(again.output), expected)
    assert.is.not(again.r.resultInfo.taskId, fast.r.resultInfo.taskId)
    assert.is(groupKeyOf(again.r.resultInfo), groupKeyOf(fast.r.resultInfo))
    const againPlain = await run(b, `${analysis}Plain`, tradeId)
    assert.is(groupKeyOf(againPlain.r.resultInfo), groupKeyOf(plain.r.resultInfo))
  })
}

test('with one seller (the precompile builds take a shorter path), both builds still agree with TypeScript', async () => {
  for (const analysis of ALL_ANALYSES) {
    const expected = hexlify(referenceOutput(analysis, [seller1]))
    for (const build of ['Plain', 'Fast']) {
      const task = await buyerSetup(a, artifactCode(analysis + build))
      await sellerDeliver(a, task, 0, seller1)
      const r = await a.execute(task.taskId)
      assert.is(r.resultInfo.status, ResultStatus.Ok, `${analysis}${build}: ${r.reason}`)
      const output = decryptResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt: task.resultSalt })
      assert.is(hexlify(output), expected, analysis + build)
    }
  }
})

test('the test-only fault switch signs a wrong output: another group key, a valid signature', async () => {
  const faulty = await startEnclave({ faultWrongResult: true })
  try {
    const tradeId = random32()
    const honest = await run(a, 'StatsFast', tradeId)
    const wrong = await run(faulty, 'StatsFast', tradeId)
    assert.is(faulty.measurement, a.measurement, 'the fault is not visible in the measurement')
    assert.is.not(groupKeyOf(wrong.r.resultInfo), groupKeyOf(honest.r.resultInfo))
    assert.is(wrong.output.length, honest.output.length)
  } finally {
    await faulty.close()
  }
})

test('execute is idempotent: a second call returns the same signed result', async () => {
  const task = await buyerSetup(a, artifactCode('StatsFast'))
  await sellerDeliver(a, task, 0, seller0)
  const r1 = await a.execute(task.taskId)
  const r2 = await a.execute(task.taskId)
  assert.equal(r2.resultInfo, r1.resultInfo)
  assert.is(r2.signature, r1.signature)
  assert.is(hexlify(r2.encryptedResult), hexlify(r1.encryptedResult))
})

test.run()
