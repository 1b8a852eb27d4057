// The offering account's signature over an offer (docs/protocol.md "Offers and discovery"). Peer ids
// and Ethereum accounts cost nothing to make, so an offer is worth a slot in the buyer's offer table
// only when it is signed by the account it names, for this network, this demand and the peer that
// sent it; the buyer then checks in CISC that this account is registered with that peer id.
import { AbiCoder, keccak256, toUtf8Bytes, ZeroHash } from 'ethers'
import { signDigest, recoverDigest } from '../../contracts/index.ts'
import type { Offer } from './schema.ts'

const abi = AbiCoder.defaultAbiCoder()

/** keccak256("SDTE.Offer.v1"): domain tag of the offer signature. */
export const OFFER_TAG = keccak256(toUtf8Bytes('SDTE.Offer.v1'))

/** What an offer is bound to besides its own fields: the network (from the demand) and the sending peer. */
export interface OfferScope {
  chainId: number
  /** The DTMC address of the network (the demand's `dtmc`). */
  dtmc: string
  /** The libp2p peer id the offer is sent from. */
  peerId: string
}

export type UnsignedOffer = Omit<Offer, 'signature'>

export class OfferSignatureError extends Error {
  override name = 'OfferSignatureError'
  readonly code = 'ERR_OFFER_SIGNATURE'
}

/** keccak256(abi.encode(OFFER_TAG, chainId, dtmc, demandId, kind, account, offerId, measurement, keccak256(peerId))). */
export function offerDigestOf (o: UnsignedOffer, scope: OfferScope): string {
  return keccak256(abi.encode(
    ['bytes32', 'uint256', 'address', 'bytes32', 'bytes32', 'address', 'uint256', 'bytes32', 'bytes32'],
    [OFFER_TAG, scope.chainId, scope.dtmc, o.demandId, keccak256(toUtf8Bytes(o.kind)), o.account, o.offerId ?? 0n,
      o.measurement ?? ZeroHash, keccak256(toUtf8Bytes(scope.peerId))]
  )).toLowerCase()
}

/** Signs an offer with the offering account's key (the account must be the offer's `account`). */
export function signOffer (o: UnsignedOffer, scope: OfferScope, privateKey: string): Offer {
  return { ...o, signature: signDigest(privateKey, offerDigestOf(o, scope)) }
}

/** Throws OfferSignatureError unless the offer's `account` signed it for this scope. */
export function verifyOfferSignature (o: Offer, scope: OfferScope): void {
  const { signature, ...unsigned } = o
  let signer: string
  try {
    signer = recoverDigest(offerDigestOf(unsigned, scope), signature)
  } catch (err) {
    throw new OfferSignatureError(`bad offer signature: ${(err as Error).message}`)
  }
  if (signer.toLowerCase() !== o.account.toLowerCase()) throw new OfferSignatureError('the offer is not signed by the account it names')
}
