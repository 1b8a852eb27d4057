// Attestation: a quote verifies as DTMC verifies it; each kind of fake is refused with its own error.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, hexlify, keccak256, toUtf8Bytes } from 'ethers'
import { quoteDigestOf, reportDataOf, signDigest, taskIdOf } from '../../../contracts/formats.ts'
import type { Quote } from '../../../contracts/formats.ts'
import { computeMeasurement } from '../../../enclave/measurement.ts'
import { generateKeyPair, verifyQuote } from '../../../enclave/index.ts'
import type { EnclaveHost } from '../../../enclave/index.ts'
import { domain, nodeOperator, random32, root, startEnclave, throwsWith } from '../../helpers/enclave.ts'

let enclave: EnclaveHost
let other: EnclaveHost
const codeHash = keccak256(toUtf8Bytes('code A'))
const otherCodeHash = keccak256(toUtf8Bytes('code B'))

test.before(async () => {
  enclave = await startEnclave()
  other = await startEnclave({ variant: 'another build' })
})
test.after(async () => {
  await enclave?.close()
  await other?.close()
})

function expectations (enclavePublicKey: string, tradeId: string, nonce: string, extra: Record<string, unknown> = {}) {
  return { domain, expectedRoot: root.address, acceptedMeasurements: [enclave.measurement], tradeId, codeHash, nonce, enclavePublicKey, operator: nodeOperator.address, seenNonces: new Set<string>(), ...extra }
}

test('a fresh quote verifies, binds taskId to (tradeId, codeHash, enclave key), and records its nonce', async () => {
  const tradeId = random32(); const nonce = random32()
  const a = await enclave.attest({ tradeId, codeHash, nonce })
  assert.is(a.quote.taskId, taskIdOf(tradeId, codeHash, a.quote.enclaveAddress))
  assert.is(a.quote.measurement, enclave.measurement)
  assert.is(enclave.attestationRoot, root.address)
  const ex = expectations(a.enclavePublicKey, tradeId, nonce)
  const q = verifyQuote(a.quote, ex)
  assert.is(q.taskId, a.taskId)
  assert.ok(ex.seenNonces.has(nonce.toLowerCase()))
  // The seller's attestation of the same trade gets the same task key with its own nonce.
  const sellerNonce = random32()
  const b = await enclave.attest({ tradeId, codeHash, nonce: sellerNonce })
  assert.is(b.taskId, a.taskId)
  assert.is(b.enclavePublicKey, a.enclavePublicKey)
  verifyQuote(b.quote, expectations(b.enclavePublicKey, tradeId, sellerNonce, { enclaveAddress: a.quote.enclaveAddress, taskId: a.taskId }))
})

test('the host computes the same measurement the worker reports, and a build variant changes it', () => {
  assert.is(enclave.measurement, computeMeasurement())
  assert.is(other.measurement, computeMeasurement('another build'))
  assert.is.not(computeMeasurement('x'), computeMeasurement())
})

test('another measurement (another enclave build) is refused', async () => {
  const tradeId = random32(); const nonce = random32()
  const a = await other.attest({ tradeId, codeHash, nonce })
  assert.is.not(other.measurement, enclave.measurement)
  throwsWith(() => verifyQuote(a.quote, expectations(a.enclavePublicKey, tradeId, nonce)), 'QuoteMeasurementError')
})

test('another enclave key is refused', async () => {
  const tradeId = random32(); const nonce = random32()
  const a = await enclave.attest({ tradeId, codeHash, nonce })
  const fake = Wallet.createRandom().address.toLowerCase()
  // A seller checks against the key on DTMC ...
  throwsWith(() => verifyQuote(a.quote, expectations(a.enclavePublicKey, tradeId, nonce, { enclaveAddress: fake })), 'QuoteEnclaveKeyError')
  // ... and a swapped key no longer matches the task it claims.
  throwsWith(() => verifyQuote({ ...a.quote, enclaveAddress: fake }, expectations(a.enclavePublicKey, tradeId, nonce)), 'QuoteCodeHashError')
})

