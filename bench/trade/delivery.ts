// One seller's delivery into one node's enclave, in this process, without the network: the seller's part
// (encryptChunk and signChunk of every chunk at the tree's DEFAULT_CHUNK_SIZE, as daemon/roles/seller does)
// and the node's (createEnclave's deliverData into the daemon's level store, daemon/store.ts), then the run's
// read back of the sealed chunks (the worker's loadPlaintext, through a StatsFast execute on the same bytes).
// Wall time and CPU time (process.cpuUsage: every thread of the process, the enclave worker included), which
// the other work on a shared machine disturbs less than wall time. Prints a Markdown table.
//
//   node bench/trade/delivery.ts [--mib N] [--repeats N]
//
// For a before/after, copy it into the other tree and run both one after the other.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { Wallet, getBytes, hexlify, keccak256 } from 'ethers'
import { loadArtifact } from '../../contracts/tools/compile.ts'
import { tradeIdOf } from '../../contracts/formats.ts'
import { createEnclave, encryptCodeForEnclave, signCodeDelivery, wrapDataKey, signDataKeyDelivery, signChunk, signReceiptAck, encryptChunk, datasetCommitment, generateKeyPair } from '../../enclave/index.ts'
import { DEFAULT_CHUNK_SIZE } from '../../enclave/constants.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { Store } from '../../daemon/store.ts'

const { values } = parseArgs({ options: { mib: { type: 'string', default: '64' }, repeats: { type: 'string', default: '3' } } })
const MiB = 1024 * 1024
const REPEATS = Number(values.repeats)

/** The sample CSV (what a seller sells) of about `bytes`. */
function csvOfSize (bytes: number): Uint8Array {
  const probe = sampleDataset(1000, 1)
  const records = Math.max(1, Math.round(bytes / (probe.length / 1000)))
  return sampleDataset(Math.max(1, Math.round(records * bytes / sampleDataset(records, 1).length)), 1)
}

const cpu = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }

async function once (plain: Uint8Array): Promise<{ deliverWall: number, deliverCpu: number, runWall: number, runCpu: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-bench-delivery-'))
  const store = await Store.open(dir)
  const root = Wallet.createRandom()
  const domain = { chainId: 31337n, verifyingContract: Wallet.createRandom().address }
  const enclave = await createEnclave({ attestationKey: root.privateKey, domain, operator: Wallet.createRandom().address, platformSecret: randomBytes(32), store: store.sealed })
  try {
    const code = getBytes(loadArtifact('StatsFast').deployedBytecode)
    const buyer = Wallet.createRandom()
    const salt = hexlify(randomBytes(32))
    const a = await enclave.attest({ tradeId: tradeIdOf(buyer.address, salt), codeHash: keccak256(code), nonce: hexlify(randomBytes(32)) })
    const envelope = encryptCodeForEnclave(a.enclavePublicKey, a.taskId, { code, resultPublicKey: generateKeyPair().publicKey, resultSalt: hexlify(randomBytes(32)) })
    await enclave.deliverCode(a.taskId, envelope, { salt, signature: signCodeDelivery(buyer.privateKey, domain, a.taskId, envelope) })
    const seller = Wallet.createRandom()
    const key = randomBytes(32)
    const commitmentSalt = randomBytes(32)
    const commitment = datasetCommitment(plain, commitmentSalt)
    const wrappedKey = wrapDataKey(a.enclavePublicKey, a.taskId, 0, { key, commitment, commitmentSalt, size: plain.length })
    const chunks = Math.max(1, Math.ceil(plain.length / DEFAULT_CHUNK_SIZE))
    // As the seller: each chunk encrypted and signed when the stream asks for it.
    async function * stream (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < chunks; i++) {
        yield signChunk(seller.privateKey, domain, a.taskId, 0, wrappedKey, encryptChunk(key, commitment, i, i === chunks - 1, plain.subarray(i * DEFAULT_CHUNK_SIZE, (i + 1) * DEFAULT_CHUNK_SIZE)))
      }
    }
    let c0 = cpu()
    let t0 = performance.now()
    const status = await enclave.deliverData(a.taskId, { sellerIndex: 0, commitment, wrappedKey, sellerSignature: signDataKeyDelivery(seller.privateKey, domain, a.taskId, 0, commitment, wrappedKey), chunks: stream() })
    const deliverWall = (performance.now() - t0) / 1000
    const deliverCpu = cpu() - c0
    if (!status.complete || status.receipt === undefined) throw new Error('the delivery did not complete')
    // The run reads the sealed chunks back (and runs StatsFast in its own thread, which the CPU figure includes).
    await enclave.ackReceipt(a.taskId, 0, signReceiptAck(seller.privateKey, domain, { tradeId: tradeIdOf(buyer.address, salt), taskId: a.taskId, sellerIndex: 0, commitment, seller: seller.address }))
    c0 = cpu()
    t0 = performance.now()
    const r = await enclave.execute(a.taskId)
    const runWall = (performance.now() - t0) / 1000
    const runCpu = cpu() - c0
    if (r.resultInfo.status !== 0) throw new Error(`run ended with status ${r.resultInfo.status}`)
    return { deliverWall, deliverCpu, runWall, runCpu }
  } finally {
    await enclave.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const plain = csvOfSize(Number(values.mib) * MiB)
console.log(`${plain.length} bytes of the sample CSV in ${DEFAULT_CHUNK_SIZE / 1024} KiB chunks, load average ${loadavg().map(x => x.toFixed(1)).join(' ')} at the start`)
console.log('| run | deliver wall s | deliver CPU s | execute wall s | execute CPU s |')
console.log('|---|---:|---:|---:|---:|')
for (let i = 0; i < REPEATS; i++) {
  const r = await once(plain)
  console.log(`| ${i + 1} | ${r.deliverWall.toFixed(2)} | ${r.deliverCpu.toFixed(2)} | ${r.runWall.toFixed(2)} | ${r.runCpu.toFixed(2)} |`)
}
console.log(`load average ${loadavg().map(x => x.toFixed(1)).join(' ')} at the end`)
