// Secrets a daemon derives for itself from its Ethereum key, so that nothing secret has to be
// stored in the clear and a restarted daemon gets the same one-time keys back:
// - a seller's data key for a trade (AES-256, one per trade and offer);
// - a buyer's result key pair for a trade (secp256k1);
// - a local key that encrypts what the buyer must keep across a restart (its bytecode, the result).
// Every secret is bound to a network domain (chain id and DTMC address): the same buyer and salt give the
// same tradeId on every deployment, and without the domain a seller would encrypt other data under the
// same AES-GCM key and chunk IVs on a second network.
// HKDF-SHA256 from node:crypto and AES-256-GCM; no primitive is written here.
import { SdteError } from '../config/index.ts'
import { hkdfSync, createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { getBytes } from 'ethers'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { networkDomainKey, type NetworkDomain } from '../contracts/index.ts'

const SALT = Buffer.from('SDTE.LocalSecrets.v1')

export class LocalSecretError extends SdteError {
  override name = 'LocalSecretError'
  override code = 'ERR_LOCAL_SECRET_INVALID'
}

/** 32 bytes for (network, purpose, id) from the account key. Different networks or purposes never share a key. */
export function deriveSecret (ethPrivateKey: string, domain: NetworkDomain, purpose: string, id: string): Uint8Array {
  const info = `${networkDomainKey(domain)}\u0000${purpose}\u0000${id}`
  return new Uint8Array(hkdfSync('sha256', getBytes(ethPrivateKey), SALT, info, 32))
}

/** A secp256k1 key pair for (network, purpose, id): the buyer's one-time result key of a trade. */
export function deriveKeyPair (ethPrivateKey: string, domain: NetworkDomain, purpose: string, id: string): { privateKey: Uint8Array, publicKey: Uint8Array } {
  // Hash-to-scalar with a counter: the first candidate is a valid scalar with overwhelming probability.
  for (let i = 0; i < 16; i++) {
    const candidate = deriveSecret(ethPrivateKey, domain, purpose, `${id}#${i}`)
    if (secp256k1.utils.isValidSecretKey(candidate)) return { privateKey: candidate, publicKey: secp256k1.getPublicKey(candidate, true) }
  }
  throw new LocalSecretError('no valid key derived')
}

/** AES-256-GCM under a derived local key: nonce ‖ ciphertext ‖ tag, bound to `aad`. */
export function sealLocal (key: Uint8Array, plaintext: Uint8Array, aad: string): Uint8Array {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]))
}

export function openLocal (key: Uint8Array, sealed: Uint8Array, aad: string): Uint8Array {
  if (sealed.length < 28) throw new LocalSecretError('sealed value too short')
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12))
  decipher.setAAD(Buffer.from(aad))
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  try {
    return new Uint8Array(Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]))
  } catch {
    throw new LocalSecretError('sealed value does not open with this key')
  }
}
