// Step 3: what CISC says about the offers of a trade, read for the pure choice in candidates.ts.
import type { Demand } from '../../../p2p/index.ts'
import { chainTime, type RoleContext } from '../context.ts'
import type { NodeFacts, NodeOffer, RegistryFacts, SellerFacts, SellerOffer } from './candidates.ts'

export async function readRegistry (ctx: RoleContext, d: Demand, offers: { sellers: readonly SellerOffer[], nodes: readonly NodeOffer[] }): Promise<RegistryFacts> {
  const cisc = ctx.chain.cisc
  const sellerOffers = new Map<string, SellerFacts>(await Promise.all(offers.sellers.map(async (o): Promise<[string, SellerFacts]> => {
    try {
      const id = BigInt(o.offerId)
      const [offer, codeAllowed, buyerAllowed, seller, now] = await Promise.all([
        cisc.offer(id), cisc.isCodeAllowed(id, d.codeHash), cisc.isBuyerAllowed(id, ctx.keys.ethAddress), cisc.seller(o.account), chainTime(ctx.chain)
      ])
      return [o.offerId, { offer, codeAllowed, buyerAllowed, seller, now }]
    } catch (err) {
      return [o.offerId, { lookupError: (err as Error).message }]
    }
  })))
  const accounts = [...new Set(offers.nodes.map(o => o.account.toLowerCase()))]
  const nodes = new Map<string, NodeFacts>(await Promise.all(accounts.map(async (a): Promise<[string, NodeFacts]> => {
    try {
      return [a, await cisc.node(a)]
    } catch (err) {
      return [a, { lookupError: (err as Error).message }]
    }
  })))
  return { sellerOffers, nodes, acceptedMeasurements: ctx.network.measurements }
}
