// Envelopes, chunks and sealing.
import { createHash } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { concat, hexlify, keccak256, randomBytes, toUtf8Bytes } from 'ethers'
import {
  decryptChunk, deriveSealKey, eciesDecrypt, eciesEncrypt, encryptChunks, encryptDataset, encryptResult,
  decryptResult, openResult, generateKeyPair, sealBlob, unsealBlob, wrapDataKey, unwrapDataKey, eciesDecrypt as open, dataKeyEnvelopeContext
} from '../../../enclave/crypto.ts'
import { MAX_CLAMP_ABS, MAX_RUN_EPSILON } from '../../../enclave/constants.ts'
import { sampleDataset } from '../../../enclave/examples.ts'
import { throwsWith } from '../../helpers/enclave.ts'

const ctx = new TextEncoder().encode('context A')

test('ECIES opens only with the recipient key and the same context', () => {
  const k = generateKeyPair()
  const msg = randomBytes(1000)
  const env = eciesEncrypt(k.publicKey, msg, ctx)
  assert.is(hexlify(eciesDecrypt(k.privateKey, env, ctx)), hexlify(msg))
  throwsWith(() => eciesDecrypt(generateKeyPair().privateKey, env, ctx), 'EnvelopeError')
  throwsWith(() => eciesDecrypt(k.privateKey, env, new TextEncoder().encode('context B')), 'EnvelopeError')
  const flipped = Uint8Array.from(env); flipped[60] ^= 1
  throwsWith(() => eciesDecrypt(k.privateKey, flipped, ctx), 'EnvelopeError')
  throwsWith(() => eciesEncrypt('0x1234', msg, ctx), 'InvalidRequestError')
})

test('streamed chunk encryption equals in-memory encryption; every chunk decrypts in place', async () => {
  const data = sampleDataset(500)
  const whole = encryptDataset(data, { chunkSize: 1000 })
  const parts = [data.subarray(0, 123), data.subarray(123, 5000), data.subarray(5000)]
  const streamed: Uint8Array[] = []
  for await (const c of encryptChunks(parts, { key: whole.key, commitment: whole.commitment, chunkSize: 1000 })) streamed.push(c)
  assert.equal(streamed.map(hexlify), whole.chunks.map(hexlify))
  assert.is(whole.commitment, '0x' + createHash('sha256').update(whole.commitmentSalt).update(data).digest('hex'), 'the commitment is SHA-256(salt ‖ data)')
  assert.is.not(whole.commitment, '0x' + createHash('sha256').update(data).digest('hex'), 'not the plain hash a guess could be checked against')
  assert.is.not(encryptDataset(data).commitment, whole.commitment, 'a fresh salt each time none is given')
  const back = whole.chunks.map(c => decryptChunk(whole.key, whole.commitment, c))
  assert.equal(back.map(b => b.index), whole.chunks.map((_, i) => i))
  assert.equal(back.map(b => b.last), whole.chunks.map((_, i) => i === whole.chunks.length - 1))
  // An empty dataset is one empty, last chunk.
  const empty = encryptDataset(new Uint8Array(0))
  assert.is(empty.chunks.length, 1)
  assert.ok(decryptChunk(empty.key, empty.commitment, empty.chunks[0]).last)
  throwsWith(() => decryptChunk(randomBytes(32), whole.commitment, whole.chunks[0]), 'ChunkAuthError')
})

test('sealed blobs open only with the same platform secret, measurement and slot', () => {
  const secret = randomBytes(32)
  const m1 = keccak256('0x01'); const m2 = keccak256('0x02')
  const blob = sealBlob(deriveSealKey(secret, m1), 'slot/a', new TextEncoder().encode('secret'))
  assert.is(new TextDecoder().decode(unsealBlob(deriveSealKey(secret, m1), 'slot/a', blob)), 'secret')
  throwsWith(() => unsealBlob(deriveSealKey(secret, m2), 'slot/a', blob), 'UnsealError')
  throwsWith(() => unsealBlob(deriveSealKey(randomBytes(32), m1), 'slot/a', blob), 'UnsealError')
  throwsWith(() => unsealBlob(deriveSealKey(secret, m1), 'slot/b', blob), 'UnsealError')
})

