// The private mode on real enclave workers (docs/enclave.md "Private mode"): the example private analysis gets
// noisy answers near the truth; three enclaves of one trade agree bit for bit (the noise comes from the sellers'
// secrets and the trade id, not from the node); another trade gets other noise; the run's epsilon is enforced
// exactly; the gas used does not follow the number of records; ordinary runs are as before.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbiCoder, getBytes, hexlify } from 'ethers'
import { compileSources } from '../../../contracts/tools/compile.ts'
import { ResultStatus } from '../../../contracts/formats.ts'
import { encryptDataset, MemoryBlobStore, openResult, privacySecretOf, wrapDataKey } from '../../../enclave/index.ts'
import type { EnclaveHost, PrivacyTerms } from '../../../enclave/index.ts'
import { referenceOutput, sampleDataset } from '../../../enclave/examples.ts'
import { artifactCode, buyerSetup, deliverSigned, random32, rejectsWith, sellerDeliver, startEnclave, type BuyerTask } from '../../helpers/enclave.ts'

const abi = AbiCoder.defaultAbiCoder()
const EPSILON = 1_000_000n
const SELLER_MASTER = [getBytes('0x' + 'a1'.repeat(32)), getBytes('0x' + 'b2'.repeat(32))]
const datasets = [sampleDataset(1500, 7), sampleDataset(500, 9)]
/** The sample layout's ranges (enclave/examples.ts): value 0..1099, x -500..499, y = 3x + 7 ± 50. */
const COLUMNS = [
  { column: 1, decimals: 0, lo: 0n, hi: 1100n },
  { column: 2, decimals: 0, lo: -500n, hi: 500n },
  { column: 3, decimals: 0, lo: -1600n, hi: 1600n }
]
const termsOf = (seller: number, tradeId: string, epsilon = EPSILON): PrivacyTerms =>
  ({ secret: privacySecretOf(SELLER_MASTER[seller], tradeId), epsilon, skipHeader: true, columns: COLUMNS })

const enclaves: EnclaveHost[] = []
test.before(async () => {
  for (let i = 0; i < 3; i++) enclaves.push(await startEnclave({ platformSecret: new Uint8Array(32).fill(i + 1) }))
})
test.after(async () => { for (const e of enclaves) await e.close() })

async function deliverPrivate (e: EnclaveHost, task: BuyerTask, seller: number, data: Uint8Array, terms: PrivacyTerms): Promise<void> {
  const ds = encryptDataset(data, { chunkSize: 4096 })
  const st = await deliverSigned(e, task.taskId, {
    sellerIndex: seller,
    commitment: ds.commitment,
    wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, seller, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size, privacy: terms }),
    chunks: ds.chunks
  })
  assert.ok(st.complete && st.acked && st.private === true, 'the delivery is complete and marked private')
}

/** One private trade on enclave `e`: both sellers deliver with terms for the trade, the run spends `epsilon`. */
async function privateRun (e: EnclaveHost, code: Uint8Array, salt = random32(), data = datasets, epsilon = EPSILON) {
  const task = await buyerSetup(e, code, {}, salt)
  for (let i = 0; i < data.length; i++) await deliverPrivate(e, task, i, data[i], termsOf(i, task.tradeId, epsilon))
  const r = await e.execute(task.taskId, { sellerCount: data.length, privacy: { epsilon: String(epsilon) } })
  assert.is(r.resultInfo.status, ResultStatus.Ok, r.reason)
  return { r, ...openResult(r.encryptedResult, task.resultKey.privateKey, { taskId: task.taskId, resultHash: r.resultInfo.resultHash, resultSalt: task.resultSalt }) }
}

const STATS_TYPES = ['int256', 'int256', 'int256[]', 'int256', 'int256', 'int256', 'int256']

