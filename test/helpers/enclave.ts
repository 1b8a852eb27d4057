// Shared set-up of the enclave tests: an attestation root, a started enclave, a buyer that attests
// and delivers code, sellers that deliver data.
import { Wallet, concat, getBytes, hexlify, keccak256, randomBytes, toUtf8Bytes } from 'ethers'
import { loadArtifact } from '../../contracts/tools/compile.ts'
import {
  createEnclave, encryptCodeForEnclave, encryptDataset, generateKeyPair, MemoryBlobStore, signChunk, signCodeDelivery, signDataKeyDelivery,
  signReceiptAck, wrapDataKey
} from '../../enclave/index.ts'
import { tradeIdOf, type NetworkDomain } from '../../contracts/formats.ts'
import type { DataDelivery, EnclaveHost, EnclaveOptions, KeyPair, SellerDataStatus } from '../../enclave/index.ts'

export const root = new Wallet('0x' + '11'.repeat(32))
/** The account of the node that runs the test enclaves: every quote names it. */
export const nodeOperator = new Wallet('0x' + '66'.repeat(32))
export const platformSecret = getBytes('0x' + '22'.repeat(32))
/** The buyer of every test trade: trade ids are keccak(buyer, salt), and it signs its code deliveries. */
export const buyer = new Wallet('0x' + '33'.repeat(32))
/** The deployment every test enclave serves: its quotes, code authorizations and results are over it. */
export const domain: NetworkDomain = { chainId: 31337n, verifyingContract: '0x' + '44'.repeat(20) }
/** The seller account of every test delivery (its index is the delivery's): signs key deliveries, chunks and receipt acks. */
export const seller = new Wallet('0x' + '55'.repeat(32))

/** A delivery as the seller makes it: its data-key delivery and every chunk signed by `signer` (default `seller`). */
export function signedDelivery (taskId: string, d: { sellerIndex: number, commitment: string, wrappedKey: Uint8Array | string, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array> }, signer: Wallet = seller): DataDelivery {
  const wrappedKey = typeof d.wrappedKey === 'string' ? (/^0x([0-9a-f]{2})*$/i.test(d.wrappedKey) ? getBytes(d.wrappedKey) : new Uint8Array(0)) : d.wrappedKey
  // Malformed test requests (a bad index) cannot be signed: they go unsigned, and the enclave refuses them anyway.
  const sign = (c: Uint8Array): Uint8Array => { try { return signChunk(signer.signingKey, domain, taskId, d.sellerIndex, wrappedKey, c) } catch { return c } }
  const src = d.chunks
  const chunks = Symbol.asyncIterator in src
    ? (async function * () { for await (const c of src) yield sign(c) })()
    : [...src].map(sign)
  let sellerSignature = '0x' + '00'.repeat(65)
  try { sellerSignature = signDataKeyDelivery(signer.signingKey, domain, taskId, d.sellerIndex, d.commitment, wrappedKey) } catch {}
  return { sellerIndex: d.sellerIndex, commitment: d.commitment, wrappedKey: d.wrappedKey, sellerSignature, chunks }
}

/** Delivers as the seller does: signed key delivery and chunks, then (when complete) the receipt acknowledged. */
export async function deliverSigned (enclave: EnclaveHost, taskId: string, d: Parameters<typeof signedDelivery>[1], signer: Wallet = seller): Promise<SellerDataStatus> {
  const st = await enclave.deliverData(taskId, signedDelivery(taskId, d, signer))
  if (!st.complete || st.acked) return st
  const task = (await enclave.tasks()).find(t => t.taskId === taskId)!
  return await enclave.ackReceipt(taskId, d.sellerIndex, signReceiptAck(signer.signingKey, domain, { tradeId: task.tradeId, taskId, sellerIndex: d.sellerIndex, commitment: st.commitment, seller: st.seller }))
}

export async function startEnclave (opts: Partial<EnclaveOptions> = {}): Promise<EnclaveHost> {
  return await createEnclave({ attestationKey: root.privateKey, domain, operator: nodeOperator.address, platformSecret, store: new MemoryBlobStore(), ...opts })
}

export function artifactCode (name: string): Uint8Array {
  return getBytes(loadArtifact(name).deployedBytecode)
}

export function random32 (): string { return hexlify(randomBytes(32)) }

export interface BuyerTask {
  taskId: string
  tradeId: string
  salt: string
  codeHash: string
  enclavePublicKey: string
  enclaveAddress: string
  resultKey: KeyPair
  /** The trade's result salt (in the code envelope): what the buyer checks the output's hash with. */
  resultSalt: string
}

/** The result salt of the test trade with this trade salt: the same for every enclave of one trade. */
export function resultSaltOf (salt: string): string {
  return keccak256(concat([salt, toUtf8Bytes('result salt')])).toLowerCase()
}

/** Delivers a code envelope to a task, signed by `signer` (default: the trade's buyer). */
export async function deliverCodeAs (enclave: EnclaveHost, taskId: string, salt: string, envelope: Uint8Array, signer: { privateKey: string } = buyer): Promise<void> {
  await enclave.deliverCode(taskId, envelope, { salt, signature: signCodeDelivery(signer.privateKey, domain, taskId, envelope) })
}

/** Step 4: attests the enclave for `code` and delivers it with a fresh result key. */
export async function buyerSetup (enclave: EnclaveHost, code: Uint8Array, caps: { gasCap?: bigint, outputCap?: bigint, resultSalt?: string } = {}, salt = random32()): Promise<BuyerTask> {
  const codeHash = keccak256(code)
  const tradeId = tradeIdOf(buyer.address, salt)
  const a = await enclave.attest({ tradeId, codeHash, nonce: random32() })
  const resultKey = generateKeyPair()
  const resultSalt = caps.resultSalt ?? resultSaltOf(salt)
  await deliverCodeAs(enclave, a.taskId, salt, encryptCodeForEnclave(a.enclavePublicKey, a.taskId, { code, resultPublicKey: resultKey.publicKey, ...caps, resultSalt }))
  return { taskId: a.taskId, tradeId, salt, codeHash, enclavePublicKey: a.enclavePublicKey, enclaveAddress: a.quote.enclaveAddress, resultKey, resultSalt }
}

/** Step 7 for one seller, from a dataset in memory. */
export async function sellerDeliver (enclave: EnclaveHost, task: { taskId: string, enclavePublicKey: string }, sellerIndex: number, data: Uint8Array, chunkSize = 4096, commitmentSalt?: Uint8Array) {
  const ds = encryptDataset(data, { chunkSize, ...(commitmentSalt !== undefined && { commitmentSalt }) })
  return await deliverSigned(enclave, task.taskId, {
    sellerIndex,
    commitment: ds.commitment,
    wrappedKey: wrapDataKey(task.enclavePublicKey, task.taskId, sellerIndex, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size }),
    chunks: ds.chunks
  })
}

/** Asserts that `p` rejects with an error named `name`; returns the error. */
export async function rejectsWith (p: Promise<unknown>, name: string): Promise<Error> {
  try {
    await p
  } catch (err) {
    if ((err as Error).name !== name) throw new Error(`expected ${name}, got ${(err as Error).name}: ${(err as Error).message}`)
    return err as Error
  }
  throw new Error(`expected ${name}, but it resolved`)
}

export function throwsWith (fn: () => unknown, name: string): Error {
  try {
    fn()
  } catch (err) {
    if ((err as Error).name !== name) throw new Error(`expected ${name}, got ${(err as Error).name}: ${(err as Error).message}`)
    return err as Error
  }
  throw new Error(`expected ${name}, but it returned`)
}
