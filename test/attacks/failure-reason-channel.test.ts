// Attack (issue 14, failure reasons in words): the reason a run failed is a channel out of the data. An analysis
// that branches on the data to a CALL or to an SSTORE, at different positions, fails with status 3 either way;
// before the fix the enclave told its host which opcode it refused ('CALL' against 'SSTORE' in the execute
// response's `reason`, and in the node's log), and a diagnosis holding the opcode, its position and the gas
// used would tell it more still. Now the host hears the status in words only, and the diagnosis goes to the
// buyer encrypted, padded to DIAGNOSIS_PAD_BYTES (its length says nothing) and signed by the task key (a node
// cannot make one up).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbiCoder, getBytes, keccak256, toUtf8Bytes } from 'ethers'
import { ResultStatus } from '../../contracts/index.ts'
import { DIAGNOSIS_ENVELOPE_TAG, eciesEncrypt, generateKeyPair, openDiagnosis, type EnclaveHost, type RunDiagnosis } from '../../enclave/index.ts'
import { buyerSetup, random32, sellerDeliver, startEnclave } from '../helpers/enclave.ts'

// if (calldatasize > 0x200) CALL (at byte 29) else SSTORE (at byte 12):
//   CALLDATASIZE PUSH2 0x0200 LT PUSH1 0x0e JUMPI | PUSH1 1 PUSH1 0 SSTORE STOP | JUMPDEST 5×PUSH1 0 PUSH2 0x1234 GAS CALL STOP
const BRANCH_ON_SIZE = getBytes('0x' + '36' + '610200' + '10' + '600e' + '57' + '6001600055' + '00' + '5b' + '6000'.repeat(5) + '611234' + '5a' + 'f1' + '00')

let e: EnclaveHost
test.before(async () => { e = await startEnclave() })
test.after(async () => { await e?.close() })

test('what the host sees of two runs that fail at different opcodes, chosen by the data, is the same; the buyer learns which and where', async () => {
  const hostViews: Array<Record<string, unknown>> = []
  const diagnoses: RunDiagnosis[] = []
  for (const size of [100, 5000]) {
    const task = await buyerSetup(e, BRANCH_ON_SIZE, { gasCap: 300_000n, resultSalt: random32() })
    await sellerDeliver(e, task, 0, new Uint8Array(size).fill(65))
    const r = await e.execute(task.taskId, { sellerCount: 1 })
    assert.is(r.resultInfo.status, ResultStatus.Forbidden)
    const { tradeId: _t, taskId: _k, inputHash: _i, resultHash: _h, ...info } = r.resultInfo
    // Before the fix: reason was 'SSTORE' for one and 'CALL' for the other.
    hostViews.push({ info, reason: r.reason, result: r.encryptedResult.length, diagnosis: r.encryptedDiagnosis.length })
    diagnoses.push(openDiagnosis(r.encryptedDiagnosis, task.resultKey.privateKey, { taskId: task.taskId, enclaveAddress: task.enclaveAddress }))
  }
  assert.equal(hostViews[0], hostViews[1], 'the host tells the two runs apart')
  assert.is(hostViews[0].reason, 'forbidden opcode')
  assert.equal(diagnoses.map(d => [d.opcode, d.pc]), [['SSTORE', 12], ['CALL', 29]])
})

test('a node cannot make up a diagnosis: one not signed by the task\'s enclave is refused', async () => {
  const task = await buyerSetup(e, BRANCH_ON_SIZE, { gasCap: 300_000n })
  await sellerDeliver(e, task, 0, new Uint8Array(10))
  const real = await e.execute(task.taskId, { sellerCount: 1 })
  // The node knows the buyer's result public key only if it leaked, but ECIES alone would not stop it: the signature does.
  const forged = { diagnosis: { status: 3, gasUsed: '1', gasCap: '300000', outputCap: '0', opcode: 'CREATE', pc: 0 }, signature: '0x' + '11'.repeat(65) }
  const context = getBytes(AbiCoder.defaultAbiCoder().encode(['bytes32', 'bytes32'], [keccak256(toUtf8Bytes(DIAGNOSIS_ENVELOPE_TAG)), task.taskId]))
  const envelope = eciesEncrypt(task.resultKey.publicKey, toUtf8Bytes(JSON.stringify(forged)), context)
  assert.throws(() => openDiagnosis(envelope, task.resultKey.privateKey, { taskId: task.taskId, enclaveAddress: task.enclaveAddress }), /signature|not signed/)
  // Another task's diagnosis does not open as this one's, nor does one for another key.
  assert.throws(() => openDiagnosis(real.encryptedDiagnosis, generateKeyPair().privateKey, { taskId: task.taskId, enclaveAddress: task.enclaveAddress }), /does not open/)
  assert.throws(() => openDiagnosis(real.encryptedDiagnosis, task.resultKey.privateKey, { taskId: random32(), enclaveAddress: task.enclaveAddress }), /does not open/)
  assert.is(openDiagnosis(real.encryptedDiagnosis, task.resultKey.privateKey, { taskId: task.taskId, enclaveAddress: task.enclaveAddress }).opcode, 'SSTORE')
})

test.run()
