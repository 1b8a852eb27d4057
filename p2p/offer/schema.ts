// The wire messages of /sdte/offer/1. One request and one reply per stream; the client closes its
// side after the request (the server answers only then) and the server after its reply:
//   seller/node -> buyer   Offer        -> OfferAck | Refused     (answer to a gossiped demand)
//   buyer -> provider      Solicit      -> Offer | Refused        (the buyer asks a peer found in the DHT)
import { schema as s, type Infer } from '../messages/index.ts'
import { DemandSchema } from '../demand/index.ts'

export const Offer = s.object({
  type: s.literal('offer'),
  demandId: s.hex({ bytes: 32 }),
  kind: s.oneOf(['seller', 'node'] as const),
  /** The Ethereum account registered in CISC with this peer id. */
  account: s.hex({ bytes: 20 }),
  /** Seller: the CISC dataset offer id. */
  offerId: s.optional(s.bigintString({ max: (1n << 64n) - 1n })),
  /** Node: its enclave measurement. */
  measurement: s.optional(s.hex({ bytes: 32 })),
  /** By `account`, over the offer, the network and the sending peer id (signature.ts). */
  signature: s.hex({ bytes: 65 })
})
export type Offer = Infer<typeof Offer>

export const Solicit = s.object({ type: s.literal('solicit'), demand: DemandSchema })
export type Solicit = Infer<typeof Solicit>

export const OfferRequest = s.tagged({ offer: Offer, solicit: Solicit })
export type OfferRequest = Infer<typeof OfferRequest>

export const OfferAck = s.object({ type: s.literal('offer-ack'), accepted: s.boolean() })
