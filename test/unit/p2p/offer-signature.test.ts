// The offer signature (p2p/offer/signature.ts): by the account the offer names, over the offer, the
// network and the sending peer id; any of them changed, the signature no longer holds.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, keccak256 } from 'ethers'
import { OfferSignatureError, signOffer, verifyOfferSignature, type Offer, type OfferScope, type UnsignedOffer } from '../../../p2p/offer/index.ts'

const account = Wallet.createRandom()
const scope: OfferScope = { chainId: 31337, dtmc: '0x' + 'cd'.repeat(20), peerId: '12D3KooWKNzdPZvfGdzh5uAjRJh14fZmMybYaoxq8oBnZ297dokY' }
const seller: UnsignedOffer = { type: 'offer', demandId: keccak256('0x01'), kind: 'seller', account: account.address.toLowerCase(), offerId: 7n }
const node: UnsignedOffer = { type: 'offer', demandId: keccak256('0x01'), kind: 'node', account: account.address.toLowerCase(), measurement: keccak256('0x02') }
const refused = (o: Offer, s: OfferScope = scope): boolean => {
  try { verifyOfferSignature(o, s); return false } catch (err) { assert.instance(err, OfferSignatureError); return true }
}

test('a signed offer verifies for its scope', () => {
  verifyOfferSignature(signOffer(seller, scope, account.privateKey), scope)
  verifyOfferSignature(signOffer(node, scope, account.privateKey), scope)
})

test('another peer, network, demand or offer breaks it', () => {
  const o = signOffer(seller, scope, account.privateKey)
  assert.ok(refused(o, { ...scope, peerId: '12D3KooWSomeoneElseSomeoneElseSomeoneElse' }), 'sent by another peer')
  assert.ok(refused(o, { ...scope, chainId: 1 }), 'another chain')
  assert.ok(refused(o, { ...scope, dtmc: '0x' + 'ab'.repeat(20) }), 'another DTMC')
  assert.ok(refused({ ...o, demandId: keccak256('0x03') }), 'another demand')
  assert.ok(refused({ ...o, offerId: 8n }), 'another dataset')
  const n = signOffer(node, scope, account.privateKey)
  assert.ok(refused({ ...n, measurement: keccak256('0x04') }), 'another enclave')
  assert.ok(refused({ ...n, kind: 'seller' }), 'another kind')
})

test('signed by another key than the account named, or malformed', () => {
  assert.ok(refused(signOffer(seller, scope, Wallet.createRandom().privateKey)))
  assert.ok(refused({ ...signOffer(seller, scope, account.privateKey), signature: '0x' + '00'.repeat(65) }))
})

test.run()
