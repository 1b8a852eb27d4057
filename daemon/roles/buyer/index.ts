// The buyer (docs/protocol.md steps 2, 3, 4, 5, 9, 10, 11), one file per step:
//   demand.ts       2  Demand: sign it, record the trade, gossip it, post its hash to BDBC
//   offers.ts       3  Offers and discovery: offers pushed and solicited (DHT), then the choice
//   candidates.ts   3  the choice itself, pure: which offers CISC backs, best sellers, usable nodes
//   registry.ts     3  what CISC says about the offers (read for candidates.ts)
//   attestation.ts  4  Attestation: attest every candidate enclave, keep the n fastest, deliver the code
//   escrow.ts       5  Escrow: openTrade on DTMC
//   consensus.ts    9  Consensus and payment: follow DTMC, finalize, refund and payments
//   held-fees.ts    9  the sellers' data fees DTMC held after a refund: released to us after the claim window
//   result.ts      10  Result delivery: fetch, decrypt and check the result
//   rating.ts      11  Rating: rate a seller
// This file is the role's state machine (which step each trade state takes) and its control API.
// Its bytecode and the result are kept only encrypted (local key); its result key is derived (secrets.ts).
import { MAX_DEMAND_NODES, MAX_DEMAND_SELLERS, TAG_PATTERN } from '../../../p2p/index.ts'
import type { Offer } from '../../../p2p/index.ts'
import { appError } from '../../rpc/errors.ts'
import type { RpcServer } from '../../rpc/server.ts'
import * as r from '../../rpc/results.ts'
import { advanceActive, withdrawCredit, type Role, type RoleContext } from '../context.ts'
import { attestNodes, deliverCode, keepCodeEnvelopes } from './attestation.ts'
import { followConsensus } from './consensus.ts'
import { postDemand, publishDemand, type PostDemandParams } from './demand.ts'
import { openEscrow, reopenVanishedEscrow } from './escrow.ts'
import { log } from './log.ts'
import { releaseHeldFees } from './held-fees.ts'
import { checkOffer, chooseCandidates, enoughOffers, recordOffer } from './offers.ts'
import { EXPIRY_MARGIN_SECONDS, MAX_UNATTESTED_PER_TRADE } from './constants.ts'
import { rateSeller } from './rating.ts'
import { fetchResult, readResult } from './result.ts'
import { demandOf, type BuyerTrade, type BuyerTradeData, type ChosenNode } from './trade.ts'

export type { BuyerTradeData, ChosenNode } from './trade.ts'
export type { PostDemandParams } from './demand.ts'
export { loadCode } from './code.ts'
export * from './constants.ts'

export class BuyerRole implements Role {
  readonly name = 'buyer' as const
  private readonly ctx: RoleContext
  /** Trades whose step is running (each runs in the background: see advanceActive). */
  private readonly inFlight = new Set<string>()
  /** When a trade that lacked offers is looked at again. */
  private readonly retryChoiceAt = new Map<string, number>()
  /** When the checked offers of a trade still collecting them first were enough for its demand. */
  private readonly enoughSince = new Map<string, number>()
  /** Wake-ups set for the end of an offer window or of a grace, by trade (cleared at stop). */
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  /** Nonces of every quote this buyer accepted: a replayed quote is refused. */
  private readonly seenNonces = new Set<string>()

  constructor (ctx: RoleContext) {
    this.ctx = ctx
  }

  /** A buyer restarted after its trades settled fetches their results now (a first tick), not only at the next tick. */
  async start (): Promise<void> {
    await this.tick()
  }
  async stop (): Promise<void> {
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
  }

  /** Advances this trade again at `at` (ms since the epoch): the end of its offer window or of its grace. */
  private wakeAt (tradeId: string, at: number): void {
    clearTimeout(this.timers.get(tradeId))
    const timer = setTimeout(() => { this.timers.delete(tradeId); this.ctx.wake('buyer') }, Math.max(0, at - Date.now()))
    timer.unref()
    this.timers.set(tradeId, timer)
  }

  /** buyer_postDemand: step 2. */
  async postDemand (p: PostDemandParams): Promise<{ demandId: string, tradeId: string, codeHash: string, deposit: string }> {
    return await postDemand(this.ctx, p)
  }

  /** Step 3: an offer for one of our demands, while we still collect them; checked (checkOffer) before it takes a slot. */
  async onOffer (remotePeer: string, offer: Offer): Promise<boolean> {
    const found = (await this.ctx.trades.active<BuyerTradeData>('buyer')).find(t => demandOf(t).demandId === offer.demandId)
    if (found === undefined || found.state !== 'demanded') return false
    const why = await checkOffer(this.ctx, found, remotePeer, offer)
    if (why !== null) {
      log.debug('offer refused', { demandId: offer.demandId, from: remotePeer, why })
      return false
    }
    const taken = await this.ctx.trades.locked('buyer', found.tradeId, async () => await recordOffer(this.ctx, found.tradeId, remotePeer, offer))
    // This offer may be the one that makes enough: look now, not at the end of the window.
    if (taken) this.ctx.wake('buyer')
    return taken
  }

