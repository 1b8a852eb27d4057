// contracts/formats.ts against an independent encoding: every format is keccak over static ABI words,
// so each is rebuilt here by hand (32-byte words, @noble/hashes keccak) and must agree bit for bit.
// The Solidity side is checked against the same functions in test/integration/contracts/dtmc.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { Wallet, SigningKey } from 'ethers'
import {
  QUOTE_TAG, RESULT_TAG, CODE_TAG, ResultStatus, codeAuthDigestOf, tradeIdOf, taskIdOf, reportDataOf, quoteDigestOf, resultDigestOf,
  inputHashOf, signDigest, recoverDigest, quoteSignerOf, resultCommitmentOf, resultHashOf, SECP256K1_HALF_N,
  type NetworkDomain, type ResultInfo, type Quote
} from '../../../contracts/formats.ts'
import { groupKeyOf, quoteProblemOf } from '../../helpers/dtmc-checks.ts'

const hex = (b: Uint8Array): string => '0x' + Buffer.from(b).toString('hex')
const word = (v: string | bigint | number): string => {
  if (typeof v === 'string') return v.slice(2).toLowerCase().padStart(64, '0')
  return BigInt(v).toString(16).padStart(64, '0')
}
const kec = (...words: string[]): string => hex(keccak_256(Buffer.from(words.join(''), 'hex')))
const utf8kec = (s: string): string => hex(keccak_256(Buffer.from(s, 'utf8')))

const buyer = '0x' + '11'.repeat(20)
const salt = '0x' + 'ab'.repeat(32)
const codeHash = '0x' + 'c0'.repeat(32)
const enclave = '0x' + '2f'.repeat(20)
const operator = '0x' + '3e'.repeat(20)
const nonce = '0x' + '07'.repeat(32)
const measurement = '0x' + 'ee'.repeat(32)
const domain: NetworkDomain = { chainId: 31337n, verifyingContract: '0x' + '5d'.repeat(20) }
const dwords = [word(31337n), word(domain.verifyingContract)]

test('tags are the keccak of their strings', () => {
  assert.is(QUOTE_TAG, utf8kec('SDTE.Quote.v3'))
  assert.is(RESULT_TAG, utf8kec('SDTE.ResultInfo.v3'))
  assert.is(CODE_TAG, utf8kec('SDTE.CodeDelivery.v2'))
})

test('tradeId, taskId, reportData, quoteDigest match a hand-made encoding', () => {
  const tradeId = tradeIdOf(buyer, salt)
  assert.is(tradeId, kec(word(buyer), word(salt)))
  const taskId = taskIdOf(tradeId, codeHash, enclave)
  assert.is(taskId, kec(word(tradeId), word(codeHash), word(enclave)))
  const rd = reportDataOf(enclave, taskId, tradeId, codeHash, nonce, operator)
  assert.is(rd, kec(word(enclave), word(taskId), word(tradeId), word(codeHash), word(nonce), word(operator)))
  assert.is(quoteDigestOf(domain, measurement, rd), kec(word(QUOTE_TAG), ...dwords, word(measurement), word(rd)))
  assert.is.not(quoteDigestOf({ ...domain, chainId: 1n }, measurement, rd), quoteDigestOf(domain, measurement, rd))
})

test('codeAuthDigest holds the domain: another chain or DTMC gives another digest', () => {
  const taskId = '0x' + '0a'.repeat(32)
  const envelopeHash = '0x' + '0b'.repeat(32)
  assert.is(codeAuthDigestOf(domain, taskId, envelopeHash), kec(word(CODE_TAG), ...dwords, word(taskId), word(envelopeHash)))
  assert.is.not(codeAuthDigestOf({ ...domain, chainId: 1n }, taskId, envelopeHash), codeAuthDigestOf(domain, taskId, envelopeHash))
})

test('checksummed and lowercase inputs give the same lowercase output', () => {
  const checksummed = new Wallet('0x' + '01'.repeat(32)).address
  assert.is(tradeIdOf(checksummed, salt), tradeIdOf(checksummed.toLowerCase(), salt))
  assert.ok(/^0x[0-9a-f]{64}$/.test(tradeIdOf(checksummed, salt)))
})

const info: ResultInfo = {
  tradeId: '0x' + '01'.repeat(32),
  taskId: '0x' + '02'.repeat(32),
  inputHash: '0x' + '03'.repeat(32),
  resultHash: '0x' + '04'.repeat(32),
  resultSize: 1234n,
  status: ResultStatus.Ok
}

test('resultDigest and groupKey match a hand-made encoding', () => {
  assert.is(resultDigestOf(domain, info), kec(word(RESULT_TAG), ...dwords, word(info.tradeId), word(info.taskId), word(info.inputHash),
    word(info.resultHash), word(info.resultSize), word(info.status)))
  assert.is(groupKeyOf(info), kec(word(info.resultHash), word(info.resultSize), word(info.status)))
  // the group key ignores tradeId and taskId (each node has its own task)
  const other: ResultInfo = { ...info, taskId: '0x' + '09'.repeat(32) }
  assert.is(groupKeyOf(other), groupKeyOf(info))
  assert.is.not(groupKeyOf({ ...info, resultSize: 1n }), groupKeyOf(info))
})

