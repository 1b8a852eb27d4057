// The buyer's keys, all derived from its account key (daemon/local-secrets.ts), so a restart
// derives them again and nothing secret is stored: the key its bytecode and results are sealed
// under locally, and the one-time result key pair of each trade.
import { hexlify } from 'ethers'
import { networkDomainOf } from '../../../contracts/index.ts'
import { deriveKeyPair, deriveSecret } from '../../local-secrets.ts'
import type { RoleContext } from '../context.ts'

const RESULT_KEY_PURPOSE = 'buyer-result-key'
const LOCAL_KEY_PURPOSE = 'buyer-local-store'
const RESULT_SALT_PURPOSE = 'buyer-result-salt'

/** The AES key the buyer's bytecode and encrypted results are sealed under in its store. */
export function localKey (ctx: RoleContext): Uint8Array {
  return deriveSecret(ctx.keys.ethWallet.privateKey, networkDomainOf(ctx.network), LOCAL_KEY_PURPOSE, 'v1')
}

/** The trade's one-time result key pair: the enclaves encrypt the output to its public key. */
export function resultKey (ctx: RoleContext, tradeId: string): { privateKey: Uint8Array, publicKey: Uint8Array } {
  return deriveKeyPair(ctx.keys.ethWallet.privateKey, networkDomainOf(ctx.network), RESULT_KEY_PURPOSE, tradeId)
}

/**
 * The trade's result salt (32 bytes hex): sent to every enclave inside the code envelope, it salts the public
 * resultHash = keccak256(salt ‖ output), so nobody outside the trade can test guesses of the output against it.
 */
export function resultSalt (ctx: RoleContext, tradeId: string): string {
  return hexlify(deriveSecret(ctx.keys.ethWallet.privateKey, networkDomainOf(ctx.network), RESULT_SALT_PURPOSE, tradeId)).toLowerCase()
}