  async tick (): Promise<void> {
    await advanceActive<BuyerTradeData>(this.ctx, 'buyer', async t => await this.advanceLocked(t), log, this.inFlight)
    await releaseHeldFees(this.ctx)
  }

  /** One step under the trade's lock (offers arriving meanwhile wait), if the trade is still in the state we saw. */
  private async advanceLocked (t: BuyerTrade): Promise<void> {
    await this.ctx.trades.locked('buyer', t.tradeId, async () => {
      const fresh = await this.ctx.trades.require<BuyerTradeData>('buyer', t.tradeId)
      if (fresh.state === t.state) await this.advance(fresh)
    })
  }

  /** The step each state takes. */
  private async advance (t: BuyerTrade): Promise<void> {
    switch (t.state) {
      case 'demanded': {
        if (!t.data.published || !t.data.posted) t = await publishDemand(this.ctx, t)
        const { offerWindowMs, offerGraceMs } = this.ctx.options.trade
        const windowEnd = Date.parse(t.createdAt) + offerWindowMs
        const windowOver = Date.now() >= windowEnd
        if (!windowOver) {
          // Early choice: the offers recorded so far were each checked at arrival (offers.ts checkOffer:
          // signed for this demand by the sending peer's account, backed by CISC); once they are enough for
          // the demand, a short grace lets more come, then the choice checks them all again. Short of
          // offers, the window (the most we wait) ends as before, with the DHT solicitation.
          const since = enoughOffers(t) ? (this.enoughSince.get(t.tradeId) ?? Date.now()) : undefined
          if (since === undefined || Date.now() < (this.retryChoiceAt.get(t.tradeId) ?? 0)) {
            this.wakeAt(t.tradeId, Math.max(windowEnd, this.retryChoiceAt.get(t.tradeId) ?? 0))
            return
          }
          this.enoughSince.set(t.tradeId, since)
          if (Date.now() < since + offerGraceMs) {
            this.wakeAt(t.tradeId, since + offerGraceMs)
            return
          }
        }
        const retryAt = this.retryChoiceAt.get(t.tradeId) ?? 0
        if (Date.now() < retryAt) { this.wakeAt(t.tradeId, retryAt); return }
        const outcome = await chooseCandidates(this.ctx, t, { solicit: windowOver })
        // Too few after all (the choice reads CISC again): back to collecting, until the window's end at least.
        if (outcome === 'collecting') this.retryChoiceAt.set(t.tradeId, windowOver ? Date.now() + offerWindowMs : windowEnd)
        else this.forget(t.tradeId)
        // Chosen: on to the attestation in this same step, not at the next look.
        if (outcome === 'chosen') await this.attestAndEscrow(await this.ctx.trades.require<BuyerTradeData>('buyer', t.tradeId))
        return
      }
      case 'attesting':
        await this.attestAndEscrow(t)
        return
      default: {
        if (await this.ctx.chain.dtmc.trade(t.tradeId) === null) {
          await reopenVanishedEscrow(this.ctx, t)
          return
        }
        const settled = await followConsensus(this.ctx, t)
        if (settled !== undefined) {
          await fetchResult(this.ctx, settled.t, settled.view)
          // The refund (consensus.ts leaves it until the result is in). Withdrawals take all our credit on DTMC:
          // one that fails here is taken by the next one (a later trade's), so it does not hold this trade up.
          await withdrawCredit(this.ctx).catch((err: unknown) => { log.warn('refund not withdrawn yet', { tradeId: t.tradeId, err: err as Error }) })
        }
      }
    }
  }

  private forget (tradeId: string): void {
    this.retryChoiceAt.delete(tradeId)
    this.enoughSince.delete(tradeId)
    clearTimeout(this.timers.get(tradeId))
    this.timers.delete(tradeId)
  }

