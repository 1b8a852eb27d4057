// trade_get (daemon/methods/trade.ts): a record's own `reason` (why the trade ended) is what the method shows as
// `reason`; a node's data field of the same name (the enclave run's outcome in words) hid it, so the dashboard and
// `sdte trade` showed a failed trade's reason as, say, "ok". Now the data's is shown apart, as `runReason`.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { registerTradeMethods, type TradeParts } from '../../../daemon/methods/trade.ts'
import type { RpcServer } from '../../../daemon/rpc/server.ts'
import type { TradeRecord, TradeRole } from '../../../daemon/trades.ts'

const TRADE = '0x' + '11'.repeat(32)
const AT = '2026-01-01T00:00:00.000Z'

type Handler = (p: { tradeId: string }) => Promise<{ records: Array<Record<string, unknown>> }>

/** trade_get's handler over these records (no chain), as the RPC server would call it. */
function tradeGet (records: TradeRecord[]): Handler {
  const methods = new Map<string, { handler: Handler }>()
  const rpc = { register: (m: { name: string, handler: Handler }) => { methods.set(m.name, m) } } as unknown as RpcServer
  const parts: TradeParts = {
    trades: {
      list: async () => records as never,
      get: (async (role: TradeRole, tradeId: string) => records.find(r => r.role === role && r.tradeId === tradeId)) as never
    },
    chain: null
  }
  registerTradeMethods(rpc, parts)
  return methods.get('trade_get')!.handler
}

function nodeRecord (reason: string | undefined, data: Record<string, unknown>): TradeRecord {
  return {
    role: 'node', tradeId: TRADE, state: 'failed', ...(reason !== undefined && { reason }), createdAt: AT, updatedAt: AT,
    timeline: [{ state: 'escrowed', at: AT }, { state: 'failed', at: AT }], data: { nodeIndex: 0, taskId: '0x' + '22'.repeat(32), ...data }
  }
}

test('the record\'s reason wins over its data\'s; the data\'s is shown as runReason', async () => {
  const get = tradeGet([nodeRecord('the trade\'s deadline passed before a run finished (1 run)', { reason: 'ok', status: 0 })])
  const [r] = (await get({ tradeId: TRADE })).records
  assert.is(r.reason, 'the trade\'s deadline passed before a run finished (1 run)')
  assert.is(r.runReason, 'ok')
  assert.is(r.state, 'failed')
  assert.is(r.nodeIndex, 0)
})

test('a record with no reason of its own shows none, even when its data has one', async () => {
  const get = tradeGet([nodeRecord(undefined, { reason: 'reverted' })])
  const [r] = (await get({ tradeId: TRADE })).records
  assert.not.ok('reason' in r, `reason: ${String(r.reason)}`)
  assert.is(r.runReason, 'reverted')
})

test('no data field hides the record\'s own fields; secrets stay out', async () => {
  const get = tradeGet([nodeRecord('why', { state: 'executing', role: 'buyer', commitNonce: '0x' + '33'.repeat(32) })])
  const [r] = (await get({ tradeId: TRADE })).records
  assert.is(r.state, 'failed')
  assert.is(r.role, 'node')
  assert.not.ok('commitNonce' in r)
  assert.not.ok('runReason' in r, 'no run reason when the data has none')
})

test.run()
