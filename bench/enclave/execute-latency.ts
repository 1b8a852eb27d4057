// The enclave's part of a small trade's execution phase (issue 13): `execute` of StatsFast on 1 KiB of the
// sample CSV through the enclave worker (the run's thread, the run, signing, sealing), each task with its
// code and data delivered just before, as a node gets them in a trade; with the default run budget (gas cap
// 1 Ggas, as bench/trade/latency.ts's trades). Prints the times; writes nothing.
//
//   node bench/enclave/execute-latency.ts [--repeats N] [--gap-ms MS]
//
// --gap-ms: wait this long between the data delivery and execute (default 500: in a trade the node executes
// after the seller's receipt ack and the chain hand-offs, well after the code arrived). For a before/after,
// run it on both trees, one after the other.
import { randomBytes } from 'node:crypto'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { Wallet, getBytes, hexlify, keccak256 } from 'ethers'
import { loadArtifact } from '../../contracts/tools/compile.ts'
import { tradeIdOf } from '../../contracts/formats.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import {
  createEnclave, encryptCodeForEnclave, encryptDataset, generateKeyPair, MemoryBlobStore, signChunk, signCodeDelivery, signDataKeyDelivery, signReceiptAck, wrapDataKey
} from '../../enclave/index.ts'

const { values: flags } = parseArgs({ options: { repeats: { type: 'string', default: '7' }, 'gap-ms': { type: 'string', default: '500' } } })
const REPEATS = Number(flags.repeats)
const GAP_MS = Number(flags['gap-ms'])

const load = loadavg()[0].toFixed(2)
const root = Wallet.createRandom()
const domain = { chainId: 31337n, verifyingContract: Wallet.createRandom().address }
const enclave = await createEnclave({ attestationKey: root.privateKey, domain, operator: Wallet.createRandom().address, platformSecret: randomBytes(32), store: new MemoryBlobStore() })
const code = getBytes(loadArtifact('StatsFast').deployedBytecode)
const data = sampleDataset(64, 1)
const times: number[] = []
try {
  for (let i = 0; i < REPEATS; i++) {
    const buyer = Wallet.createRandom()
    const seller = Wallet.createRandom()
    const salt = hexlify(randomBytes(32))
    const a = await enclave.attest({ tradeId: tradeIdOf(buyer.address, salt), codeHash: keccak256(code), nonce: hexlify(randomBytes(32)) })
    const envelope = encryptCodeForEnclave(a.enclavePublicKey, a.taskId, { code, resultPublicKey: generateKeyPair().publicKey, resultSalt: hexlify(randomBytes(32)) })
    await enclave.deliverCode(a.taskId, envelope, { salt, signature: signCodeDelivery(buyer.privateKey, domain, a.taskId, envelope) })
    const ds = encryptDataset(data, { chunkSize: 4096 })
    const wrappedKey = wrapDataKey(a.enclavePublicKey, a.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
    const st = await enclave.deliverData(a.taskId, {
      sellerIndex: 0, commitment: ds.commitment, wrappedKey, sellerSignature: signDataKeyDelivery(seller.privateKey, domain, a.taskId, 0, ds.commitment, wrappedKey),
      chunks: ds.chunks.map(c => signChunk(seller.privateKey, domain, a.taskId, 0, wrappedKey, c))
    })
    const tradeId = tradeIdOf(buyer.address, salt)
    await enclave.ackReceipt(a.taskId, 0, signReceiptAck(seller.privateKey, domain, { tradeId, taskId: a.taskId, sellerIndex: 0, commitment: st.commitment, seller: st.seller }))
    await new Promise(resolve => setTimeout(resolve, GAP_MS))
    const t = performance.now()
    const r = await enclave.execute(a.taskId)
    times.push(performance.now() - t)
    if (Number(r.resultInfo.status) !== 0) throw new Error(`run ended with status ${r.resultInfo.status}: ${r.reason}`)
    await enclave.dropTask(a.taskId)
  }
} finally {
  await enclave.close()
}
const sorted = [...times].sort((p, q) => p - q)
process.stdout.write(`execute, StatsFast on ${data.length} B, ${REPEATS} tasks (--gap-ms ${GAP_MS}), ${cpus().length} cores, load average ${load} at start: ` +
  `median ${sorted[Math.floor((sorted.length - 1) / 2)].toFixed(0)} ms, min ${sorted[0].toFixed(0)} ms, all ${times.map(x => x.toFixed(0)).join(', ')} ms\n`)
