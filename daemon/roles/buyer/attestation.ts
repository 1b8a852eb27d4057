// Step 4, Attestation (docs/protocol.md): every candidate enclave is attested with a fresh nonce,
// its quote verified and timed; the n fastest valid ones get the code, encrypted to their task keys.
import { hexlify, randomBytes } from 'ethers'
import { verifyQuote, encryptCodeForEnclave, signCodeDelivery, QuoteError } from '../../../enclave/index.ts'
import { networkDomainOf } from '../../../contracts/index.ts'
import { FrameTooLargeError, MalformedFrameError, MessageSchemaError, ProtocolViolationError, RequestRefusedError } from '../../../p2p/index.ts'
import { SdteError } from '../../../config/index.ts'
import { openLocal } from '../../local-secrets.ts'
import type { RoleContext } from '../context.ts'
import type { Refusal } from './candidates.ts'
import { log } from './log.ts'
import { localKey, resultKey, resultSalt } from './secrets.ts'
import { demandOf, type BuyerTrade, type ChosenNode } from './trade.ts'

/** The buyer holds no code envelope for a task it is about to send code to (a bug of ours, not the node's doing). */
export class MissingCodeEnvelopeError extends SdteError {
  override name = 'MissingCodeEnvelopeError'
  override code = 'ERR_MISSING_CODE_ENVELOPE'
}

/**
 * Refusals an honest node gives under load (trusted-node enclaveCall passes its enclave's error names on): its
 * enclave busy or restarting, its task table full for now, a task it dropped meanwhile. Not a verdict on the node.
 */
const TRANSIENT_REFUSALS: ReadonlySet<string> = new Set(['EnclaveTimeoutError', 'EnclaveClosedError', 'TooManyTasks', 'TaskStateError', 'UnknownTaskError'])

/**
 * Whether a failed exchange with a node is only a missed answer (a timeout, a dial or stream failure, a transient
 * refusal: an honest node under load looks the same) rather than an answer that judges the node: a quote that does not
 * verify, any other refusal, or a reply that breaks the protocol. A failure of ours is neither: it counts as missed.
 */
export function isUnanswered (err: unknown): boolean {
  if (err instanceof QuoteError) return false
  if (err instanceof RequestRefusedError) return TRANSIENT_REFUSALS.has(err.reason)
  return !(err instanceof MessageSchemaError || err instanceof MalformedFrameError || err instanceof FrameTooLargeError || err instanceof ProtocolViolationError)
}

/**
 * Attests every candidate node in parallel. `seenNonces` holds the nonce of every quote this buyer
 * accepted: a replayed quote is refused. Returns the valid ones, fastest first, the refusals, the peers of those
 * refusals that were only unanswered (isUnanswered), and those refused as a second quote of one enclave.
 */
export async function attestNodes (ctx: RoleContext, t: BuyerTrade, seenNonces: Set<string>): Promise<{ valid: ChosenNode[], refused: Refusal[], unanswered: string[], duplicates: string[] }> {
  const d = demandOf(t)
  const unanswered: string[] = []
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
        seenNonces,
        // The offering account: a quote of another node's enclave (a peer relaying it) does not verify for it.
        operator: o.account,
        // The key the code is encrypted to must be the quote's enclave: a host could hand over a key of its own.
        enclavePublicKey: reply.enclavePublicKey
      })
      return { peerId: o.peerId, payee: o.account, quote, enclavePublicKey: reply.enclavePublicKey, attestMs: Math.round(performance.now() - t1) }
    } catch (err) {
      if (isUnanswered(err)) unanswered.push(o.peerId)
      return { peerId: o.peerId, why: err instanceof QuoteError ? `${err.name}: ${err.message}` : `attestation failed: ${(err as Error).message}` }
    }
  }))
  // One enclave counts once. A second valid quote of an enclave already attested comes from a peer relaying that
  // enclave's attestation (a quote is not bound to the peer that hands it over); DTMC refuses an escrow that names an
  // enclave twice (DuplicateEnclave), so choosing both would fail the escrow at every try. The slower is refused: a
  // relay asks the enclave only after the buyer's own request reached it, so it answers later
  // (test/attacks/code-refused-after-attestation.test.ts).
  const byEnclave = new Map<string, ChosenNode>()
  const duplicates: Refusal[] = []
  for (const a of attested.filter((a): a is ChosenNode => 'quote' in a).sort((a, b) => a.attestMs - b.attestMs)) {
    const first = byEnclave.get(a.quote.enclaveAddress.toLowerCase())
    if (first === undefined) byEnclave.set(a.quote.enclaveAddress.toLowerCase(), a)
    else duplicates.push({ peerId: a.peerId, why: `the quote of an enclave already attested through peer ${first.peerId} (a relayed quote)` })
  }
  const valid = [...byEnclave.values()]
  const refused = [...attested.filter((a): a is Refusal => 'why' in a), ...duplicates]
  for (const r of refused) log.warn('enclave refused', { tradeId: t.tradeId, peer: r.peerId, why: r.why })
  return { valid, refused, unanswered, duplicates: duplicates.map(r => r.peerId) }
}

