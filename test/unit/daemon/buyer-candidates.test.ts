// The buyer's choice of candidates (daemon/roles/buyer/candidates.ts), a pure function of the
// offers, what CISC says about them and the demand: every reason an offer is refused, and the
// choice among valid ones.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { REFUSAL, judgeNodeOffer, judgeSellerOffer, selectCandidates, type DemandTerms, type NodeFacts, type NodeOffer, type RegistryFacts, type SellerFacts, type SellerOffer } from '../../../daemon/roles/buyer/candidates.ts'
import { UNRATED_SELLER_SCORE } from '../../../daemon/roles/buyer/constants.ts'
import type { NodeRecord, OfferRecord, SellerRecord } from '../../../contracts/client.ts'

const MEASUREMENT = '0x' + 'aa'.repeat(32)
const CODE_HASH = '0x' + 'cc'.repeat(32)
const demand: DemandTerms = { tag: 'weather', codeHash: CODE_HASH, sellerPrice: 20n, outputCap: 1024n, nodePrice: 2n, sellers: 2, nodes: 2 }

const account = (i: number): string => '0x' + i.toString(16).padStart(40, '0')
const sellerOffer = (i: number): SellerOffer => ({ peerId: `seller-peer-${i}`, account: account(i), offerId: String(i) })
const nodeOffer = (i: number): NodeOffer => ({ peerId: `node-peer-${i}`, account: account(100 + i), measurement: MEASUREMENT })

function offerRecord (i: number, over: Partial<OfferRecord> = {}): OfferRecord {
  return { offerId: BigInt(i), seller: account(i), tag: 'weather', size: 1000n, unitPrice: 10n, commitment: '0x' + '11'.repeat(32), outputCap: 4096n, minOutputPrice: 0n, active: true, anyCode: true, buyerCount: 0, maxTrades: 0, trades: 0, expiresAt: 0, privateMode: false, epsilonBudget: 0n, epsilonSpent: 0n, ...over }
}
function sellerRecord (i: number, over: Partial<SellerRecord> = {}): SellerRecord {
  return { address: account(i), peerId: `seller-peer-${i}`, registeredAt: 1, ratingCount: 0, ratingSum: 0, ...over }
}
function sellerFacts (i: number, over: { offer?: Partial<OfferRecord>, seller?: Partial<SellerRecord> | null, codeAllowed?: boolean, buyerAllowed?: boolean, now?: number } = {}): SellerFacts {
  return {
    offer: offerRecord(i, over.offer), codeAllowed: over.codeAllowed ?? true, buyerAllowed: over.buyerAllowed ?? true, seller: over.seller === null ? null : sellerRecord(i, over.seller), now: over.now ?? 1_000
  }
}
function nodeRecord (i: number, over: Partial<NodeRecord> = {}): NodeRecord {
  return { address: account(100 + i), peerId: `node-peer-${i}`, measurement: MEASUREMENT, pricePerGas: 1n, maxGas: 10n ** 9n, registeredAt: 1, ...over }
}
function facts (sellers: Array<[number, SellerFacts]>, nodes: Array<[number, NodeFacts]>): RegistryFacts {
  return {
    sellerOffers: new Map(sellers.map(([i, f]) => [String(i), f])),
    nodes: new Map(nodes.map(([i, f]) => [account(100 + i), f])),
    acceptedMeasurements: [MEASUREMENT]
  }
}

test('a seller offer that CISC backs passes, ranked by its rating (unrated: the middle score) and unit price', () => {
  const r = judgeSellerOffer(sellerOffer(1), sellerFacts(1), demand)
  assert.equal(r, { offer: sellerOffer(1), score: UNRATED_SELLER_SCORE, unitPrice: 10n })
  const rated = judgeSellerOffer(sellerOffer(1), sellerFacts(1, { seller: { ratingCount: 2, ratingSum: 9 } }), demand)
  assert.equal(typeof rated === 'string' ? rated : rated.score, 4.5)
})

