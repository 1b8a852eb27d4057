// The buyer's keys, all derived from its account key (daemon/local-secrets.ts), so a restart
// derives them again and nothing secret is stored: the key its bytecode and results are sealed
// under locally, and the one-time result key pair of each trade.
import { networkDomainOf } from '../../../contracts/index.ts'
import { deriveKeyPair, deriveSecret } from '../../local-secrets.ts'
import type { RoleContext } from '../context.ts'

const RESULT_KEY_PURPOSE = 'buyer-result-key'
const LOCAL_KEY_PURPOSE = 'buyer-local-store'

/** The AES key the buyer's bytecode and encrypted results are sealed under in its store. */
export function localKey (ctx: RoleContext): Uint8Array {
  return deriveSecret(ctx.keys.ethWallet.privateKey, networkDomainOf(ctx.network), LOCAL_KEY_PURPOSE, 'v1')
}

/** The trade's one-time result key pair: the enclaves encrypt the output to its public key. */
export function resultKey (ctx: RoleContext, tradeId: string): { privateKey: Uint8Array, publicKey: Uint8Array } {
  return deriveKeyPair(ctx.keys.ethWallet.privateKey, networkDomainOf(ctx.network), RESULT_KEY_PURPOSE, tradeId)
}
