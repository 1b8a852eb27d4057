// The buyer's signature on /sdte/result/1 messages (p2p/result/request.ts): who signed is
// recovered only for the network, trade, task and purpose signed for, and only while fresh.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, hexlify, randomBytes } from 'ethers'
import {
  signResultMessage, resultMessageSigner, resultMessageDigestOf, ResultRequestInvalidError, resultConstants, RESULT_ACK_TAG, RESULT_REQUEST_TAG
} from '../../../p2p/result/index.ts'

const buyer = Wallet.createRandom()
const domain = { chainId: 31337, dtmc: '0x' + 'ab'.repeat(20) }
const fields = { tradeId: hexlify(randomBytes(32)), taskId: hexlify(randomBytes(32)) }
const NOW = 1_800_000_000_000
const me = buyer.address.toLowerCase()

function reason (fn: () => unknown): string {
  try { fn(); return 'accepted' } catch (err) {
    assert.instance(err, ResultRequestInvalidError)
    return (err as ResultRequestInvalidError).reason
  }
}

test('a request and an ack recover to the buyer that signed them', () => {
  for (const type of ['result-request', 'result-ack'] as const) {
    const m = signResultMessage(type, fields, domain, buyer.privateKey, NOW)
    assert.is(m.type, type)
    assert.is(m.timestamp, NOW / 1000)
    assert.is(resultMessageSigner(m, domain, NOW), me)
  }
})

test('the signature is void for another purpose, network, DTMC, trade, task or time', () => {
  const req = signResultMessage('result-request', fields, domain, buyer.privateKey, NOW)
  assert.is.not(RESULT_REQUEST_TAG, RESULT_ACK_TAG)
  const others = [
    resultMessageSigner({ ...req, type: 'result-ack' }, domain, NOW),
    resultMessageSigner(req, { ...domain, chainId: 1 }, NOW),
    resultMessageSigner(req, { ...domain, dtmc: '0x' + 'cd'.repeat(20) }, NOW),
    resultMessageSigner({ ...req, tradeId: hexlify(randomBytes(32)) }, domain, NOW),
    resultMessageSigner({ ...req, taskId: hexlify(randomBytes(32)) }, domain, NOW),
    resultMessageSigner({ ...req, timestamp: req.timestamp + 1 }, domain, NOW)
  ]
  for (const signer of others) assert.is.not(signer, me)
  assert.is(new Set([resultMessageDigestOf(req, domain), resultMessageDigestOf({ ...req, type: 'result-ack' }, domain)]).size, 2)
})

test('a timestamp further than MAX_REQUEST_SKEW_SECONDS either way is stale', () => {
  const skewMs = resultConstants.MAX_REQUEST_SKEW_SECONDS * 1000
  const req = signResultMessage('result-request', fields, domain, buyer.privateKey, NOW)
  assert.is(resultMessageSigner(req, domain, NOW + skewMs), me, 'at the bound, after')
  assert.is(resultMessageSigner(req, domain, NOW - skewMs), me, 'at the bound, before')
  assert.is(reason(() => resultMessageSigner(req, domain, NOW + skewMs + 1000)), 'stale')
  assert.is(reason(() => resultMessageSigner(req, domain, NOW - skewMs - 1000)), 'stale')
})

test('a malformed or high-s signature is refused, not recovered to someone', () => {
  const req = signResultMessage('result-request', fields, domain, buyer.privateKey, NOW)
  assert.is(reason(() => resultMessageSigner({ ...req, signature: '0x' + '00'.repeat(65) }, domain, NOW)), 'signature')
  // s' = n - s with the other v: the same signer, but malleable; refused as on chain.
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
  const sig = req.signature.slice(2)
  const s = BigInt('0x' + sig.slice(64, 128))
  const v = Number.parseInt(sig.slice(128), 16)
  const high = '0x' + sig.slice(0, 64) + (n - s).toString(16).padStart(64, '0') + (v === 27 ? '1c' : '1b')
  assert.is(reason(() => resultMessageSigner({ ...req, signature: high }, domain, NOW)), 'signature')
})

test.run()