test('each reason a seller offer is refused', () => {
  const cases: Array<[string, SellerFacts | undefined, string]> = [
    ['nothing read', undefined, REFUSAL.lookupFailed],
    ['lookup failed', { lookupError: 'connection refused' }, `${REFUSAL.lookupFailed}: connection refused`],
    ['delisted', sellerFacts(1, { offer: { active: false } }), REFUSAL.offerInactive],
    ['other tag', sellerFacts(1, { offer: { tag: 'traffic' } }), REFUSAL.otherTag],
    ['offer of another account', sellerFacts(1, { offer: { seller: account(9) } }), REFUSAL.otherSeller],
    ['too dear', sellerFacts(1, { offer: { unitPrice: 21n } }), REFUSAL.unitPriceAbove],
    ['output cap too small', sellerFacts(1, { offer: { outputCap: 1023n } }), REFUSAL.outputCapBelow],
    ['code not allowed', sellerFacts(1, { codeAllowed: false }), REFUSAL.codeNotAllowed],
    ['buyer not allowed', sellerFacts(1, { buyerAllowed: false }), REFUSAL.buyerNotAllowed],
    ['expired', sellerFacts(1, { offer: { expiresAt: 1_000 }, now: 1_000 }), REFUSAL.offerExpired],
    ['had its trades', sellerFacts(1, { offer: { maxTrades: 2, trades: 2 } }), REFUSAL.offerExhausted],
    ['seller not registered', sellerFacts(1, { seller: null }), REFUSAL.sellerPeerMismatch],
    ['offer sent by another peer', sellerFacts(1, { seller: { peerId: 'someone-else' } }), REFUSAL.sellerPeerMismatch]
  ]
  for (const [what, f, why] of cases) {
    const r = judgeSellerOffer(sellerOffer(1), f, demand)
    assert.type(r, 'string', what)
    assert.ok((r as string).startsWith(why), `${what}: ${r as string}`)
  }
  // At the bounds the offer passes: unit price equal to the demand's, output cap equal to it.
  assert.type(judgeSellerOffer(sellerOffer(1), sellerFacts(1, { offer: { unitPrice: 20n, outputCap: 1024n } }), demand), 'object')
  assert.type(judgeSellerOffer(sellerOffer(1), sellerFacts(1, { offer: { expiresAt: 1_001, maxTrades: 2, trades: 1 }, now: 1_000 }), demand), 'object')
})

test('a private offer: taken only by a demand whose epsilon fits its remaining budget (CISC would revert the trade)', () => {
  const priv = sellerFacts(1, { offer: { anyCode: false, privateMode: true, epsilonBudget: 3_000_000n, epsilonSpent: 1_000_000n } })
  assert.is(judgeSellerOffer(sellerOffer(1), priv, demand), REFUSAL.privacyBudget, 'no epsilon declared')
  assert.is(judgeSellerOffer(sellerOffer(1), priv, { ...demand, epsilon: 2_000_001n }), REFUSAL.privacyBudget, 'over what is left')
  assert.type(judgeSellerOffer(sellerOffer(1), priv, { ...demand, epsilon: 2_000_000n }), 'object', 'exactly what is left')
  // A demand with an epsilon is a private trade: the enclaves run private and ordinary sellers' data together in
  // neither mode (PrivacyMismatchError), so an ordinary offer would end the trade without a result.
  assert.is(judgeSellerOffer(sellerOffer(1), sellerFacts(1), { ...demand, epsilon: 5n }), REFUSAL.notPrivate, 'an "any" offer for a private trade')
  assert.type(judgeSellerOffer(sellerOffer(1), sellerFacts(1), demand), 'object', 'an "any" offer for an ordinary trade')
  const mixed = selectCandidates({ ...demand, sellers: 2, epsilon: 1_000_000n }, { sellers: [sellerOffer(1), sellerOffer(2)], nodes: [] }, facts([[1, priv], [2, sellerFacts(2)]], []))
  assert.equal(mixed.sellers.map(s => String(s.offerId)), ['1'], 'only the private offer is chosen')
})

