// What the buyer records about one trade (trade_get shows it; never a secret: the bytecode is
// sealed under the buyer's local key).
import { decodeDemand, type Demand } from '../../../p2p/index.ts'
import type { Quote } from '../../../contracts/index.ts'
import type { RunDiagnosis } from '../../../enclave/index.ts'
import type { TradeRecord } from '../../trades.ts'
import type { NodeOffer, Refusal, SellerOffer } from './candidates.ts'

/** A node that passed attestation: its quote goes to DTMC, its task key gets the code. */
export interface ChosenNode { peerId: string, payee: string, quote: Quote, enclavePublicKey: string, attestMs: number }

export interface BuyerTradeData {
  /** The signed demand as gossiped (JSON text: amounts are decimal strings there). */
  demand: string
  demandHash: string
  salt: string
  codeHash: string
  /** The bytecode, AES-GCM under the buyer's local key (base64). */
  sealedCode: string
  gasCap: string
  published: boolean
  posted: boolean
  sellerOffers: SellerOffer[]
  nodeOffers: NodeOffer[]
  chosenSellers?: SellerOffer[]
  chosenNodes?: ChosenNode[]
  /**
   * The code envelope sent to each task (by task id; hex, and the buyer's signature over it), kept so that a delivery
   * tried again sends the same bytes (attestation.ts keepCodeEnvelopes). Ciphertext to the enclave; not shown by trade_get.
   * Each is at most MAX_ENVELOPE_SIZE (enclave/constants.ts) as hex; one per task sent the code (the chosen, and those that did not take it);
   * dropped once the escrow is open (the code is with the chosen) or the trade failed.
   */
  codeEnvelopes?: Record<string, { envelope: string, signature: string }>
  rejected?: Refusal[]
  /**
   * Peers whose enclave failed attestation for this trade, and their node accounts (lowercase; an account can
   * register another peer id): struck from it (offers of either are not taken again, the peers not solicited;
   * the buyer collects others instead: index.ts attestAndEscrow). At most MAX_UNATTESTED_PER_TRADE, then it fails.
   */
  unattestedPeers?: string[]
  unattestedAccounts?: string[]
  /**
   * Node accounts (lowercase) whose peer did not answer an attestation or a code delivery in time once in this trade
   * (a timeout, a failed stream, a busy enclave): spared that once, struck at a second miss (index.ts attestAndEscrow).
   */
  unansweredAccounts?: string[]
  deposit?: string
  deadline?: number
  /** The openTrade transaction (a reorganisation that drops it is repaired: escrow.ts reopenVanishedEscrow). */
  escrowTx?: string
  finalResultHash?: string
  finalStatus?: number
  /** Why the final run delivered no output, as the enclave told this buyer (encrypted to it; enclave RunDiagnosis). */
  diagnosis?: RunDiagnosis
  resultSize?: string
  refund?: string
  /** The sellers' data fees DTMC held after the refund that came back to us after its claim window (held-fees.ts). */
  heldFeesReturned?: string
  payments?: Record<string, string>
  ratings?: Record<string, number>
  phaseMs?: Record<string, number>
  /** The block openTrade was mined in (where the trade's log queries start). */
  openedBlock?: number
}

export type BuyerTrade = TradeRecord<BuyerTradeData>

/** The demand of a trade record, decoded and checked again. */
export function demandOf (t: BuyerTrade): Demand {
  return decodeDemand(new TextEncoder().encode(t.data.demand)).demand
}
