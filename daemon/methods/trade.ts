// The trade_* namespace: the trades this daemon takes part in, with their timelines and, where the
// daemon is on a network, what DTMC says of them.
import type { SdteDaemon } from '../daemon.ts'
import type { RpcServer } from '../rpc/server.ts'
import { appError } from '../rpc/errors.ts'
import type { TradeRecord, TradeRole } from '../trades.ts'

/** What of a role's record is shown: everything but sealed material. */
function publicView (t: TradeRecord): Record<string, unknown> {
  const { sealedCode: _code, ...data } = t.data as Record<string, unknown>
  return { role: t.role, tradeId: t.tradeId, state: t.state, reason: t.reason, createdAt: t.createdAt, updatedAt: t.updatedAt, timeline: t.timeline, ...data }
}

export function registerTradeMethods (rpc: RpcServer, daemon: SdteDaemon): void {
  rpc.register({
    name: 'trade_list',
    summary: 'Trades this daemon takes part in, newest first.',
    params: [{ name: 'role', type: 'string', enum: ['buyer', 'seller', 'node'], required: false, description: 'only this role' }],
    result: 'array of { role, tradeId, state, reason?, createdAt, updatedAt }',
    handler: async (p: { role?: TradeRole }) => (await daemon.trades.list(p.role)).map(t => ({
      role: t.role, tradeId: t.tradeId, state: t.state, ...(t.reason !== undefined && { reason: t.reason }), createdAt: t.createdAt, updatedAt: t.updatedAt
    }))
  })

  rpc.register({
    name: 'trade_get',
    summary: 'One trade: this daemon\'s record(s) with their timeline, and the trade on DTMC (sellers, nodes with their result hashes, final result, state).',
    params: [{ name: 'tradeId', type: 'bytes32', description: 'the trade' }],
    result: '{ tradeId, records: [...], chain: { state, sellers, nodes, groups, final, deadline, deposit } | null }',
    handler: async (p: { tradeId: string }) => {
      const records = (await Promise.all((['buyer', 'seller', 'node'] as const).map(async r => await daemon.trades.get<Record<string, unknown>>(r, p.tradeId)))).filter((t): t is TradeRecord => t !== undefined)
      const chain = daemon.chain === null ? null : await daemon.chain.dtmc.trade(p.tradeId)
      if (records.length === 0 && chain === null) throw appError('NotFound', `no trade ${p.tradeId}`)
      return { tradeId: p.tradeId, records: records.map(publicView), chain }
    }
  })
}