test('the example private analysis answers near the truth, not with it', async () => {
  const { output } = await privateRun(enclaves[0], artifactCode('PrivateStats'))
  const [count, mean, hist, median, n, slope, intercept] = abi.decode(STATS_TYPES, output).toArray() as [bigint, bigint, bigint[], bigint, bigint, bigint, bigint]
  const truth = abi.decode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'], referenceOutput('Stats', datasets)).toArray() as bigint[]
  const trueCounts = abi.decode(['uint256[]'], referenceOutput('Histogram', datasets))[0] as bigint[]
  const trueFit = abi.decode(['uint256', 'int256', 'int256'], referenceOutput('LinearFit', datasets)).toArray() as bigint[]
  // Bounds far beyond the noise (each at least 10 scales of its discrete Laplace, P < e^-10 per value) and far
  // below what would pass without the data. The seed is fixed, so this cannot flake; it checks the wiring.
  const near = (got: bigint, want: bigint, tol: bigint, what: string) => assert.ok((got > want ? got - want : want - got) <= tol, `${what}: ${got} vs ${want}`)
  near(count, 2000n, 100n, 'count (scale 10)')
  near(mean, truth[4], 30_000_000n, 'mean ×10^6 (count scale 10, sum scale 5500)')
  assert.is(hist.length, 10)
  hist.forEach((c, i) => near(c, trueCounts[i], 50n, `bucket ${i} (scale 5)`))
  near(median, 550n, 100n, 'median (uniform 0..1099)')
  near(n, 2000n, 170n, 'n (scale 16.7)')
  near(slope, trueFit[1], 1_000_000n, 'slope ×10^6 (true 3)')
  assert.not.equal([count, hist], [2000n, trueCounts], 'no noise at all')
  void intercept
})

test('three enclaves of one trade give bit-identical results; another trade gets other noise', async () => {
  const salt = random32()
  const runs = []
  for (const e of enclaves) runs.push(await privateRun(e, artifactCode('PrivateStats'), salt))
  assert.is(new Set(runs.map(r => hexlify(r.output))).size, 1, 'outputs differ across enclaves')
  assert.is(new Set(runs.map(r => r.r.resultInfo.resultHash)).size, 1, 'result hashes differ across enclaves')
  assert.is(new Set(runs.map(r => r.r.resultInfo.taskId)).size, 3, 'three different tasks')
  const other = await privateRun(enclaves[0], artifactCode('PrivateStats'))
  assert.is.not(hexlify(other.output), hexlify(runs[0].output), 'another trade drew the same noise')
})

// Probes of the budget: each calls privateCount with BIG micro-epsilon until a call fails, then with SMALL until one
// fails, and returns how many of each succeeded.
const probeSource = (name: string, big: number, small: number) => `
contract ${name} {
  function tryCount(uint256 eps) internal view returns (bool ok) { (ok,) = address(0x0a06).staticcall{gas: 1000000}(abi.encode(uint256(1), eps)); }
  function analyze(bytes[] calldata) external view returns (bytes memory) {
    uint256 a; uint256 b;
    while (a < 100 && tryCount(${big})) a++;
    while (b < 100 && tryCount(${small})) b++;
    return abi.encode(a, b);
  }
}`
const probes = Object.fromEntries(compileSources({
  'Probes.sol': '// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n' +
    probeSource('P300', 300_000, 100_000) + probeSource('P250', 250_000, 1) + probeSource('POver', 1_000_001, 1_000_000) + probeSource('PZero', 0, 400_000)
}).map(a => [a.contractName, getBytes(a.deployedBytecode)]))