test('each reason a node offer is refused', () => {
  const cases: Array<[string, NodeFacts | undefined, string]> = [
    ['nothing read', undefined, REFUSAL.lookupFailed],
    ['lookup failed', { lookupError: 'timeout' }, `${REFUSAL.lookupFailed}: timeout`],
    ['not registered', null, REFUSAL.nodeNotRegistered],
    ['offer sent by another peer', nodeRecord(1, { peerId: 'someone-else' }), REFUSAL.nodePeerMismatch],
    ['measurement not accepted', nodeRecord(1, { measurement: '0x' + 'bb'.repeat(32) }), REFUSAL.measurementNotAccepted],
    ['too dear', nodeRecord(1, { pricePerGas: 3n }), REFUSAL.gasPriceAbove]
  ]
  for (const [what, f, why] of cases) {
    const r = judgeNodeOffer(nodeOffer(1), f, demand, [MEASUREMENT])
    assert.type(r, 'string', what)
    assert.ok((r as string).startsWith(why), `${what}: ${r as string}`)
  }
  assert.is(judgeNodeOffer(nodeOffer(1), nodeRecord(1, { pricePerGas: 2n, measurement: MEASUREMENT.toUpperCase().replace('0X', '0x') }), demand, [MEASUREMENT]), null)
})

test('the choice: best rated sellers first, then cheapest, at most the demand\'s number; every usable node kept', () => {
  const offers = { sellers: [1, 2, 3, 4, 5].map(sellerOffer), nodes: [1, 2, 3].map(nodeOffer) }
  const c = selectCandidates(demand, offers, facts([
    [1, sellerFacts(1, { seller: { ratingCount: 1, ratingSum: 2 } })], // rated 2
    [2, sellerFacts(2, { offer: { unitPrice: 15n } })], // unrated (3), dearer
    [3, sellerFacts(3, { offer: { unitPrice: 5n } })], // unrated (3), cheapest
    [4, sellerFacts(4, { seller: { ratingCount: 2, ratingSum: 10 } })], // rated 5
    [5, sellerFacts(5, { offer: { active: false } })]
  ], [[1, nodeRecord(1)], [2, null], [3, nodeRecord(3)]]))
  assert.equal(c.sellers.map(s => s.offerId), ['4', '3'])
  assert.equal(c.nodes.map(n => n.peerId), ['node-peer-1', 'node-peer-3'])
  assert.equal(c.rejected, [{ peerId: 'seller-peer-5', why: REFUSAL.offerInactive }, { peerId: 'node-peer-2', why: REFUSAL.nodeNotRegistered }])
  assert.ok(c.enough)
})

test('equal offers keep their arrival order', () => {
  const offers = { sellers: [3, 1, 2].map(sellerOffer), nodes: [1, 2].map(nodeOffer) }
  const c = selectCandidates({ ...demand, sellers: 3 }, offers, facts([[1, sellerFacts(1)], [2, sellerFacts(2)], [3, sellerFacts(3)]], [[1, nodeRecord(1)], [2, nodeRecord(2)]]))
  assert.equal(c.sellers.map(s => s.offerId), ['3', '1', '2'])
})

test('not enough: no usable seller, or fewer usable nodes than the demand\'s n', () => {
  const noSeller = selectCandidates(demand, { sellers: [sellerOffer(1)], nodes: [1, 2].map(nodeOffer) },
    facts([[1, sellerFacts(1, { codeAllowed: false })]], [[1, nodeRecord(1)], [2, nodeRecord(2)]]))
  assert.not.ok(noSeller.enough)
  assert.equal(noSeller.sellers, [])
  const oneNode = selectCandidates(demand, { sellers: [sellerOffer(1)], nodes: [1, 2].map(nodeOffer) },
    facts([[1, sellerFacts(1)]], [[1, nodeRecord(1)], [2, nodeRecord(2, { pricePerGas: 5n })]]))
  assert.not.ok(oneNode.enough)
  assert.is(oneNode.nodes.length, 1)
  // One usable seller of the two asked for is enough to go on (the trade names the sellers it has).
  const oneSeller = selectCandidates(demand, { sellers: [sellerOffer(1)], nodes: [1, 2].map(nodeOffer) },
    facts([[1, sellerFacts(1)]], [[1, nodeRecord(1)], [2, nodeRecord(2)]]))
  assert.ok(oneSeller.enough)
})

test.run()