test('a result decrypts for its task, result hash and salt only, with the gas it used', () => {
  const k = generateKeyPair()
  const taskId = keccak256('0x05')
  const resultSalt = keccak256('0x06')
  const { envelope, resultHash } = encryptResult(k.publicKey, taskId, resultSalt, new TextEncoder().encode('answer'), 4321n)
  assert.is(resultHash, keccak256(concat([resultSalt, toUtf8Bytes('answer')])))
  const opened = openResult(envelope, k.privateKey, { taskId, resultHash, resultSalt })
  assert.is(new TextDecoder().decode(opened.output), 'answer')
  assert.is(opened.gasUsed, 4321n)
  assert.is(new TextDecoder().decode(decryptResult(envelope, k.privateKey, { taskId, resultHash, resultSalt })), 'answer')
  throwsWith(() => decryptResult(envelope, k.privateKey, { taskId, resultHash: keccak256('0x'), resultSalt }), 'ResultDecryptionError')
  throwsWith(() => decryptResult(envelope, k.privateKey, { taskId, resultHash, resultSalt: keccak256('0x07') }), 'ResultDecryptionError')
  throwsWith(() => decryptResult(envelope, generateKeyPair().privateKey, { taskId, resultHash, resultSalt }), 'ResultDecryptionError')
})

test('a wrapped data key carries the commitment salt, and privacy terms only when given; without them its plaintext is 160 bytes', () => {
  const k = generateKeyPair()
  const taskId = keccak256(toUtf8Bytes('task'))
  const d = { key: randomBytes(32), commitment: keccak256(toUtf8Bytes('c')), commitmentSalt: randomBytes(32), size: 10 }
  const plain = wrapDataKey(k.publicKey, taskId, 0, d)
  assert.is(open(k.privateKey, plain, dataKeyEnvelopeContext(taskId, 0)).length, 160)
  assert.is(unwrapDataKey(k.privateKey, taskId, 0, plain).privacy, undefined)
  assert.is(hexlify(unwrapDataKey(k.privateKey, taskId, 0, plain).commitmentSalt), hexlify(d.commitmentSalt))
  throwsWith(() => wrapDataKey(k.publicKey, taskId, 0, { ...d, commitmentSalt: randomBytes(31) }), 'InvalidRequestError')
  const terms = { secret: randomBytes(32), epsilon: 1_500_000n, skipHeader: true, columns: [{ column: 3, decimals: 2, lo: -5n, hi: 5n }, { column: 1, decimals: 0, lo: 0n, hi: 9n }] }
  const opened = unwrapDataKey(k.privateKey, taskId, 0, wrapDataKey(k.publicKey, taskId, 0, { ...d, privacy: terms }))
  assert.is(hexlify(opened.privacy!.secret), hexlify(terms.secret))
  assert.is(opened.privacy!.epsilon, 1_500_000n)
  assert.equal(opened.privacy!.columns.map(c => c.column), [1, 3], 'columns in canonical order')
  assert.equal(opened.privacy!.columns[1], { column: 3, decimals: 2, lo: -5n, hi: 5n })
  const bad: Array<Partial<typeof terms>> = [
    { secret: randomBytes(31) }, { epsilon: 0n }, { epsilon: MAX_RUN_EPSILON + 1n }, { columns: [] },
    { columns: [{ column: 1, decimals: 0, lo: 2n, hi: 1n }] }, { columns: [{ column: 1, decimals: 0, lo: 0n, hi: MAX_CLAMP_ABS + 1n }] },
    { columns: [{ column: 1, decimals: 19, lo: 0n, hi: 1n }] }, { columns: [{ column: 1, decimals: 0, lo: 0n, hi: 1n }, { column: 1, decimals: 0, lo: 0n, hi: 1n }] }
  ]
  for (const b of bad) throwsWith(() => wrapDataKey(k.publicKey, taskId, 0, { ...d, privacy: { ...terms, ...b } }), 'PrivacyTermsError')
})

test.run()
