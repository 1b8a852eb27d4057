// The phases of one trade (the demo prints them, bench/trade measures them), derived from the records every party keeps (trade_get on the buyer, the
// seller and each chosen node) and the nodes' log line for the enclave run. All daemons run on one
// machine, so their timestamps share a clock. Boundaries are chosen so that the phases add up to the
// buyer's total (demand posted to result checked):
//
//   discovery    buyer demanded -> attesting            (offer window, DHT solicitation, CISC filter)
//   attestation  buyer attesting -> escrow started      (every candidate attested, the n fastest get the code)
//   escrow       openTrade sent -> mined                 (buyer's phaseMs.escrow)
//   delivery     buyer escrowed -> last node executing   (seller sees the trade, attests each enclave, streams its
//                                                          data; each node sees code and data complete)
//   execution    last node executing -> last submitted   (the enclave runs, submitResult)
//   consensus    last node submitted -> buyer finalized  (reveals, DTMC settles, the buyer sees it)
//   result       buyer finalized -> buyer delivered      (fetch the encrypted result, decrypt, check the final hash)
//
// Every hand-over between daemons waits for the event that wakes the receiving daemon (a new block seen, a
// stream message) or, when it missed it, its next safety poll (trade.tickMs), which is part of the phase it
// starts. The end of the delivery is taken from the
// nodes, not from the seller's own record: a seller whose stream failed after the enclave already had
// every chunk marks its delivery done only after a retry, while the node has already gone on.
import { SdteError, type TradeRole } from '../../config/index.ts'

export interface TimelineEntry { state: string, at: string, note?: string }

export interface PartyRecord {
  role: TradeRole
  state: string
  reason?: string
  createdAt: string
  updatedAt: string
  timeline: TimelineEntry[]
  phaseMs?: Record<string, number>
  nodes?: Array<{ index: number, delivered: boolean, sentBytes: number }>
  gasUsed?: string
}

export const PHASES = ['discovery', 'attestation', 'escrow', 'delivery', 'execution', 'consensus', 'result'] as const
export type Phase = typeof PHASES[number]

export interface TradePhases {
  phases: Record<Phase, number>
  totalMs: number
  /** Buyer escrowed -> the seller's record created (the seller's poll of DTMC). */
  sellerPickupMs: number
  /** Seller delivering -> executing, as the seller saw it: attest every enclave and stream the data to all of them (retries included). */
  sellerTransferMs: number
  /** The longest enclave run among the chosen nodes (from their logs), ms. */
  enclaveRunMs: number
}

export class MissingStepError extends SdteError {
  override name = 'MissingStepError'
  override code = 'ERR_MISSING_STEP'
}

/** When the record first entered `state` (ms since the epoch). */
export function stepAt (rec: PartyRecord, state: string): number {
  const e = rec.timeline.find(x => x.state === state)
  if (e === undefined) throw new MissingStepError(`the ${rec.role} record has no "${state}" step (timeline: ${rec.timeline.map(x => x.state).join(', ')})`)
  return Date.parse(e.at)
}

/** The enclave run time a node logged for this trade ('analysis ran in the enclave' {..., ms}). */
export function enclaveRunMsFromLog (log: string, tradeId: string): number | undefined {
  for (const line of log.split('\n')) {
    if (!line.includes('analysis ran in the enclave') || !line.includes(tradeId)) continue
    const json = line.slice(line.indexOf('{'))
    try {
      const ms = (JSON.parse(json) as { ms?: unknown }).ms
      if (typeof ms === 'number') return ms
    } catch {}
  }
  return undefined
}

export function tradePhases (buyer: PartyRecord, seller: PartyRecord, nodes: PartyRecord[], enclaveRunsMs: number[]): TradePhases {
  const created = Date.parse(buyer.createdAt)
  // The last `attesting` entry: a round whose enclaves did not attest sends the trade back to collecting offers
  // (buyer/index.ts attestAndEscrow), and discovery lasts until the round that went on to the escrow.
  const lastAttesting = buyer.timeline.findLast(x => x.state === 'attesting')
  const attesting = lastAttesting === undefined ? stepAt(buyer, 'attesting') : Date.parse(lastAttesting.at)
  const escrowed = stepAt(buyer, 'escrowed')
  const escrowMs = buyer.phaseMs?.escrow ?? 0
  const dataIn = Math.max(...nodes.map(n => stepAt(n, 'executing')))
  const submitted = Math.max(...nodes.map(n => stepAt(n, 'submitted')))
  const finalized = stepAt(buyer, 'finalized')
  const delivered = stepAt(buyer, 'delivered')
  return {
    phases: {
      discovery: attesting - created,
      attestation: escrowed - attesting - escrowMs,
      escrow: escrowMs,
      delivery: dataIn - escrowed,
      execution: submitted - dataIn,
      consensus: finalized - submitted,
      result: delivered - finalized
    },
    totalMs: delivered - created,
    sellerPickupMs: Date.parse(seller.createdAt) - escrowed,
    sellerTransferMs: stepAt(seller, 'executing') - stepAt(seller, 'delivering'),
    enclaveRunMs: enclaveRunsMs.length === 0 ? NaN : Math.max(...enclaveRunsMs)
  }
}
