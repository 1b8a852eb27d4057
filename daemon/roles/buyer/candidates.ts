// Step 3, the choice at the end of the offer window (docs/protocol.md "Offers and discovery"):
// which offers are usable and which are chosen, given the offers, what the registry (CISC) says
// about them and the demand. Pure: registry.ts reads the facts, offers.ts acts on the choice.
import type { NodeRecord, OfferRecord, SellerRecord } from '../../../contracts/index.ts'
import type { Demand } from '../../../p2p/index.ts'
import { UNRATED_SELLER_SCORE } from './constants.ts'

/** A seller's offer as it reached us: the peer that sent it, the account and CISC offer it names. */
export interface SellerOffer { peerId: string, account: string, offerId: string }
/** A node's offer as it reached us: the peer that sent it, its account and its enclave measurement. */
export interface NodeOffer { peerId: string, account: string, measurement: string }
export interface Refusal { peerId: string, why: string }

/**
 * What CISC says about one seller offer: its record, whether it allows the code and us as its buyer, its seller,
 * and the chain time it was read at (for the offer's expiry); or why it could not be read.
 */
export type SellerFacts = { offer: OfferRecord, codeAllowed: boolean, buyerAllowed: boolean, seller: SellerRecord | null, now: number } | { lookupError: string }
/** What CISC says about one node account: its record, null when not registered; or why it could not be read. */
export type NodeFacts = NodeRecord | null | { lookupError: string }

export interface RegistryFacts {
  /** By offer id (decimal string). */
  sellerOffers: ReadonlyMap<string, SellerFacts>
  /** By account (lowercase). */
  nodes: ReadonlyMap<string, NodeFacts>
  /** The enclave measurements the network accepts (lowercase). */
  acceptedMeasurements: readonly string[]
}

/** The terms of a demand the choice depends on. */
export type DemandTerms = Pick<Demand, 'tag' | 'codeHash' | 'sellerPrice' | 'outputCap' | 'nodePrice' | 'sellers' | 'nodes'> & { epsilon?: bigint }

/** Why an offer is refused; the trade record keeps the reason (`rejected`). */
export const REFUSAL = {
  lookupFailed: 'CISC lookup failed',
  offerInactive: 'offer inactive',
  otherTag: 'offer is for another tag',
  otherSeller: 'offer belongs to another seller',
  unitPriceAbove: 'unit price above the demand',
  outputCapBelow: 'output cap of the offer below the demand',
  codeNotAllowed: 'code not allowed by the seller',
  buyerNotAllowed: 'buyer not allowed by the seller',
  offerExpired: 'offer expired',
  offerExhausted: 'offer has had its maximum of trades',
  privacyBudget: 'private offer: the demand declares no epsilon, or more than its remaining privacy budget',
  notPrivate: 'ordinary offer: the demand declares an epsilon, and a private trade takes private datasets only',
  sellerPeerMismatch: 'peer id is not the one registered for the seller',
  nodeNotRegistered: 'not a registered node',
  nodePeerMismatch: 'peer id is not the one registered for the node',
  measurementNotAccepted: 'enclave measurement not accepted by the network',
  gasPriceAbove: 'price per gas above the demand'
} as const

/** A usable seller offer, with what it is ranked by. */
export interface RankedSeller { offer: SellerOffer, score: number, unitPrice: bigint }

