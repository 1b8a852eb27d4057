// The confined EVM: forbidden opcodes, endless loops and oversize outputs stop with their status,
// and the signed result info says so.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getBytes } from 'ethers'
import { recoverDigest, resultDigestOf, ResultStatus } from '../../../contracts/formats.ts'
import { encodeAnalyzeCall, runAnalysis } from '../../../enclave/evm.ts'
import { encryptDataset, openDiagnosis, wrapDataKey } from '../../../enclave/index.ts'
import type { EnclaveHost, ExecuteResponse, RunDiagnosis } from '../../../enclave/index.ts'
import { sampleDataset } from '../../../enclave/examples.ts'
import { buyerSetup, deliverSigned, domain, rejectsWith, sellerDeliver, startEnclave } from '../../helpers/enclave.ts'

const hex = (s: string): Uint8Array => getBytes('0x' + s.replace(/\s+/g, ''))
// Returns abi.encode(bytes("")) : mstore(0, 0x20) mstore(0x20, 0) return(0, 0x40)
const RETURN_EMPTY = '6020600052 6000602052 60406000f3'
const PROGRAMS: Record<string, { code: string, status: number, reason?: string }> = {
  CALL: { code: '60006000600060006000 611234 5a f1 00', status: ResultStatus.Forbidden, reason: 'CALL' },
  CALLCODE: { code: '60006000600060006000611234 5a f2 00', status: ResultStatus.Forbidden, reason: 'CALLCODE' },
  DELEGATECALL: { code: '600060006000600061 1234 5a f4 00', status: ResultStatus.Forbidden, reason: 'DELEGATECALL' },
  CREATE: { code: '600060006000 f0 00', status: ResultStatus.Forbidden, reason: 'CREATE' },
  CREATE2: { code: '6000600060006000 f5 00', status: ResultStatus.Forbidden, reason: 'CREATE2' },
  SELFDESTRUCT: { code: '6000 ff', status: ResultStatus.Forbidden, reason: 'SELFDESTRUCT' },
  SSTORE: { code: '60016000 55 00', status: ResultStatus.Forbidden, reason: 'SSTORE' },
  TSTORE: { code: '60016000 5d 00', status: ResultStatus.Forbidden, reason: 'TSTORE' },
  'STATICCALL to a contract address': { code: '600060006000600061 1234 5a fa 00', status: ResultStatus.Forbidden, reason: 'STATICCALL' },
  'STATICCALL to identity (0x04), allowed': { code: '6000600060006000 6004 5a fa 50 ' + RETURN_EMPTY, status: ResultStatus.Ok },
  // Standard precompiles whose worst input costs far more CPU per gas than the rest (evm.ts, STANDARD_PRECOMPILE_GAS_FACTOR).
  'STATICCALL to modexp (0x05), refused': { code: '6000600060006000 6005 5a fa 00', status: ResultStatus.Forbidden, reason: 'STATICCALL' },
  'STATICCALL to bn254 pairing (0x08), refused': { code: '6000600060006000 6008 5a fa 00', status: ResultStatus.Forbidden, reason: 'STATICCALL' },
  'STATICCALL to blake2f (0x09), refused': { code: '6000600060006000 6009 5a fa 00', status: ResultStatus.Forbidden, reason: 'STATICCALL' },
  'STATICCALL to an analytics precompile, allowed': { code: '6000600060006000 610a01 5a fa 50 ' + RETURN_EMPTY, status: ResultStatus.Ok },
  'SLOAD and LOG0 (read-only, logs dropped), allowed': { code: '6000 54 50 60006000 a0 ' + RETURN_EMPTY, status: ResultStatus.Ok },
  'an endless loop': { code: '5b 6000 56', status: ResultStatus.OutOfGas },
  REVERT: { code: '60006000 fd', status: ResultStatus.Reverted },
  'return data that is not abi bytes': { code: '60006000 f3', status: ResultStatus.Reverted }
}

const input = [sampleDataset(50)]
for (const [name, p] of Object.entries(PROGRAMS)) {
  test(`${name}: status ${p.status}`, async () => {
    const r = await runAnalysis(hex(p.code), input, { gasCap: 200_000n, outputCap: 1000n })
    assert.is(r.status, p.status, r.reason)
    if (p.reason !== undefined) assert.is(r.reason, p.reason)
    if (p.status === ResultStatus.Forbidden) {
      // The refused opcode and its program counter: the last opcode before the trailing STOP (or the only one, SELFDESTRUCT).
      const bytes = hex(p.code)
      const pc = bytes.at(-1) === 0 ? bytes.length - 2 : bytes.length - 1
      assert.equal({ opcode: r.opcode, pc: r.pc }, { opcode: p.reason, pc })
    }
    if (p.status === ResultStatus.Forbidden || p.status === ResultStatus.OutOfGas) assert.is(r.gasUsed, 200_000n)
    if (p.status !== ResultStatus.Ok) assert.is(r.output.length, 0)
  })
}

test('memory beyond MAX_EVM_MEMORY halts as out of gas even when the gas would pay for it', async () => {
  // mstore(0x44000000, 1): 1.06 GiB of memory costs about 1.3 Ggas under the enclave's pricing.
  const r = await runAnalysis(hex('6001 6344000000 52 00'), input, { gasCap: 2_000_000_000n, outputCap: 10n })
  assert.is(r.status, ResultStatus.OutOfGas)
  assert.is(r.gasUsed, 2_000_000_000n)
})

test('CALLDATACOPY past the end of the call data zero-fills, as the EVM specifies', async () => {
  // mstore(0, 0x20) mstore(0x20, 0x40) calldatacopy(0x40, calldatasize, 0x40) return(0, 0x80)
  const r = await runAnalysis(hex('6020600052 6040602052 6040 36 6040 37 60806000f3'), input, { gasCap: 100_000n, outputCap: 100n })
  assert.is(r.status, ResultStatus.Ok, r.reason)
  assert.equal([...r.output], new Array(64).fill(0))
})