test('a result commitment and the salted resultHash match hand-made encodings', () => {
  const digest = resultDigestOf(domain, info)
  const nonce = '0x' + '5a'.repeat(32)
  assert.is(resultCommitmentOf(digest, 3, nonce), kec(word(digest), word(3n), word(nonce)))
  assert.is.not(resultCommitmentOf(digest, 2, nonce), resultCommitmentOf(digest, 3, nonce))
  assert.throws(() => resultCommitmentOf(digest, 256, nonce), /node/)
  const resultSalt = '0x' + '6b'.repeat(32)
  assert.is(resultHashOf(resultSalt, Uint8Array.of(1, 2)), kec(word(resultSalt) + '0102'))
  assert.throws(() => resultHashOf('0x1234', Uint8Array.of(1)), /resultSalt/)
})

test('resultDigest refuses values the contract cannot hold', () => {
  assert.throws(() => resultDigestOf(domain, { ...info, resultSize: 1n << 64n }), /resultSize/)
  assert.throws(() => resultDigestOf(domain, { ...info, resultSize: -1n }), /resultSize/)
  assert.throws(() => resultDigestOf(domain, { ...info, status: 256 }), /status/)
})

test('inputHash is keccak(abi.encode(bytes32[]))', () => {
  const c = ['0x' + 'aa'.repeat(32), '0x' + 'bb'.repeat(32)]
  assert.is(inputHashOf(c), kec(word(32n), word(2n), word(c[0]), word(c[1])))
  assert.is(inputHashOf([]), kec(word(32n), word(0n)))
})

test('ResultStatus codes', () => {
  assert.equal(ResultStatus, { Ok: 0, Reverted: 1, OutOfGas: 2, Forbidden: 3, OutputOverCap: 4, InputInvalid: 5, Internal: 6 })
})

test('signDigest is r‖s‖v, low s, and recovers; high s and bad v are refused', () => {
  const key = new SigningKey('0x' + '42'.repeat(32))
  const digest = resultDigestOf(domain, info)
  const sig = signDigest(key, digest)
  assert.ok(/^0x[0-9a-f]{130}$/.test(sig))
  const v = Number.parseInt(sig.slice(130), 16)
  assert.ok(v === 27 || v === 28)
  assert.ok(BigInt('0x' + sig.slice(66, 130)) <= SECP256K1_HALF_N)
  assert.is(recoverDigest(digest, sig), new Wallet(key.privateKey).address)
  // the malleable twin (n - s, flipped v) is a valid ECDSA signature but must be refused
  const n = SECP256K1_HALF_N * 2n + 1n
  const highS = (n - BigInt('0x' + sig.slice(66, 130))).toString(16).padStart(64, '0')
  const twin = sig.slice(0, 66) + highS + (v === 27 ? '1c' : '1b')
  assert.throws(() => recoverDigest(digest, twin), /high-s/)
  assert.throws(() => recoverDigest(digest, sig.slice(0, 130) + '01'), /v must be/)
  assert.throws(() => recoverDigest(digest, sig.slice(0, 128)), /65 bytes/)
})

test('quote checks: root, measurement, codeHash binding, signature shape', () => {
  const root = new Wallet('0x' + '33'.repeat(32))
  const tradeId = tradeIdOf(buyer, salt)
  const make = (ch: string, signer = root): Quote => {
    const taskId = taskIdOf(tradeId, ch, enclave)
    const digest = quoteDigestOf(domain, measurement, reportDataOf(enclave, taskId, tradeId, ch, nonce, operator))
    return { measurement, enclaveAddress: enclave, taskId, nonce, signature: signDigest(signer.signingKey, digest) }
  }
  const expect = { domain, tradeId, codeHash, operator, attestationRoot: root.address, measurements: [measurement] }
  const good = make(codeHash)
  assert.is(quoteSignerOf(good, domain, tradeId, codeHash, operator), root.address)
  assert.is(quoteProblemOf(good, { ...expect, operator: '0x' + '7a'.repeat(20) }), 'QuoteNotFromRoot', 'a quote names its node account')
  assert.is(quoteProblemOf(good, { ...expect, domain: { ...domain, verifyingContract: '0x' + '5e'.repeat(20) } }), 'QuoteNotFromRoot')
  assert.is(quoteProblemOf(good, expect), null)
  assert.is(quoteProblemOf(make('0x' + 'dd'.repeat(32)), expect), 'QuoteCodeHashMismatch')
  assert.is(quoteProblemOf(make(codeHash, Wallet.createRandom() as unknown as Wallet), expect), 'QuoteNotFromRoot')
  assert.is(quoteProblemOf(good, { ...expect, measurements: ['0x' + '00'.repeat(32)] }), 'MeasurementNotAccepted')
  assert.is(quoteProblemOf({ ...good, signature: '0x1234' }, expect), 'InvalidSignature')
})

test.run()
