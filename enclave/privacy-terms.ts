// The sellers' privacy terms (docs/enclave.md "Private mode"): their format inside the wrapped data key, their
// bounds, and the seller's per-trade secret. Apart from private.ts so that the seller's side (crypto.ts
// wrapDataKey, loaded in a daemon's main thread) does not load the EVM that the private precompiles need
// (test/unit/architecture.test.ts keeps @ethereumjs/evm out of the daemon's static import graph).
import { createHmac } from 'node:crypto'
import { AbiCoder } from 'ethers/abi'
import { getBytes, hexlify } from 'ethers/utils'
import {
  MAX_CLAMP_ABS, MAX_CSV_DECIMALS, MAX_PRIVATE_COLUMN_INDEX, MAX_PRIVATE_COLUMNS, MAX_RUN_EPSILON, PRIVACY_SECRET_BYTES, PRIVACY_SECRET_TAG
} from './constants.ts'
import { PrivacyTermsError } from './errors.ts'
import type { PrivacyTerms } from './messages.ts'

const abi = AbiCoder.defaultAbiCoder()

/** ABI of the privacy terms inside the wrapped data key (crypto.ts wrapDataKey). */
export const PRIVACY_TERMS_ABI = ['bytes32', 'uint64', 'bool', 'tuple(uint32,uint8,int256,int256)[]'] as const

/** Refuses terms out of bounds (PrivacyTermsError); returns them in canonical form (columns by index). */
export function checkPrivacyTerms (t: PrivacyTerms): PrivacyTerms {
  if (!(t.secret instanceof Uint8Array) || t.secret.length !== PRIVACY_SECRET_BYTES) throw new PrivacyTermsError(`privacy secret must be ${PRIVACY_SECRET_BYTES} bytes`)
  if (typeof t.epsilon !== 'bigint' || t.epsilon < 1n || t.epsilon > MAX_RUN_EPSILON) throw new PrivacyTermsError(`epsilon must be 1..${MAX_RUN_EPSILON} micro-epsilon`)
  if (typeof t.skipHeader !== 'boolean') throw new PrivacyTermsError('skipHeader must be a boolean')
  if (!Array.isArray(t.columns) || t.columns.length === 0 || t.columns.length > MAX_PRIVATE_COLUMNS) throw new PrivacyTermsError(`privacy terms must declare 1..${MAX_PRIVATE_COLUMNS} columns`)
  const seen = new Set<number>()
  const columns = t.columns.map(c => {
    if (!Number.isInteger(c.column) || c.column < 0 || c.column > MAX_PRIVATE_COLUMN_INDEX) throw new PrivacyTermsError(`column index must be 0..${MAX_PRIVATE_COLUMN_INDEX}`)
    if (seen.has(c.column)) throw new PrivacyTermsError(`column ${c.column} declared twice`)
    seen.add(c.column)
    if (!Number.isInteger(c.decimals) || c.decimals < 0 || c.decimals > MAX_CSV_DECIMALS) throw new PrivacyTermsError(`decimals must be 0..${MAX_CSV_DECIMALS}`)
    if (typeof c.lo !== 'bigint' || typeof c.hi !== 'bigint' || c.lo > c.hi) throw new PrivacyTermsError(`column ${c.column}: clamp range must be lo <= hi`)
    if (c.lo < -MAX_CLAMP_ABS || c.hi > MAX_CLAMP_ABS) throw new PrivacyTermsError(`column ${c.column}: clamp bounds must be within ±${MAX_CLAMP_ABS}`)
    return { column: c.column, decimals: c.decimals, lo: c.lo, hi: c.hi }
  }).sort((a, b) => a.column - b.column)
  return { secret: Uint8Array.from(t.secret), epsilon: t.epsilon, skipHeader: t.skipHeader, columns }
}

export function encodePrivacyTerms (t: PrivacyTerms): Uint8Array {
  const c = checkPrivacyTerms(t)
  return getBytes(abi.encode([...PRIVACY_TERMS_ABI], [c.secret, c.epsilon, c.skipHeader, c.columns.map(x => [x.column, x.decimals, x.lo, x.hi])]))
}

export function decodePrivacyTerms (bytes: Uint8Array): PrivacyTerms {
  let decoded
  try {
    decoded = abi.decode([...PRIVACY_TERMS_ABI], bytes)
  } catch {
    throw new PrivacyTermsError('privacy terms are not abi.encode(bytes32, uint64, bool, (uint32, uint8, int256, int256)[])')
  }
  const [secret, epsilon, skipHeader, columns] = decoded
  return checkPrivacyTerms({
    secret: getBytes(secret),
    epsilon: BigInt(epsilon),
    skipHeader: Boolean(skipHeader),
    columns: [...columns].map((c: any) => ({ column: Number(c[0]), decimals: Number(c[1]), lo: BigInt(c[2]), hi: BigInt(c[3]) }))
  })
}

/** Terms as sealed JSON (the secret in hex, bigints as decimal strings) and back. */
export function privacyTermsJson (t: PrivacyTerms): Record<string, unknown> {
  return { secret: hexlify(t.secret), epsilon: String(t.epsilon), skipHeader: t.skipHeader, columns: t.columns.map(c => ({ ...c, lo: String(c.lo), hi: String(c.hi) })) }
}
export function privacyTermsFromJson (j: any): PrivacyTerms {
  return { secret: getBytes(j.secret), epsilon: BigInt(j.epsilon), skipHeader: j.skipHeader === true, columns: j.columns.map((c: any) => ({ column: c.column, decimals: c.decimals, lo: BigInt(c.lo), hi: BigInt(c.hi) })) }
}

/**
 * Seller side: the privacy secret of one trade from the seller's own 32-byte master secret, HMAC-SHA256(master,
 * PRIVACY_SECRET_TAG ‖ tradeId). Every enclave of the trade must get the same secret (so that they agree on the
 * noise), and no two trades the same one (so that a buyer cannot average the noise of repeated trades away).
 */
export function privacySecretOf (masterSecret: Uint8Array, tradeId: string): Uint8Array {
  if (!(masterSecret instanceof Uint8Array) || masterSecret.length !== 32) throw new PrivacyTermsError('master secret must be 32 bytes')
  return new Uint8Array(createHmac('sha256', masterSecret).update(PRIVACY_SECRET_TAG).update(getBytes(tradeId)).digest())
}

