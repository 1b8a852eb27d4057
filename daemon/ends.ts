// How a trade ends, in words: the one place that turns an end (a run's status on DTMC with what the
// enclave told the buyer, a refund at the deadline, a role giving up) into a sentence for each party.
// trade_get returns it (`explanation`, and each record's `reason`), `sdte watch` prints it and exits 1
// when `failed`, and the trade book logs each role's sentence when its part ends (daemon/trades.ts).
// Each sentence says what happened, what it means for that party's money, and what to do about it.
import { ResultStatus, type TradeView } from '../contracts/index.ts'
import type { RunDiagnosis } from '../enclave/index.ts'
import type { TradeRecord } from './trades.ts'

/** What ended the trade: a run status, a refund, or one role's own failure (before or outside DTMC). */
export type EndKind =
  | 'reverted' | 'out_of_gas' | 'forbidden_opcode' | 'output_over_cap' | 'input_invalid' | 'internal_error' | 'unknown_status'
  | 'refunded_no_result' | 'refunded_no_majority' | 'role_failed'

export interface EndExplanation {
  kind: EndKind
  /** Whether the buyer got no output (`sdte watch` exits 1). */
  failed: true
  /** One sentence anyone reads. */
  summary: string
  /** The same end for each party: what it means for them, and what they can do. */
  buyer: string
  seller: string
  node: string
}

export type EndRole = 'buyer' | 'seller' | 'node'

/** DTMC's ResultInfo.status codes: a name, and what the status means in words. */
export const RUN_STATUS_WORDS: Readonly<Record<number, { kind: EndKind, meaning: string }>> = {
  [ResultStatus.Reverted]: { kind: 'reverted', meaning: 'the analysis stopped with an error (it reverted, hit an invalid instruction or jump, or did not return abi-encoded bytes)' },
  [ResultStatus.OutOfGas]: { kind: 'out_of_gas', meaning: 'the analysis ran out of gas: it used the whole gas cap of the trade before it returned' },
  [ResultStatus.Forbidden]: { kind: 'forbidden_opcode', meaning: 'the analysis used an opcode the enclave refuses (CALL, CALLCODE, DELEGATECALL, CREATE, CREATE2, SELFDESTRUCT, SSTORE, TSTORE, or STATICCALL to anything but the allowed precompiles)' },
  [ResultStatus.OutputOverCap]: { kind: 'output_over_cap', meaning: 'the analysis returned more bytes than the output cap allows' },
  [ResultStatus.InputInvalid]: { kind: 'input_invalid', meaning: 'a seller\'s data did not match what the seller signed and committed to, so nothing ran' },
  [ResultStatus.Internal]: { kind: 'internal_error', meaning: 'the enclave\'s EVM engine failed (not the fault of the code or the data)' }
}

/** Terms of the trade the sentences quote: from DTMC (public). */
export interface RunTerms { gasCap: bigint | string, outputCap: bigint | string }

const NO_OUTPUT = 'no output was delivered'

/**
 * A run that DTMC settled with status `status` (not 0): the majority of the enclaves agreed on it. The
 * diagnosis is what the enclave sent the buyer, encrypted (only the buyer's daemon has it): the opcode and
 * its position, the gas used, the output size, the sellers whose delivery was refused.
 */
export function explainRun (status: number, terms: RunTerms, diagnosis?: RunDiagnosis): EndExplanation {
  const words = RUN_STATUS_WORDS[status] ?? { kind: 'unknown_status' as const, meaning: `the analysis ended with status ${status}, which this version does not know` }
  const d = diagnosis?.status === status ? diagnosis : undefined
  const gasCap = String(d?.gasCap ?? terms.gasCap)
  const outputCap = String(d?.outputCap ?? terms.outputCap)
  let detail = ''
  let buyerFix = ''
  switch (status) {
    case ResultStatus.Forbidden:
      if (d?.opcode !== undefined) detail = `: ${d.opcode} at position ${d.pc ?? '?'} (byte offset ${d.pc === undefined ? '?' : '0x' + d.pc.toString(16)} of the runtime code)`
      buyerFix = 'Remove that opcode from the analysis (call only the precompiles the enclave allows); the enclave never runs it.'
      break
    case ResultStatus.OutOfGas:
      detail = d === undefined ? ` of ${gasCap} gas` : `: it used ${d.gasUsed} of its ${gasCap} gas`
      buyerFix = 'Raise the gas cap (nodeCap / nodePrice), or use the analytics precompiles, which cost far less gas for the same work.'
      break
    case ResultStatus.OutputOverCap:
      detail = d?.outputSize !== undefined ? `: ${d.outputSize} bytes over a cap of ${outputCap} bytes` : ` of ${outputCap} bytes`
      buyerFix = 'Return less, or raise outputCap (a seller\'s own lower output cap also applies).'
      break
    case ResultStatus.InputInvalid:
      if (d?.invalidSellers !== undefined && d.invalidSellers.length > 0) detail = ': ' + d.invalidSellers.map(s => `seller ${s.index} (${s.account}) — ${s.why}`).join('; ')
      else if (d?.inputSize !== undefined) detail = `: the inputs add up to ${d.inputSize} bytes, over the enclave's limit`
      buyerFix = 'Your deposit comes back but the data fees, held for the sellers that can prove their delivery.'
      break
    case ResultStatus.Reverted:
      if (d?.error !== undefined) detail = ` (the enclave reports: ${d.error})`
      buyerFix = 'Run the analysis on sample data locally (the same EVM, hardfork cancun) to find where it stops.'
      break
    case ResultStatus.Internal:
      if (d?.error !== undefined) detail = ` (${d.error})`
      buyerFix = 'Report it to the node operators.'
      break
  }
  const what = `${words.meaning}${detail}`
  const summary = `The trade settled with status ${status} (${words.kind.replace(/_/g, ' ')}): ${what}; ${NO_OUTPUT}.`
  const hidden = d === undefined && status !== ResultStatus.InputInvalid ? ' The details (which opcode where, the gas used, the output size) depend on the data and go, encrypted, to the buyer only.' : ''
  const input = status === ResultStatus.InputInvalid
  return {
    kind: words.kind,
    failed: true,
    summary: summary + hidden,
    buyer: `Your analysis delivered no output: ${what} (status ${status}). ${buyerFix}${input ? '' : ' The nodes of the majority and the sellers are paid as agreed; the output fee is not charged.'}`,
    seller: input
      ? `No analysis ran: ${what}. If your delivery was refused, your data fee is held and you cannot claim it; sellers whose data was accepted claim theirs with their delivery receipts.`
      : `The buyer's analysis ran on your data in the enclave and ${words.meaning.replace(/^the analysis /, '')}${detail === '' || d === undefined ? '' : detail}; ${NO_OUTPUT} to the buyer, so nothing of your data left the enclave. You are paid your data fee.`,
    node: input
      ? `Your enclave ran nothing: ${what} (status ${status}). The nodes of the majority are paid as agreed.`
      : `Your enclave stopped the buyer's analysis: ${words.meaning} (status ${status}). Nothing is wrong with the node; the details go, encrypted, to the buyer only. The nodes of the majority are paid as agreed.`
  }
}

