// Step 3: what CISC says about the offers of a trade, read for the pure choice in candidates.ts.
import type { Demand } from '../../../p2p/index.ts'
import type { RoleContext } from '../context.ts'
import type { NodeFacts, NodeOffer, RegistryFacts, SellerFacts, SellerOffer } from './candidates.ts'

export async function readRegistry (ctx: RoleContext, d: Demand, offers: { sellers: readonly SellerOffer[], nodes: readonly NodeOffer[] }): Promise<RegistryFacts> {
  const cisc = ctx.chain.cisc
  const sellerOffers = new Map<string, SellerFacts>(await Promise.all(offers.sellers.map(async (o): Promise<[string, SellerFacts]> => {
    try {
      const [offer, codeAllowed, seller] = await Promise.all([cisc.offer(BigInt(o.offerId)), cisc.isCodeAllowed(BigInt(o.offerId), d.codeHash), cisc.seller(o.account)])
      return [o.offerId, { offer, codeAllowed, seller }]
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