  /** Steps 4 and 5: attest every candidate, deliver the code to the n fastest valid ones that take it, escrow. */
  private async attestAndEscrow (t: BuyerTrade): Promise<void> {
    // A restart after openTrade was sent: the chain has the trade; take the chosen parties from it.
    if (await this.ctx.chain.dtmc.trade(t.tradeId) !== null) {
      await this.ctx.trades.transition(t, 'escrowed', { note: 'escrow found on chain after a restart' })
      return
    }
    const d = demandOf(t)
    // A step that keeps failing after the choice (the escrow reverting, say) is tried again at each look, attesting
    // again: not past the demand's expiry, when its sellers' and nodes' offers are stale. Not while a transaction of
    // ours is pending either: it may be this trade's openTrade, sent before a restart, which DTMC would still open.
    if (Date.now() / 1000 >= d.expiresAt && !await this.hasPendingTransactions()) {
      await this.ctx.trades.transition(t, 'failed', { data: { codeEnvelopes: undefined }, reason: 'the demand expired before the escrow was opened' })
      return
    }
    const started = Date.now()
    const { valid, refused: unattested, unanswered: unansweredAttestations, duplicates } = await attestNodes(this.ctx, t, this.seenNonces)
    let refused = unattested
    let unanswered = unansweredAttestations
    let chosen: ChosenNode[] = []
    if (valid.length >= d.nodes) {
      // The fastest valid ones get the code; one that does not take it is replaced by the next fastest.
      for (let next = 0; chosen.length < d.nodes && next < valid.length;) {
        const batch = valid.slice(next, next + d.nodes - chosen.length)
        next += batch.length
        t = await keepCodeEnvelopes(this.ctx, t, batch)
        const sent = await deliverCode(this.ctx, t, batch)
        chosen = [...chosen, ...sent.delivered]
        refused = [...refused, ...sent.refused]
        unanswered = [...unanswered, ...sent.unanswered]
      }
    }
    const rejected = [...(t.data.rejected ?? []), ...refused]
    if (chosen.length < d.nodes) {
      const why = valid.length < d.nodes
        ? `only ${valid.length} of ${d.nodes} enclaves attested`
        : `only ${chosen.length} of ${d.nodes} attested enclaves took the code`
      // A node whose enclave does not attest (forged, or down) or does not take the code must not end the trade when
      // others offer or would: such a node offering fast on every demand would otherwise fail every trade it is a
      // candidate of (test/attacks/forged-enclave-offers-first.test.ts), or hold it in `attesting` for good
      // (code-refused-after-attestation.test.ts). The refused are struck from the trade and the buyer collects again,
      // with the window's solicitation, until the demand nearly expires; the code the others took stays theirs (the
      // kept envelopes are sent again as they are). The peer and its account are struck (an account can register
      // another peer id). Bounded: each round strikes or spares (below) at least one, at MAX_UNATTESTED_PER_TRADE
      // struck accounts the trade fails, and it never collects past the demand's expiry margin.
      //
      // A node that only did not answer in time (a timeout, a failed stream, a busy enclave: an honest node under load
      // looks the same) gets one more round: it is struck at its second miss in the trade, at once for a refusal or a
      // bad quote. Counted by account, so that a new peer id of the same account gets no second spare. Bounded as
      // before: an account spared now is struck at its next miss.
      // A second quote of one enclave strikes its peer only: the quote binds the node's account (so a relay of another
      // account's enclave is a bad quote), and the same account offering through two peers keeps the faster one.
      const accountOf = (peerId: string): string | undefined => t.data.nodeOffers.find(o => o.peerId === peerId)?.account.toLowerCase()
      const missedBefore = new Set(t.data.unansweredAccounts ?? [])
      const spared = new Set(unanswered.filter(p => { const a = accountOf(p); return a !== undefined && !missedBefore.has(a) }))
      const struck = refused.filter(r => !spared.has(r.peerId))
      const unansweredAccounts = [...new Set([...missedBefore, ...unanswered.flatMap(p => accountOf(p) ?? [])])]
      const unattestedPeers = [...new Set([...(t.data.unattestedPeers ?? []), ...struck.map(r => r.peerId)])]
      const unattestedAccounts = [...new Set([...(t.data.unattestedAccounts ?? []),
        ...struck.filter(r => !duplicates.includes(r.peerId)).flatMap(r => accountOf(r.peerId) ?? [])])]
      if (refused.length > 0 && unattestedAccounts.length < MAX_UNATTESTED_PER_TRADE && Date.now() / 1000 < d.expiresAt - EXPIRY_MARGIN_SECONDS) {
        await this.ctx.trades.transition(t, 'demanded', {
          data: {
            rejected,
            unattestedPeers,
            unattestedAccounts,
            unansweredAccounts,
            nodeOffers: t.data.nodeOffers.filter(o => !unattestedPeers.includes(o.peerId) && !unattestedAccounts.includes(o.account.toLowerCase()))
          },
          note: `${why}: ${struck.length} struck from the trade, ${spared.size} unanswered given another round; collecting offers again`
        })
        log.info('collecting offers again', { tradeId: t.tradeId, why, struck: struck.length, spared: spared.size })
        this.ctx.wake('buyer')
        return
      }
      await this.ctx.trades.transition(t, 'failed', { data: { rejected, unattestedPeers, unattestedAccounts, unansweredAccounts, codeEnvelopes: undefined }, reason: why })
      return
    }
    t = await this.ctx.trades.update(t, { chosenNodes: chosen, rejected, phaseMs: { ...t.data.phaseMs, attestation: Date.now() - started } })
    await openEscrow(this.ctx, t, chosen)
  }