/** A seller offer passes when CISC backs it: the offer, its terms, and the peer id of its seller. */
export function judgeSellerOffer (o: SellerOffer, facts: SellerFacts | undefined, d: DemandTerms): RankedSeller | string {
  if (facts === undefined) return `${REFUSAL.lookupFailed}: no record read`
  if ('lookupError' in facts) return `${REFUSAL.lookupFailed}: ${facts.lookupError}`
  const { offer, codeAllowed, buyerAllowed, seller, now } = facts
  if (!offer.active) return REFUSAL.offerInactive
  // CISC would refuse these at openTrade, failing the whole trade: leave the offer out instead.
  if (offer.expiresAt !== 0 && now >= offer.expiresAt) return REFUSAL.offerExpired
  if (offer.maxTrades !== 0 && offer.trades >= offer.maxTrades) return REFUSAL.offerExhausted
  const epsilon = d.epsilon ?? 0n
  if (offer.privateMode && (epsilon === 0n || epsilon > offer.epsilonBudget - offer.epsilonSpent)) return REFUSAL.privacyBudget
  // The enclaves run private and ordinary sellers' data together in neither mode (PrivacyMismatchError): a private
  // trade with an ordinary seller would end without a result. And the analysis was written for the private mode.
  if (!offer.privateMode && epsilon !== 0n) return REFUSAL.notPrivate
  if (offer.tag !== d.tag) return REFUSAL.otherTag
  if (offer.seller.toLowerCase() !== o.account.toLowerCase()) return REFUSAL.otherSeller
  if (offer.unitPrice > d.sellerPrice) return REFUSAL.unitPriceAbove
  if (offer.outputCap < d.outputCap) return REFUSAL.outputCapBelow
  if (!codeAllowed) return REFUSAL.codeNotAllowed
  if (!buyerAllowed) return REFUSAL.buyerNotAllowed
  if (seller === null || seller.peerId !== o.peerId) return REFUSAL.sellerPeerMismatch
  return { offer: o, score: seller.ratingCount === 0 ? UNRATED_SELLER_SCORE : seller.ratingSum / seller.ratingCount, unitPrice: offer.unitPrice }
}

/** A node offer passes when CISC has the node with this peer id, an accepted measurement and a price within the demand. */
export function judgeNodeOffer (o: NodeOffer, facts: NodeFacts | undefined, d: DemandTerms, acceptedMeasurements: readonly string[]): string | null {
  if (facts === undefined) return `${REFUSAL.lookupFailed}: no record read`
  if (facts !== null && 'lookupError' in facts) return `${REFUSAL.lookupFailed}: ${facts.lookupError}`
  if (facts === null) return REFUSAL.nodeNotRegistered
  if (facts.peerId !== o.peerId) return REFUSAL.nodePeerMismatch
  if (!acceptedMeasurements.includes(facts.measurement.toLowerCase())) return REFUSAL.measurementNotAccepted
  if (facts.pricePerGas > d.nodePrice) return REFUSAL.gasPriceAbove
  return null
}

export interface Candidates {
  /** The sellers chosen: best rated first, then cheapest, at most the demand's number. */
  sellers: SellerOffer[]
  /** Every usable node, in offer order: attestation then keeps the n fastest. */
  nodes: NodeOffer[]
  rejected: Refusal[]
  /** At least one seller and at least n nodes: the trade can go on to attestation. */
  enough: boolean
}

export function selectCandidates (d: DemandTerms, offers: { sellers: readonly SellerOffer[], nodes: readonly NodeOffer[] }, facts: RegistryFacts): Candidates {
  const rejected: Refusal[] = []
  const usable: RankedSeller[] = []
  for (const o of offers.sellers) {
    const r = judgeSellerOffer(o, facts.sellerOffers.get(o.offerId), d)
    if (typeof r === 'string') rejected.push({ peerId: o.peerId, why: r })
    else usable.push(r)
  }
  // Best rated first, then cheapest; the sort is stable, so equal offers keep their arrival order.
  usable.sort((a, b) => b.score - a.score || (a.unitPrice < b.unitPrice ? -1 : a.unitPrice > b.unitPrice ? 1 : 0))
  const nodes: NodeOffer[] = []
  for (const o of offers.nodes) {
    const why = judgeNodeOffer(o, facts.nodes.get(o.account.toLowerCase()), d, facts.acceptedMeasurements)
    if (why === null) nodes.push(o)
    else rejected.push({ peerId: o.peerId, why })
  }
  const sellers = usable.slice(0, d.sellers).map(s => s.offer)
  return { sellers, nodes, rejected, enough: sellers.length > 0 && nodes.length >= d.nodes }
}
