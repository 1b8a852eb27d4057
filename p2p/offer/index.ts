// /sdte/offer/1: offers from sellers and nodes to a buyer, the buyer's solicitations of peers it
// found in the DHT. (Sellers and nodes learn that they were chosen from DTMC's events.) Shaped like p2p/echo.
import { schema as s } from '../messages/index.ts'
import { ProtocolViolationError } from '../errors.ts'
import { answerRequest, protocolEndpoint, requestReply, RefuseRequest, type ProtocolLimits } from '../messages/index.ts'
import * as C from './constants.ts'
import { Offer, OfferAck, OfferRequest, type Solicit } from './schema.ts'
import type { P2PHost } from '../host/index.ts'
import type { Demand } from '../demand/index.ts'

export { Offer, OfferRequest } from './schema.ts'
export * as offerConstants from './constants.ts'
export { OFFER_TAG, OfferSignatureError, offerDigestOf, signOffer, verifyOfferSignature } from './signature.ts'
export type { OfferScope, UnsignedOffer } from './signature.ts'

/** What the roles answer. A handler throws RefuseRequest to decline with a reason. */
export interface OfferHandlers {
  /** Buyer: an offer for one of its demands. Returns whether it was taken into account. */
  onOffer?: (remotePeer: string, offer: Offer) => Promise<boolean>
  /** Seller or node: the buyer asks for an offer on a demand. */
  onSolicit?: (remotePeer: string, demand: Demand) => Promise<Offer>
}

export type OfferOptions = ProtocolLimits

export interface OfferProtocol {
  readonly protocol: string
  /** Serves the protocol with the roles' handlers. */
  start: (handlers: OfferHandlers) => Promise<void>
  stop: () => Promise<void>
  sendOffer: (buyerPeer: string, offer: Offer, o?: { signal?: AbortSignal }) => Promise<boolean>
  solicit: (peerId: string, demand: Demand, o?: { signal?: AbortSignal }) => Promise<Offer>
}

export function offerProtocol (host: P2PHost, options: OfferOptions = {}): OfferProtocol {
  const endpoint = protocolEndpoint(host, C, options)

  async function request<T> (peerId: string, message: unknown, replyType: string, reply: s.Schema<T>, signal?: AbortSignal): Promise<T> {
    return await requestReply(await endpoint.open(peerId, signal), message, replyType, reply)
  }

  return {
    protocol: endpoint.protocol,
    async start (handlers) {
      await endpoint.serve(async (channel, context) => {
        await answerRequest(channel, OfferRequest, 'one offer request', async (req) => {
          if (req.type === 'offer') {
            if (handlers.onOffer === undefined) throw new RefuseRequest('NotBuyer', 'this peer takes no offers')
            return { type: 'offer-ack', accepted: await handlers.onOffer(context.remotePeer, req) }
          }
          if (handlers.onSolicit === undefined) throw new RefuseRequest('NoOffer', 'this peer makes no offers')
          return await handlers.onSolicit(context.remotePeer, (req as Solicit).demand)
        })
      })
    },
    stop: endpoint.stop,
    async sendOffer (buyerPeer, offer, o = {}) {
      return (await request(buyerPeer, offer, 'offer-ack', OfferAck, o.signal)).accepted
    },
    async solicit (peerId, demand, o = {}) {
      const offer = await request(peerId, { type: 'solicit', demand }, 'offer', Offer, o.signal)
      // An offer for another demand is no answer to this one (a confused or replaying peer).
      if (offer.demandId !== demand.demandId.toLowerCase()) {
        throw new ProtocolViolationError(`solicited an offer for demand ${demand.demandId}, got one for ${offer.demandId}`)
      }
      return offer
    }
  }
}
