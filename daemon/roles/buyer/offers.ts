// Step 3, Offers and discovery (docs/protocol.md): offers pushed on /sdte/offer/1 during the offer
// window, then offers solicited from the peers the DHT lists for the tag and the accepted enclaves,
// then the choice (candidates.ts) on what CISC says about them.
import type { Offer } from '../../../p2p/index.ts'
import { datasetKey, enclaveKey } from '../../../p2p/index.ts'
import type { RoleContext } from '../context.ts'
import { selectCandidates } from './candidates.ts'
import { EXPIRY_MARGIN_SECONDS, FIND_PROVIDERS_TIMEOUT_MS, MAX_OFFERS_PER_TRADE, MAX_SOLICITED_PEERS, SOLICIT_TIMEOUT_MS } from './constants.ts'
import { log } from './log.ts'
import { readRegistry } from './registry.ts'
import { demandOf, type BuyerTrade, type BuyerTradeData } from './trade.ts'

/** Records an offer for a trade still collecting them; the caller holds the trade's lock. False: not taken. */
export async function recordOffer (ctx: RoleContext, tradeId: string, remotePeer: string, offer: Offer): Promise<boolean> {
  const t = await ctx.trades.require<BuyerTradeData>('buyer', tradeId)
  if (t.state !== 'demanded') return false
  if (t.data.sellerOffers.length + t.data.nodeOffers.length >= MAX_OFFERS_PER_TRADE) return false
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
  const offered = new Set([...t.data.sellerOffers, ...t.data.nodeOffers].map(o => o.peerId))
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
  // The caller holds this trade's lock: record one by one.
  for (const s of solicited) if (s !== null) await recordOffer(ctx, t.tradeId, s.peerId, s.offer)
}

/**
 * The end of an offer window: solicit, then choose. Enough candidates: `attesting`. Too few: keep
 * collecting ('collecting') until the demand nearly expires, then `failed`. The caller holds the lock.
 */
export async function chooseCandidates (ctx: RoleContext, t0: BuyerTrade): Promise<'chosen' | 'collecting' | 'failed'> {
  const started = Date.now()
  await solicitOffers(ctx, t0)
  const t = await ctx.trades.require<BuyerTradeData>('buyer', t0.tradeId)
  const d = demandOf(t)
  const offers = { sellers: t.data.sellerOffers, nodes: t.data.nodeOffers }
  const { sellers, nodes, rejected, enough } = selectCandidates(d, offers, await readRegistry(ctx, d, offers))
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
    note: `${sellers.length} sellers, ${nodes.length} candidate nodes`
  })
  return 'chosen'
}