test('a task key handed over with the quote that is not the quote\'s enclave key is refused', async () => {
  // A host that hands over a key of its own with a genuine quote would read what the verifier encrypts to it.
  const tradeId = random32(); const nonce = random32()
  const a = await enclave.attest({ tradeId, codeHash, nonce })
  throwsWith(() => verifyQuote(a.quote, expectations(hexlify(generateKeyPair().publicKey), tradeId, nonce)), 'QuoteEnclaveKeyError')
  throwsWith(() => verifyQuote(a.quote, expectations('0x02' + '00'.repeat(32), tradeId, nonce)), 'QuoteEnclaveKeyError')
  verifyQuote(a.quote, expectations(a.enclavePublicKey, tradeId, nonce))
})

test('a quote handed over for another node account (a peer relaying another node\'s enclave) is refused', async () => {
  const tradeId = random32(); const nonce = random32()
  const a = await enclave.attest({ tradeId, codeHash, nonce })
  throwsWith(() => verifyQuote(a.quote, expectations(a.enclavePublicKey, tradeId, nonce, { operator: Wallet.createRandom().address })), 'QuoteSignatureError')
})

test('another task is refused', async () => {
  const tradeId = random32(); const nonce = random32()
  const a = await enclave.attest({ tradeId, codeHash, nonce })
  const otherTask = await enclave.attest({ tradeId: random32(), codeHash, nonce: random32() })
  throwsWith(() => verifyQuote(a.quote, expectations(a.enclavePublicKey, tradeId, nonce, { taskId: otherTask.taskId })), 'QuoteTaskError')
})

test('a quote for another codeHash is refused', async () => {
  const tradeId = random32(); const nonce = random32()
  const a = await enclave.attest({ tradeId, codeHash: otherCodeHash, nonce })
  throwsWith(() => verifyQuote(a.quote, expectations(a.enclavePublicKey, tradeId, nonce)), 'QuoteCodeHashError')
})

test('a replayed nonce is refused, and another nonce too', async () => {
  const tradeId = random32(); const nonce = random32()
  const a = await enclave.attest({ tradeId, codeHash, nonce })
  const ex = expectations(a.enclavePublicKey, tradeId, nonce)
  verifyQuote(a.quote, ex)
  throwsWith(() => verifyQuote(a.quote, ex), 'QuoteReplayError')
  throwsWith(() => verifyQuote(a.quote, expectations(a.enclavePublicKey, tradeId, random32())), 'QuoteNonceError')
})

test('a signature not from the attestation root is refused', async () => {
  const tradeId = random32(); const nonce = random32()
  const a = await enclave.attest({ tradeId, codeHash, nonce })
  const impostor = Wallet.createRandom()
  const forged: Quote = {
    ...a.quote,
    signature: signDigest(impostor.privateKey, quoteDigestOf(domain, a.quote.measurement, reportDataOf(a.quote.enclaveAddress, a.quote.taskId, tradeId, codeHash, nonce, nodeOperator.address)))
  }
  throwsWith(() => verifyQuote(forged, expectations(a.enclavePublicKey, tradeId, nonce)), 'QuoteSignatureError')
  // The root's signature over something else does not carry over either.
  const flippedV = a.quote.signature.slice(0, -2) + (a.quote.signature.endsWith('1b') ? '1c' : '1b')
  throwsWith(() => verifyQuote({ ...a.quote, signature: flippedV }, expectations(a.enclavePublicKey, tradeId, nonce)), 'QuoteSignatureError')
  throwsWith(() => verifyQuote({ ...a.quote, signature: '0x1234' }, expectations(a.enclavePublicKey, tradeId, nonce)), 'QuoteSignatureError')
  throwsWith(() => verifyQuote({ ...a.quote, enclaveAddress: '0x1234' }, expectations(a.enclavePublicKey, tradeId, nonce)), 'QuoteCodeHashError')
})

test('attest refuses malformed requests without creating a task', async () => {
  const before = (await enclave.tasks()).length
  for (const bad of [{ tradeId: '0x12', codeHash, nonce: random32() }, { tradeId: random32(), codeHash: 'zz', nonce: random32() }]) {
    try { await enclave.attest(bad); assert.unreachable() } catch (err) { assert.is((err as Error).name, 'InvalidRequestError') }
  }
  assert.is((await enclave.tasks()).length, before)
})

test.run()