  /** Whether a transaction of ours is sent but not mined yet. */
  private async hasPendingTransactions (): Promise<boolean> {
    const address = this.ctx.keys.ethAddress
    const [pending, mined] = await Promise.all([
      this.ctx.chain.provider.getTransactionCount(address, 'pending'), this.ctx.chain.provider.getTransactionCount(address, 'latest')
    ])
    return pending > mined
  }

  /** buyer_result: step 10. */
  async result (tradeId: string): Promise<{ result: string, resultHash: string, verified: boolean, gasUsed: string }> {
    return await readResult(this.ctx, tradeId)
  }

  /** buyer_rate: step 11. */
  async rate (tradeId: string, seller: string, score: number, comment: string): Promise<{ txHash: string }> {
    return await rateSeller(this.ctx, tradeId, seller, score, comment)
  }

  registerMethods (rpc: RpcServer): void {
    rpc.register({
      name: 'buyer_postDemand',
      summary: 'Posts a demand: gossip on /sdte/bdbc/1 and its hash in BDBC; the trade then runs on its own (see trade_get).',
      params: [
        { name: 'tag', type: 'string', maxLength: 64, pattern: TAG_PATTERN.source, description: 'dataset tag: 1..64 of letters, digits, . _ -' },
        { name: 'code', type: 'hex', required: false, description: 'runtime bytecode of the analysis contract' },
        { name: 'codePath', type: 'path', required: false, description: 'or a compiled artifact (JSON with deployedBytecode) or a hex file' },
        { name: 'nodes', type: 'integer', min: 1, max: MAX_DEMAND_NODES, description: 'how many enclaves run the task' },
        { name: 'sellers', type: 'integer', min: 1, max: MAX_DEMAND_SELLERS, required: false, description: 'how many sellers (default 1)' },
        { name: 'sellerPrice', type: 'wei', bits: 256, description: 'most wei per byte of data' },
        { name: 'sellerCap', type: 'wei', bits: 96, description: 'most wei paid to one seller for its data' },
        { name: 'nodePrice', type: 'wei', bits: 96, description: 'wei per unit of enclave gas' },
        { name: 'nodeCap', type: 'wei', bits: 96, description: 'most wei paid to one node' },
        { name: 'outputPrice', type: 'wei', bits: 96, description: 'wei per output byte, paid to the sellers' },
        { name: 'outputCap', type: 'wei', bits: 64, description: 'most output bytes' },
        { name: 'deadlineSeconds', type: 'integer', min: 60, max: 7 * 24 * 3600, description: 'from escrow to the deadline' },
        { name: 'epsilon', type: 'wei', bits: 64, required: false, description: 'micro-epsilon (1 epsilon = 1000000) charged to each private dataset\'s privacy budget on chain (default 0: no private dataset takes the demand)' }
      ],
      result: r.object({ demandId: r.bytes32(), tradeId: r.bytes32(), codeHash: r.bytes32(), deposit: r.decimal('wei escrowed when the trade opens') }),
      errors: ['Rejected', 'Unavailable', 'ChainReverted'],
      handler: async (p) => {
        if ((p.code === undefined) === (p.codePath === undefined)) throw appError('Rejected', 'give exactly one of code and codePath', { param: 'code' })
        return await this.postDemand(p)
      }
    })
    rpc.register({
      name: 'buyer_result',
      summary: 'The decrypted result of a delivered trade, checked against the final hash on DTMC.',
      params: [{ name: 'tradeId', type: 'bytes32', description: 'the trade' }],
      result: r.object({
        result: r.hex('the decrypted output'),
        resultHash: r.bytes32(),
        verified: r.boolean('keccak(resultSalt ‖ result) is the final hash on DTMC'),
        gasUsed: r.decimal('the enclave gas the run used (inside the encrypted result; never on chain)')
      }),
      errors: ['NotFound', 'Unavailable'],
      handler: async (p) => await this.result(p.tradeId)
    })
    rpc.register({
      name: 'buyer_rate',
      summary: 'Rates a seller of a settled trade (once), recorded in CISC with the result info.',
      params: [
        { name: 'tradeId', type: 'bytes32', description: 'the trade' },
        { name: 'seller', type: 'address', description: "the seller's account" },
        { name: 'score', type: 'integer', min: 1, max: 5, description: '1..5' },
        { name: 'comment', type: 'string', maxLength: 256, required: false, description: 'a short comment' }
      ],
      result: r.object({ txHash: r.bytes32() }),
      errors: ['NotFound', 'Rejected', 'ChainReverted'],
      handler: async (p) => await this.rate(p.tradeId, p.seller, p.score, p.comment ?? '')
    })
  }
}