/** A trade DTMC refunded: why, from what DTMC holds (commitments, results and their groups, the deadline). */
export function explainRefund (view: Pick<TradeView, 'deadline' | 'nResults' | 'nCommits' | 'nodes' | 'groups'>): EndExplanation {
  const n = view.nodes.length
  const need = Math.floor(n / 2) + 1
  const deadline = new Date(view.deadline * 1000).toISOString()
  let why: string
  let kind: EndKind = 'refunded_no_majority'
  if (view.nResults === 0) {
    kind = 'refunded_no_result'
    why = view.nCommits === 0
      ? `none of the ${n} nodes submitted a result by the deadline (${deadline}): a seller's data or the buyer's code did not reach the enclaves, or no run finished within its budget`
      : `${view.nCommits} of ${n} nodes committed to a result but none revealed it by the deadline (${deadline})`
  } else if (view.groups.length > 1) {
    why = `the ${view.nResults} results of the ${n} nodes disagree (groups of ${view.groups.map(g => g.count).join(', ')}): no strict majority of ${need}`
  } else {
    why = `only ${view.nResults} of ${n} nodes submitted a result by the deadline (${deadline}); a strict majority needs ${need}`
  }
  return {
    kind,
    failed: true,
    summary: `The trade was refunded: ${why}.`,
    buyer: `Your trade was refunded because ${why}. Your deposit came back but the sellers' data fees, which are held for the sellers that delivered (unclaimed fees return to you after the claim window).`,
    seller: `The trade was refunded because ${why}. If you delivered your data to the enclaves, claim your data fee with your delivery receipts; otherwise you are not paid.`,
    node: `The trade was refunded because ${why}. No node is paid on a refund.`
  }
}

/** One role gave up before DTMC ended the trade (offers, attestation, checks, runs over budget, ...): its record's reason. */
export function explainRoleFailure (role: EndRole, reason: string): EndExplanation {
  const who = role === 'node' ? 'the trusted node' : `the ${role}`
  const summary = `The ${role}'s part of the trade failed: ${reason}.`
  return {
    kind: 'role_failed',
    failed: true,
    summary,
    buyer: role === 'buyer' ? `Your trade failed: ${reason}.` : `${who} dropped out of the trade: ${reason}.`,
    seller: role === 'seller' ? `Your part of the trade failed: ${reason}.` : `${who} dropped out of the trade: ${reason}.`,
    node: role === 'node' ? `Your node's part of the trade failed: ${reason}.` : `${who} dropped out of the trade: ${reason}.`
  }
}

/**
 * The end of a trade as this daemon sees it: DTMC's outcome first (a refund, a status other than 0, with the
 * buyer's diagnosis when this daemon is the buyer), else a record that failed on its own. Null while the
 * trade goes on or when it succeeded.
 */
export function explainTrade (records: ReadonlyArray<TradeRecord>, chain: TradeView | null): EndExplanation | null {
  if (chain?.state === 'refunded') return explainRefund(chain)
  if (chain?.state === 'settled' && chain.final !== null && chain.final.status !== ResultStatus.Ok) {
    const diagnosis = records.find(r => r.role === 'buyer')?.data.diagnosis as RunDiagnosis | undefined
    return explainRun(chain.final.status, chain, diagnosis)
  }
  const failed = records.find(r => r.state === 'failed' && r.reason !== undefined)
  if (failed !== undefined) return explainRoleFailure(failed.role, failed.reason!)
  const refunded = records.find(r => r.state === 'refunded' && r.reason !== undefined)
  if (refunded !== undefined) return explainRoleFailure(refunded.role, refunded.reason!)
  return null
}
