// Attack (issue 10, item 8): a seller's data key repeats on another deployment.
// Before the fix the seller's AES-GCM data key was derived from (its account key, tradeId, offerId)
// only; the same buyer and salt give the same tradeId on every chain and deployment, and the chunk IVs
// are the chunk indices, so a buyer reusing a salt on a second network made the seller encrypt different
// data under the same key and IV (GCM then leaks the XOR of the plaintexts and its authentication key).
// Now every derived secret is bound to a network domain (chain id and DTMC address).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, hexlify } from 'ethers'
import { deriveSecret, deriveKeyPair } from '../../daemon/local-secrets.ts'
import { tradeIdOf } from '../../contracts/formats.ts'

const seller = Wallet.createRandom()
const buyer = Wallet.createRandom()
const salt = hexlify(new Uint8Array(32).fill(7))
const A = { chainId: 31337n, verifyingContract: '0x' + '11'.repeat(20) }
const B = { chainId: 31337n, verifyingContract: '0x' + '22'.repeat(20) }
const C = { chainId: 1n, verifyingContract: '0x' + '11'.repeat(20) }

test('the same trade id and offer on two deployments give two different data keys', () => {
  const tradeId = tradeIdOf(buyer.address, salt)
  const keyOn = (d: typeof A): string => hexlify(deriveSecret(seller.privateKey, d, 'data-key', `${tradeId}/0`))
  assert.is.not(keyOn(A), keyOn(B), 'another DTMC on the same chain')
  assert.is.not(keyOn(A), keyOn(C), 'the same DTMC address on another chain')
  assert.is(keyOn(A), keyOn({ ...A, verifyingContract: A.verifyingContract.toUpperCase().replace('0X', '0x') }), 'the address is compared, not its spelling')
})

test('the buyer\'s result key pair is per network too', () => {
  const tradeId = tradeIdOf(buyer.address, salt)
  assert.is.not(hexlify(deriveKeyPair(buyer.privateKey, A, 'result-key', tradeId).publicKey), hexlify(deriveKeyPair(buyer.privateKey, B, 'result-key', tradeId).publicKey))
})

test.run()
