// The trade_* namespace: the trades this daemon takes part in, with their timelines and, where the
// daemon is on a network, what DTMC says of them.
import type { RpcServer } from '../rpc/server.ts'
import { appError } from '../rpc/errors.ts'
import { address, array, boolean, bytes32, decimal, integer, nullable, object, string } from '../rpc/results.ts'
import type { TradeBook, TradeRecord } from '../trades.ts'
import type { ChainClient } from '../../contracts/index.ts'
import { explainTrade } from '../ends.ts'

/** The parts of the daemon the trade methods use. */
export interface TradeParts {
  trades: Pick<TradeBook, 'list' | 'get'>
  chain: { dtmc: Pick<ChainClient['dtmc'], 'trade'> } | null
}

const tradeSummary = object({
  role: string('buyer, seller or node'),
  tradeId: bytes32(),
  state: string('the role\'s state (docs/trade.md)'),
  reason: string('why it failed, when it did'),
  createdAt: string('ISO 8601'),
  updatedAt: string('ISO 8601')
}, { optional: ['reason'] })

/** This daemon's record of a trade in one role: the summary, its timeline, then the role's own data fields. */
const tradeRecord: Record<string, unknown> = {
  ...tradeSummary,
  description: 'this daemon\'s record in one role: the trade summary, its timeline and the role\'s data fields (terms, parties, hashes, payments; never sealed material)',
  properties: {
    ...(tradeSummary.properties as object),
    timeline: array(object({ state: string(), at: string('ISO 8601'), note: string() }, { optional: ['note'] }))
  },
  required: [...(tradeSummary.required as string[]), 'timeline']
}

const resultGroup = object({
  key: bytes32(),
  resultHash: bytes32(),
  resultSize: decimal('bytes'),
  status: integer(),
  count: integer('how many nodes reported it'),
  members: array(integer('node index'))
})

/** The trade on DTMC (contracts/client.ts TradeView). */
const chainTrade = object({
  tradeId: bytes32(),
  buyer: address(),
  state: { type: 'string', enum: ['open', 'settled', 'refunded'] },
  deadline: integer('unix seconds'),
  nResults: integer(),
  codeHash: bytes32(),
  inputHash: bytes32(),
  nodePrice: decimal('wei per unit of enclave gas'),
  nodeCap: decimal('wei'),
  outputPrice: decimal('wei per output byte'),
  outputCap: decimal('bytes'),
  gasCap: decimal('enclave gas'),
  epsilon: decimal('micro-epsilon the trade declared (charged to each private dataset); 0: none'),
  nCommits: integer(),
  commitStart: integer('unix seconds; 0 before the first commitment'),
  deposit: decimal('wei'),
  sellers: array(object({ account: address(), fee: decimal('wei'), rated: boolean() })),
  nodes: array(object({ payee: address(), enclave: address(), committed: boolean(), submitted: boolean(), group: nullable(integer()) })),
  groups: array(resultGroup),
  final: nullable(resultGroup)
}, { description: 'the trade on DTMC: state, sellers, nodes with their result groups, final, deadline, deposit' })

/** daemon/ends.ts EndExplanation: how the trade ended, in words for each party. */
const explanation = object({
  kind: { type: 'string', enum: ['reverted', 'out_of_gas', 'forbidden_opcode', 'output_over_cap', 'input_invalid', 'internal_error', 'unknown_status', 'refunded_no_result', 'refunded_no_majority', 'role_failed'] },
  failed: { const: true, description: 'the buyer got no output' },
  summary: string('what happened, in one sentence'),
  buyer: string('the same end for the buyer: what it means for its deposit, and what to change'),
  seller: string('the same end for a seller: whether its data left the enclave, whether it is paid'),
  node: string('the same end for a node operator')
}, { description: 'how the trade ended without an output (docs/trade.md "Ends"); null while it goes on or when it succeeded' })

/**
 * What of a role's record is shown: everything but sealed material (the buyer's code, its code envelopes) and a node's commitment nonce. The record's own
 * fields come last, so no data field hides one: `reason` is why the trade ended (the dashboard and `sdte trade`
 * show it). A node's data has a `reason` of its own, the enclave run's outcome in words ('ok' for one that produced
 * an output): it is shown apart, as `runReason`, instead of over the record's.
 */
export function publicView (t: TradeRecord): Record<string, unknown> {
  const { sealedCode: _code, codeEnvelopes: _envelopes, commitNonce: _nonce, reason: runReason, ...data } = t.data as Record<string, unknown>
  return {
    ...data,
    ...(runReason !== undefined && { runReason }),
    role: t.role, tradeId: t.tradeId, state: t.state, ...(t.reason !== undefined && { reason: t.reason }), createdAt: t.createdAt, updatedAt: t.updatedAt, timeline: t.timeline
  }
}

export function registerTradeMethods (rpc: RpcServer, daemon: TradeParts): void {
  rpc.register({
    name: 'trade_list',
    readOnly: true,
    summary: 'Trades this daemon takes part in, newest first.',
    params: [{ name: 'role', type: 'string', enum: ['buyer', 'seller', 'node'], required: false, description: 'only this role' }],
    result: array(tradeSummary, 'newest first'),
    errors: [],
    handler: async (p) => (await daemon.trades.list(p.role)).map(t => ({
      role: t.role, tradeId: t.tradeId, state: t.state, ...(t.reason !== undefined && { reason: t.reason }), createdAt: t.createdAt, updatedAt: t.updatedAt
    }))
  })

  rpc.register({
    name: 'trade_get',
    readOnly: true,
    summary: 'One trade: this daemon\'s record(s) with their timeline, the trade on DTMC (sellers, nodes with their result hashes, final result, state), and, when it ended without an output, why in words for each party.',
    params: [{ name: 'tradeId', type: 'bytes32', description: 'the trade' }],
    result: object({
      tradeId: bytes32(),
      records: array(tradeRecord),
      chain: nullable(chainTrade),
      explanation: nullable(explanation)
    }),
    errors: ['NotFound'],
    handler: async (p) => {
      const records = (await Promise.all((['buyer', 'seller', 'node'] as const).map(async r => await daemon.trades.get<Record<string, unknown>>(r, p.tradeId)))).filter((t): t is TradeRecord => t !== undefined)
      const chain = daemon.chain === null ? null : await daemon.chain.dtmc.trade(p.tradeId)
      if (records.length === 0 && chain === null) throw appError('NotFound', `no trade ${p.tradeId}`)
      return { tradeId: p.tradeId, records: records.map(publicView), chain, explanation: explainTrade(records, chain) }
    }
  })
}
