// The buyer daemon's release of held fees (daemon/roles/buyer/held-fees.ts) after a seller declined its open trade:
// DTMC holds the node fees for DECLINE_NODE_CLAIM_WINDOW and the other sellers' data fees for CLAIM_WINDOW, each
// released only after its own window. The daemon releases the node fees after the first window (less what a node
// claimed), keeps the trade noted for the data fees, releases those after the second, and adds both to
// `heldFeesReturned`. A fake DTMC (claims as DTMC keeps them, its releaseUnclaimed's rule) and an in-memory store.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { releaseHeldFees, rememberHeldFees } from '../../../daemon/roles/buyer/held-fees.ts'
import type { RoleContext } from '../../../daemon/roles/context.ts'

const TRADE = '0x' + '11'.repeat(32)
const NODE_FEE = 7n
const SELLER_FEES = [100n, 200n]

interface Claims { until: number, held: number[], nodeUntil: number, nodesHeld: number[], decliner: number }

function fake (claims: Claims): { ctx: RoleContext, clock: { now: number }, released: bigint[], record: { data: { heldFeesReturned?: string } } } {
  const clock = { now: 1000 }
  const released: bigint[] = []
  const meta = new Map<string, unknown>()
  const record = { data: {} as { heldFeesReturned?: string } }
  const dtmc = {
    claimsOf: async () => ({ ...claims, held: [...claims.held], nodesHeld: [...claims.nodesHeld] }),
    factsOf: async () => ({ nodeFee: NODE_FEE, sellers: SELLER_FEES.map(fee => ({ account: '0x', fee })) }),
    // DTMC's rule: each part once its own window is over.
    releaseUnclaimed: async () => {
      let amount = 0n
      if (claims.nodesHeld.length > 0 && clock.now > claims.nodeUntil) { amount += NODE_FEE * BigInt(claims.nodesHeld.length); claims.nodesHeld = [] }
      if (claims.held.length > 0 && clock.now > claims.until) { for (const i of claims.held) amount += SELLER_FEES[i]; claims.held = [] }
      released.push(amount)
    },
    creditOf: async () => 0n
  }
  const ctx = {
    chain: { dtmc, provider: { getBlock: async () => ({ timestamp: clock.now }) } },
    keys: { ethAddress: '0x' + '22'.repeat(20) },
    store: {
      meta: {
        put: async (k: string, v: unknown) => { meta.set(k, v) },
        delete: async (k: string) => { meta.delete(k) },
        list: async ({ prefix }: { prefix: string }) => [...meta].filter(([k]) => k.startsWith(prefix))
      }
    },
    trades: {
      get: async () => record,
      update: async (_t: unknown, data: { heldFeesReturned: string }) => { Object.assign(record.data, data) }
    }
  } as unknown as RoleContext
  return { ctx, clock, released, record }
}

test('node fees after their hour (less the claimed one), data fees after the claim window; heldFeesReturned adds both', async () => {
  // Seller 1 of 2 declined at t = 1000; three nodes, node 0 already claimed with the decliner's ack.
  const claims: Claims = { until: 1000 + 3 * 86400, held: [0], nodeUntil: 1000 + 3600, nodesHeld: [1, 2], decliner: 1 }
  const { ctx, clock, released, record } = fake(claims)
  await rememberHeldFees(ctx, TRADE)
  await releaseHeldFees(ctx)
  assert.equal(released, [], 'nothing within the node window')
  clock.now = 1000 + 3601
  await releaseHeldFees(ctx)
  assert.equal(released, [2n * NODE_FEE], 'the two unclaimed node fees')
  assert.is(record.data.heldFeesReturned, (2n * NODE_FEE).toString())
  clock.now = 1000 + 86400
  await releaseHeldFees(ctx)
  assert.is(released.length, 1, 'the data fee waits for its claim window')
  clock.now = 1000 + 3 * 86400 + 1
  await releaseHeldFees(ctx)
  assert.equal(released, [2n * NODE_FEE, SELLER_FEES[0]])
  assert.is(record.data.heldFeesReturned, (2n * NODE_FEE + SELLER_FEES[0]).toString(), 'both releases, to the wei')
  await releaseHeldFees(ctx)
  assert.is(released.length, 2, 'forgotten once nothing is held')
})

test('a refund without a decline: only the data fees, after the claim window, as before', async () => {
  const claims: Claims = { until: 1000 + 3 * 86400, held: [0, 1], nodeUntil: 0, nodesHeld: [], decliner: 0 }
  const { ctx, clock, released, record } = fake(claims)
  await rememberHeldFees(ctx, TRADE)
  clock.now = 1000 + 3601
  await releaseHeldFees(ctx)
  assert.equal(released, [])
  clock.now = 1000 + 3 * 86400 + 1
  await releaseHeldFees(ctx)
  assert.equal(released, [SELLER_FEES[0] + SELLER_FEES[1]])
  assert.is(record.data.heldFeesReturned, (SELLER_FEES[0] + SELLER_FEES[1]).toString())
})

test.run()