/**
 * The code envelope of each task (the bytecode and the trade's result public key, ECIES-encrypted to the task key and
 * signed by the buyer), made once per task and kept in the trade record before it is sent: an enclave keeps the first
 * code delivered to a task and refuses another envelope (a new encryption of the same code), so a delivery tried again
 * (another round after a node was struck, a restart) must send the same bytes.
 */
export async function keepCodeEnvelopes (ctx: RoleContext, t: BuyerTrade, nodes: ChosenNode[]): Promise<BuyerTrade> {
  const kept = t.data.codeEnvelopes ?? {}
  const missing = nodes.filter(n => kept[n.quote.taskId] === undefined)
  if (missing.length === 0) return t
  const d = demandOf(t)
  const code = openLocal(localKey(ctx), new Uint8Array(Buffer.from(t.data.sealedCode, 'base64')), `code/${t.tradeId}`)
  const resultPublicKey = resultKey(ctx, t.tradeId).publicKey
  const salt = resultSalt(ctx, t.tradeId)
  const made = Object.fromEntries(missing.map(n => {
    const envelope = encryptCodeForEnclave(n.enclavePublicKey, n.quote.taskId, { code, resultPublicKey, gasCap: BigInt(t.data.gasCap), outputCap: d.outputCap, resultSalt: salt })
    const signature = signCodeDelivery(ctx.keys.ethWallet.privateKey, networkDomainOf(ctx.network), n.quote.taskId, envelope)
    return [n.quote.taskId, { envelope: hexlify(envelope), signature }]
  }))
  return await ctx.trades.update(t, { codeEnvelopes: { ...kept, ...made } })
}

/**
 * Sends each node its task's kept envelope (keepCodeEnvelopes first), all at once, each within the attestation
 * timeout. A node that does not take it (refuses, fails, is too slow) is a refusal, as a failed attestation is: one
 * such node must not hold up the others or the trade (test/attacks/code-refused-after-attestation.test.ts).
 */
export async function deliverCode (ctx: RoleContext, t: BuyerTrade, nodes: ChosenNode[]): Promise<{ delivered: ChosenNode[], refused: Refusal[], unanswered: string[] }> {
  const sent = await Promise.allSettled(nodes.map(async n => {
    const kept = t.data.codeEnvelopes?.[n.quote.taskId]
    if (kept === undefined) throw new MissingCodeEnvelopeError(`no code envelope kept for task ${n.quote.taskId}`)
    await ctx.attest.sendCode(n.peerId, { taskId: n.quote.taskId, envelope: kept.envelope, salt: t.data.salt, signature: kept.signature },
      { signal: AbortSignal.timeout(ctx.options.trade.attestTimeoutMs) })
  }))
  const delivered = nodes.filter((_, i) => sent[i].status === 'fulfilled')
  const refused = nodes.flatMap((n, i) => {
    const s = sent[i]
    return s.status === 'rejected' ? [{ peerId: n.peerId, why: `code delivery failed: ${(s.reason as Error).message}` }] : []
  })
  const unanswered = nodes.filter((_, i) => { const s = sent[i]; return s.status === 'rejected' && isUnanswered(s.reason) }).map(n => n.peerId)
  for (const r of refused) log.warn('enclave did not take the code', { tradeId: t.tradeId, peer: r.peerId, why: r.why })
  return { delivered, refused, unanswered }
}
