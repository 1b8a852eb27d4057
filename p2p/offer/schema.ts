// The wire messages of /sdte/offer/1. One request and one reply per stream:
//   seller/node -> buyer   Offer        -> OfferAck | Refused     (answer to a gossiped demand)
//   buyer -> provider      Solicit      -> Offer | Refused        (the buyer asks a peer found in the DHT)
//   buyer -> seller        TradeNotice  -> TradeAck | Refused     (after escrow: go check DTMC and deliver)
import { schema as s, type Infer } from '../messages/index.ts'
import { DemandSchema } from '../demand/demand.ts'
import { MAX_DEMAND_NODES } from '../demand/constants.ts'

export const Offer = s.object({
  type: s.literal('offer'),
  demandId: s.hex({ bytes: 32 }),
  kind: s.oneOf(['seller', 'node'] as const),
  /** The Ethereum account registered in CISC with this peer id. */
  account: s.hex({ bytes: 20 }),
  /** Seller: the CISC dataset offer id. */
  offerId: s.optional(s.bigintString({ max: (1n << 64n) - 1n })),
  /** Node: its enclave measurement. */
  measurement: s.optional(s.hex({ bytes: 32 }))
})
export type Offer = Infer<typeof Offer>

export const Solicit = s.object({ type: s.literal('solicit'), demand: DemandSchema })
export type Solicit = Infer<typeof Solicit>

export const TradeNotice = s.object({
  type: s.literal('trade'),
  tradeId: s.hex({ bytes: 32 }),
  sellerIndex: s.number({ min: 0, max: 7 }),
  nodes: s.array(s.object({
    peerId: s.string({ maxLength: 128 }),
    enclaveAddress: s.hex({ bytes: 20 }),
    taskId: s.hex({ bytes: 32 })
  }), { minItems: 1, maxItems: MAX_DEMAND_NODES })
})
export type TradeNotice = Infer<typeof TradeNotice>

export const OfferRequest = s.tagged({ offer: Offer, solicit: Solicit, trade: TradeNotice })
export type OfferRequest = Infer<typeof OfferRequest>

export const OfferAck = s.object({ type: s.literal('offer-ack'), accepted: s.boolean() })
export const TradeAck = s.object({ type: s.literal('trade-ack') })