test('the run\'s epsilon is enforced exactly: calls up to it succeed, the one over it fails and spends nothing', async () => {
  const expect: Record<string, [bigint, bigint]> = {
    P300: [3n, 1n], // 3 × 0.3 = 0.9 spent; the 4th (1.2) fails; 0.1 more fits exactly once
    P250: [4n, 0n], // 4 × 0.25 = 1.0: nothing is left, not even 1 micro-epsilon
    POver: [0n, 1n], // 1.000001 is over the run's 1.0 and spends nothing: 1.0 still fits
    PZero: [0n, 2n] // a call that spends nothing is refused; 2 × 0.4 = 0.8, a third 0.4 is over
  }
  for (const [name, want] of Object.entries(expect)) {
    const { output } = await privateRun(enclaves[0], probes[name], random32(), [datasets[1]])
    assert.equal(abi.decode(['uint256', 'uint256'], output).toArray(), want, name)
  }
})

test('the gas a private run uses depends on the input size, not on the number of records', async () => {
  // Same byte size: 400 records of 25 bytes against 200 records of 50 (zero-padded numbers).
  const rows = (n: number, width: number) => {
    let s = 'id,value,x,y\n'
    for (let i = 0; i < n; i++) {
      const pad = (v: number) => String(v).padStart((width - 4) / 4, '0')
      s += `${pad(i)},${pad(i % 1000)},${pad(i % 400)},${pad(i % 700)}\n`
    }
    return new TextEncoder().encode(s)
  }
  const a = rows(400, 28)
  const b = rows(200, 56)
  assert.is(a.length, b.length)
  const ga = (await privateRun(enclaves[1], artifactCode('PrivateStats'), random32(), [a])).gasUsed
  const gb = (await privateRun(enclaves[1], artifactCode('PrivateStats'), random32(), [b])).gasUsed
  assert.is(ga, gb)
})

test('a private trade with a seller without terms, or an ordinary run calling the private precompiles, is refused', async () => {
  const e = enclaves[2]
  const task = await buyerSetup(e, artifactCode('PrivateStats'))
  await deliverPrivate(e, task, 0, datasets[0], termsOf(0, task.tradeId))
  await sellerDeliver(e, task, 1, datasets[1])
  await rejectsWith(e.execute(task.taskId, { sellerCount: 2, privacy: { epsilon: EPSILON } }), 'PrivacyMismatchError')
  // An ordinary trade (no terms): the private precompiles are not there, and reaching for them is Forbidden.
  const plain = await buyerSetup(e, artifactCode('PrivateStats'))
  await sellerDeliver(e, plain, 0, datasets[0])
  await rejectsWith(e.execute(plain.taskId, { sellerCount: 1, privacy: { epsilon: EPSILON } }), 'PrivacyMismatchError')
  const r = await e.execute(plain.taskId, { sellerCount: 1 })
  assert.is(r.resultInfo.status, ResultStatus.Forbidden)
  // The host hears the status in words only (which opcode is in the buyer's encrypted diagnosis).
  assert.is(r.reason, 'forbidden opcode')
})

test('privacy terms are sealed with the delivery: after a restart the data still runs only privately, with the same noise', async () => {
  const store = new MemoryBlobStore()
  const platformSecret = new Uint8Array(32).fill(9)
  const salt = random32()
  let e = await startEnclave({ store, platformSecret })
  const task = await buyerSetup(e, artifactCode('PrivateStats'), {}, salt)
  for (let i = 0; i < 2; i++) await deliverPrivate(e, task, i, datasets[i], termsOf(i, task.tradeId))
  await e.close()
  e = await startEnclave({ store, platformSecret })
  try {
    const resumed = (await e.resume()).find(t => t.taskId === task.taskId)!
    assert.equal(resumed.sellers.map(x => x.private), [true, true])
    await rejectsWith(e.execute(task.taskId, { sellerCount: 2 }), 'PrivacyMismatchError')
    const r = await e.execute(task.taskId, { sellerCount: 2, privacy: { epsilon: EPSILON } })
    const same = await privateRun(enclaves[0], artifactCode('PrivateStats'), salt)
    assert.is(r.resultInfo.resultHash, same.r.resultInfo.resultHash, 'the restarted enclave drew other noise')
  } finally {
    await e.close()
  }
})

test.run()
