// Step 4, Attestation (docs/protocol.md): every candidate enclave is attested with a fresh nonce,
// its quote verified and timed; the n fastest valid ones get the code, encrypted to their task keys.
import { hexlify, randomBytes } from 'ethers'
import { verifyQuote, encryptCodeForEnclave, signCodeDelivery, QuoteError } from '../../../enclave/index.ts'
import { networkDomainOf } from '../../../contracts/index.ts'
import { openLocal } from '../../local-secrets.ts'
import type { RoleContext } from '../context.ts'
import type { Refusal } from './candidates.ts'
import { log } from './log.ts'
import { localKey, resultKey, resultSalt } from './secrets.ts'
import { demandOf, type BuyerTrade, type ChosenNode } from './trade.ts'

/**
 * Attests every candidate node in parallel. `seenNonces` holds the nonce of every quote this buyer
 * accepted: a replayed quote is refused. Returns the valid ones, fastest first, and the refusals.
 */
export async function attestNodes (ctx: RoleContext, t: BuyerTrade, seenNonces: Set<string>): Promise<{ valid: ChosenNode[], refused: Refusal[] }> {
  const d = demandOf(t)
  const attested = await Promise.all(t.data.nodeOffers.map(async (o): Promise<ChosenNode | Refusal> => {
    const nonce = hexlify(randomBytes(32)).toLowerCase()
    const t1 = performance.now()
    try {
      const reply = await ctx.attest.attest(o.peerId, { tradeId: t.tradeId, codeHash: d.codeHash, nonce }, { signal: AbortSignal.timeout(ctx.options.trade.attestTimeoutMs) })
      const quote = verifyQuote(reply.quote, {
        domain: networkDomainOf(ctx.network),
        expectedRoot: ctx.network.attestationRoot,
        acceptedMeasurements: ctx.network.measurements,
        tradeId: t.tradeId,
        codeHash: d.codeHash,
        nonce,
        seenNonces
      })
      return { peerId: o.peerId, payee: o.account, quote, enclavePublicKey: reply.enclavePublicKey, attestMs: Math.round(performance.now() - t1) }
    } catch (err) {
      return { peerId: o.peerId, why: err instanceof QuoteError ? `${err.name}: ${err.message}` : `attestation failed: ${(err as Error).message}` }
    }
  }))
  const valid = attested.filter((a): a is ChosenNode => 'quote' in a).sort((a, b) => a.attestMs - b.attestMs)
  const refused = attested.filter((a): a is Refusal => 'why' in a)
  for (const r of refused) log.warn('enclave refused', { tradeId: t.tradeId, peer: r.peerId, why: r.why })
  return { valid, refused }
}

/** The bytecode and the trade's result public key, ECIES-encrypted to each chosen enclave's task key and signed by the buyer. */
export async function deliverCode (ctx: RoleContext, t: BuyerTrade, chosen: ChosenNode[]): Promise<void> {
  const d = demandOf(t)
  const code = openLocal(localKey(ctx), new Uint8Array(Buffer.from(t.data.sealedCode, 'base64')), `code/${t.tradeId}`)
  const resultPublicKey = resultKey(ctx, t.tradeId).publicKey
  const salt = resultSalt(ctx, t.tradeId)
  await Promise.all(chosen.map(async n => {
    const envelope = encryptCodeForEnclave(n.enclavePublicKey, n.quote.taskId, { code, resultPublicKey, gasCap: BigInt(t.data.gasCap), outputCap: d.outputCap, resultSalt: salt })
    const signature = signCodeDelivery(ctx.keys.ethWallet.privateKey, networkDomainOf(ctx.network), n.quote.taskId, envelope)
    await ctx.attest.sendCode(n.peerId, { taskId: n.quote.taskId, envelope: hexlify(envelope), salt: t.data.salt, signature })
  }))
}
