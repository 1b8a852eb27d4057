// Step 3, Offers and discovery (docs/protocol.md): offers pushed on /sdte/offer/1 during the offer
// window, then offers solicited from the peers the DHT lists for the tag and the accepted enclaves,
// then the choice (candidates.ts) on what CISC says about them.
import { OfferSignatureError, verifyOfferSignature, datasetKey, enclaveKey, type Offer } from '../../../p2p/index.ts'
import type { RoleContext } from '../context.ts'
import { judgeNodeOffer, judgeSellerOffer, selectCandidates } from './candidates.ts'
import { EXPIRY_MARGIN_SECONDS, FIND_PROVIDERS_TIMEOUT_MS, MAX_OFFERS_PER_PEER, MAX_OFFERS_PER_TRADE, MAX_SOLICITED_PEERS, SOLICIT_TIMEOUT_MS } from './constants.ts'
import { log } from './log.ts'
import { readRegistry } from './registry.ts'
import { demandOf, type BuyerTrade, type BuyerTradeData } from './trade.ts'

/** Why an offer of a peer or account struck from the trade (its enclave failed attestation for it) is not taken. */
const UNATTESTED_PEER = 'its enclave failed attestation for this trade'

/** Whether the offer's peer or account was struck from the trade after a failed attestation. */
function struck (t: BuyerTrade, remotePeer: string, offer: Offer): boolean {
  return t.data.unattestedPeers?.includes(remotePeer) === true || t.data.unattestedAccounts?.includes(offer.account.toLowerCase()) === true
}

/**
 * Whether an offer may take a slot, checked before it does (and outside the trade's lock): signed by
 * the account it names for this network, this demand and the peer that sent it; this peer still
 * under MAX_OFFERS_PER_PEER; and CISC backs it as the choice at the end of the window will
 * (candidates.ts). Returns null when it may, else why not. Cheapest checks first: a flood of forged
 * offers costs the buyer a signature recovery each, never a CISC read.
 */
export async function checkOffer (ctx: RoleContext, t: BuyerTrade, remotePeer: string, offer: Offer): Promise<string | null> {
  const d = demandOf(t)
  if (offer.demandId !== d.demandId) return 'offer for another demand'
  if (struck(t, remotePeer, offer)) return UNATTESTED_PEER
  const fromPeer = [...t.data.sellerOffers, ...t.data.nodeOffers].filter(o => o.peerId === remotePeer).length
  if (fromPeer >= MAX_OFFERS_PER_PEER) return `this peer already has ${MAX_OFFERS_PER_PEER} offers recorded`
  try {
    verifyOfferSignature(offer, { chainId: d.chainId, dtmc: d.dtmc, peerId: remotePeer })
  } catch (err) {
    if (err instanceof OfferSignatureError) return err.message
    throw err
  }
  if (offer.kind === 'seller' && offer.offerId !== undefined && offer.measurement === undefined) {
    const o = { peerId: remotePeer, account: offer.account, offerId: offer.offerId.toString() }
    const facts = await readRegistry(ctx, d, { sellers: [o], nodes: [] })
    const r = judgeSellerOffer(o, facts.sellerOffers.get(o.offerId), d)
    return typeof r === 'string' ? r : null
  }
  if (offer.kind === 'node' && offer.measurement !== undefined && offer.offerId === undefined) {
    const o = { peerId: remotePeer, account: offer.account, measurement: offer.measurement }
    const facts = await readRegistry(ctx, d, { sellers: [], nodes: [o] })
    return judgeNodeOffer(o, facts.nodes.get(o.account.toLowerCase()), d, facts.acceptedMeasurements)
  }
  return 'a seller offer names an offer id, a node offer a measurement'
}

/** Records a checked offer (checkOffer) for a trade still collecting them; the caller holds the trade's lock. False: not taken. */
export async function recordOffer (ctx: RoleContext, tradeId: string, remotePeer: string, offer: Offer): Promise<boolean> {
  const t = await ctx.trades.require<BuyerTradeData>('buyer', tradeId)
  if (t.state !== 'demanded') return false
  if (struck(t, remotePeer, offer)) return false
  if (t.data.sellerOffers.length + t.data.nodeOffers.length >= MAX_OFFERS_PER_TRADE) return false
  // Checked before the lock: offers of the same peer checked meanwhile may have filled its share.
  if ([...t.data.sellerOffers, ...t.data.nodeOffers].filter(o => o.peerId === remotePeer).length >= MAX_OFFERS_PER_PEER) return false
  if (offer.kind === 'seller' && offer.offerId !== undefined) {
    if (t.data.sellerOffers.some(o => o.offerId === offer.offerId!.toString())) return true
    await ctx.trades.update(t, { sellerOffers: [...t.data.sellerOffers, { peerId: remotePeer, account: offer.account, offerId: offer.offerId.toString() }] })
  } else if (offer.kind === 'node' && offer.measurement !== undefined) {
    if (t.data.nodeOffers.some(o => o.peerId === remotePeer)) return true
    await ctx.trades.update(t, { nodeOffers: [...t.data.nodeOffers, { peerId: remotePeer, account: offer.account, measurement: offer.measurement }] })
  } else {
    return false
  }
  log.info('offer received', { demandId: offer.demandId, kind: offer.kind, from: remotePeer })
  return true
}