// Echoes its whole call data (all sellers' raw data) as the output: the "bug" of the SDTE notes.
// mstore(0, 0x20) mstore(0x20, calldatasize) calldatacopy(0x40, 0, calldatasize) return(0, calldatasize + 0x40)
const EXFILTRATE = hex('6020600052 36602052 3660006040 37 36604001 6000 f3')

let enclave: EnclaveHost
test.before(async () => { enclave = await startEnclave() })
test.after(async () => { await enclave?.close() })

async function signedRun (code: Uint8Array, caps: { gasCap?: bigint, outputCap?: bigint }, sellerCap?: bigint): Promise<ExecuteResponse & { diagnosis?: RunDiagnosis }> {
  const task = await buyerSetup(enclave, code, caps)
  if (sellerCap === undefined) await sellerDeliver(enclave, task, 0, input[0])
  else {
    const ds = encryptDataset(input[0])
    await deliverSigned(enclave, task.taskId, { sellerIndex: 0, commitment: ds.commitment, wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size, outputCap: sellerCap }), chunks: ds.chunks })
  }
  const r = await enclave.execute(task.taskId)
  assert.is(recoverDigest(resultDigestOf(domain, r.resultInfo), r.signature).toLowerCase(), task.enclaveAddress, 'signed by the task key')
  if (r.resultInfo.status === ResultStatus.Ok) {
    assert.is(r.encryptedDiagnosis.length, 0)
    return r
  }
  // Why it stopped, for the buyer only: it opens with the buyer's result key and is signed by the task key.
  const diagnosis = openDiagnosis(r.encryptedDiagnosis, task.resultKey.privateKey, { taskId: task.taskId, enclaveAddress: task.enclaveAddress })
  assert.throws(() => openDiagnosis(r.encryptedDiagnosis, task.resultKey.privateKey, { taskId: task.taskId, enclaveAddress: '0x' + '11'.repeat(20) }), /not signed by the task's enclave/)
  assert.is(diagnosis.status, r.resultInfo.status)
  return { ...r, diagnosis }
}

test('raw-data exfiltration over the output cap stops with OutputOverCap, signed, with no output', async () => {
  const r = await signedRun(EXFILTRATE, { outputCap: 256n })
  assert.is(r.resultInfo.status, ResultStatus.OutputOverCap)
  assert.is(r.resultInfo.resultSize, 0n)
  assert.is(r.encryptedResult.length, 0)
  // The host hears the status; the buyer learns the size the run returned (it depends on the data).
  assert.is(r.reason, 'output over the cap')
  assert.equal([r.diagnosis?.outputSize, r.diagnosis?.outputCap], [encodeAnalyzeCall(input).length, '256'], 'the whole call data came back')
  // Within a large enough cap the same code runs (and the buyer pays per output byte on DTMC).
  const ok = await signedRun(EXFILTRATE, { outputCap: 1_000_000n })
  assert.is(ok.resultInfo.status, ResultStatus.Ok)
  assert.ok(ok.resultInfo.resultSize > BigInt(input[0].length))
})

test("a seller's lower output cap holds even when the buyer asks for more", async () => {
  const r = await signedRun(EXFILTRATE, { outputCap: 1_000_000n }, 100n)
  assert.is(r.resultInfo.status, ResultStatus.OutputOverCap)
  assert.is(r.outputCap, 100n)
})

test('forbidden opcodes and endless loops: the signed result info says so', async () => {
  const call = await signedRun(hex(PROGRAMS.CALL.code), { gasCap: 300_000n })
  assert.is(call.resultInfo.status, ResultStatus.Forbidden)
  // The host hears only the status in words (which opcode the data led to is a channel); the buyer hears which and where.
  assert.is(call.reason, 'forbidden opcode')
  assert.equal([call.diagnosis?.opcode, call.diagnosis?.pc, call.diagnosis?.gasUsed, call.diagnosis?.gasCap], ['CALL', 14, '300000', '300000'])
  for (const [name, pc] of [['CREATE', 6], ['SELFDESTRUCT', 2], ['SSTORE', 4]] as const) {
    const r = await signedRun(hex(PROGRAMS[name].code), { gasCap: 300_000n })
    assert.is(r.resultInfo.status, ResultStatus.Forbidden, name)
    assert.is(r.reason, 'forbidden opcode')
    assert.equal([r.diagnosis?.opcode, r.diagnosis?.pc], [name, pc])
  }
  const loop = await signedRun(hex(PROGRAMS['an endless loop'].code), { gasCap: 2_000_000n })
  assert.is(loop.resultInfo.status, ResultStatus.OutOfGas)
  assert.is(loop.resultInfo.resultSize, 0n)
  assert.equal([loop.reason, loop.diagnosis?.gasUsed, loop.diagnosis?.gasCap], ['out of gas', '2000000', '2000000'])
})

test('the run uses exactly the buyer\'s gas cap: a node can neither raise nor lower it', async () => {
  const task = await buyerSetup(enclave, hex(PROGRAMS['an endless loop'].code), { gasCap: 500_000n })
  await sellerDeliver(enclave, task, 0, input[0])
  await rejectsWith(enclave.execute(task.taskId, { gasCap: 10_000_000n }), 'CapMismatchError')
  await rejectsWith(enclave.execute(task.taskId, { gasCap: 400_000n }), 'CapMismatchError')
  const r = await enclave.execute(task.taskId, { gasCap: 500_000n })
  assert.is(r.gasCap, 500_000n)
  assert.is(r.resultInfo.status, ResultStatus.OutOfGas)
})

test.run()