/** Asks the peers that provide the tag or an accepted enclave in the DHT, but have not offered, for an offer; records the answers. */
export async function solicitOffers (ctx: RoleContext, t: BuyerTrade): Promise<void> {
  const d = demandOf(t)
  const keys = [datasetKey(d.tag), ...ctx.network.measurements.map(enclaveKey)]
  // Not asked again: those that offered already, and those whose enclave failed attestation for this trade.
  const offered = new Set([...t.data.sellerOffers, ...t.data.nodeOffers].map(o => o.peerId).concat(t.data.unattestedPeers ?? []))
  const found = (await Promise.all(keys.map(async k => await ctx.p2p.findProviders(k, { limit: MAX_SOLICITED_PEERS, timeoutMs: FIND_PROVIDERS_TIMEOUT_MS }).catch(() => []))))
    .flat().filter(p => !offered.has(p.peerId) && p.peerId !== ctx.p2p.peerId)
  const unique = [...new Map(found.map(p => [p.peerId, p])).values()].slice(0, MAX_SOLICITED_PEERS)
  const solicited = await Promise.all(unique.map(async p => {
    try {
      const offer = await ctx.offer.solicit(p.peerId, d, { signal: AbortSignal.timeout(SOLICIT_TIMEOUT_MS) })
      return offer.demandId === d.demandId ? { peerId: p.peerId, offer } : null
    } catch (err) {
      log.debug('solicitation unanswered', { peer: p.peerId, err: err as Error })
      return null
    }
  }))
  // The caller holds this trade's lock: check and record one by one.
  for (const s of solicited) {
    if (s === null) continue
    const why = await checkOffer(ctx, await ctx.trades.require<BuyerTradeData>('buyer', t.tradeId), s.peerId, s.offer)
    if (why === null) await recordOffer(ctx, t.tradeId, s.peerId, s.offer)
    else log.debug('solicited offer refused', { peer: s.peerId, why })
  }
}

/**
 * Whether the offers recorded so far (each checked at arrival: checkOffer) are enough for the demand: as many
 * sellers as it asks for and at least its number of nodes. The choice (chooseCandidates) may then come before
 * the end of the offer window; it checks every offer against CISC again.
 */
export function enoughOffers (t: BuyerTrade): boolean {
  const d = demandOf(t)
  return t.data.sellerOffers.length >= d.sellers && t.data.nodeOffers.length >= d.nodes
}

/** The timeline notes of the `attesting` entry: what closed the offer window (tests and benchmarks read them). */
export const OFFER_WINDOW_CLOSED = {
  enough: 'offer window closed early: enough offers, then the grace',
  end: 'offer window closed at its end'
} as const

/**
 * The choice, at the end of an offer window or once enough offers came: solicit (`solicit`, at the end of a
 * window: the peers the DHT lists that have not offered), then choose. Enough candidates: `attesting`. Too
 * few: keep collecting ('collecting') until the demand nearly expires, then `failed`. The caller holds the lock.
 */
export async function chooseCandidates (ctx: RoleContext, t0: BuyerTrade, o: { solicit: boolean } = { solicit: true }): Promise<'chosen' | 'collecting' | 'failed'> {
  const started = Date.now()
  if (o.solicit) await solicitOffers(ctx, t0)
  const t = await ctx.trades.require<BuyerTradeData>('buyer', t0.tradeId)
  const d = demandOf(t)
  const offers = { sellers: t.data.sellerOffers, nodes: t.data.nodeOffers }
  const choice = selectCandidates(d, offers, await readRegistry(ctx, d, offers))
  const { sellers, nodes, enough } = choice
  // The refusals of earlier attestation rounds (of the struck, and of the spared: index.ts attestAndEscrow) stay on
  // record beside this choice's.
  const missed = new Set(t.data.unansweredAccounts ?? [])
  const spared = new Set(t.data.nodeOffers.filter(n => missed.has(n.account.toLowerCase())).map(n => n.peerId))
  const rejected = [...(t.data.rejected ?? []).filter(r => t.data.unattestedPeers?.includes(r.peerId) === true || spared.has(r.peerId)), ...choice.rejected]
  const phaseMs = { discovery: Date.now() - Date.parse(t.createdAt) }
  if (!enough) {
    if (Date.now() / 1000 < d.expiresAt - EXPIRY_MARGIN_SECONDS) {
      log.info('not enough offers yet; still collecting', { tradeId: t.tradeId, sellers: sellers.length, nodes: nodes.length, needed: d.nodes })
      return 'collecting'
    }
    await ctx.trades.transition(t, 'failed', {
      data: { rejected, phaseMs },
      reason: `not enough offers: ${sellers.length} usable sellers, ${nodes.length} usable nodes of ${d.nodes} needed`
    })
    return 'failed'
  }
  log.info('candidates chosen', { tradeId: t.tradeId, sellers: sellers.length, nodes: nodes.length, ms: Date.now() - started })
  await ctx.trades.transition(t, 'attesting', {
    data: { chosenSellers: sellers, nodeOffers: nodes, rejected, phaseMs },
    note: `${sellers.length} sellers, ${nodes.length} candidate nodes; ${o.solicit ? OFFER_WINDOW_CLOSED.end : OFFER_WINDOW_CLOSED.enough}`
  })
  return 'chosen'
}
