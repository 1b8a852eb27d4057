// Attack (on the buyer's availability, by doing nothing): the buyer is offline while its trade
// settles. The old node dropped a settled task's sealed state RESULT_RETENTION_MS (10 minutes) of
// its own wall clock after settlement, fetched or not: a buyer that came back later had paid for a
// result no node held any more.
// The defence: a node of the majority keeps the sealed result until the buyer acknowledges it
// (a signed ack) or until RESULT_RETENTION_SECONDS after the trade's deadline on the chain's clock,
// and the buyer fetches the results of settled trades it lacks on start and every tick.
//
// Real parts: anvil, a relay, a buyer, a seller and a node as separate daemons. The buyer is
// stopped (SIGTERM) before settlement and started again on its datadir. Its time away is a day on the
// chain's clock (anvil evm_increaseTime), the clock the retention is judged by, plus
// SDTE_ATTACK_OFFLINE_WALL_MS of real time (default 0; the old node's retention ran on its wall clock,
// so this is how the old code was seen to fail: 660000 ms, see docs/threat-model.md).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { getBytes } from 'ethers'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { rpc as anvilRpc } from '../../contracts/devnet-accounts.ts'
import { resultConstants } from '../../p2p/result/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-attack-offline-'))
let net: LocalTestnet
const TAG = 'attack-offline'
const dataset = sampleDataset(700, 41)
const DEADLINE_SECONDS = 600
/** The buyer's time away on the chain's clock: a day. */
const OFFLINE_SECONDS = 24 * 3600
const OFFLINE_WALL_MS = Number(process.env.SDTE_ATTACK_OFFLINE_WALL_MS ?? '0')

interface Record_ { role: string, state: string, reason?: string, taskId?: string }

async function stateOf (d: LocalTestnet['daemons'][number], role: string, tradeId: string): Promise<Record_ | undefined> {
  return (await d.rpc.call<{ records: Record_[] }>('trade_get', { tradeId })).records.find(x => x.role === role)
}

async function postAndGoOffline (): Promise<string> {
  const buyer = net.buyers[0]
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'HistogramFast.json'), nodes: 1, sellers: 1,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: '1', nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: DEADLINE_SECONDS
  })
  await waitFor('escrow', async () => {
    const s = (await stateOf(buyer, 'buyer', tradeId))?.state ?? ''
    if (!['demanded', 'attesting', 'escrowed'].includes(s)) throw new Error(`the buyer went past escrow to ${s} before it could be stopped`)
    return s === 'escrowed'
  }, 60_000, 50)
  await buyer.stop('SIGTERM')
  await waitFor('the node to settle the trade', async () => (await stateOf(net.nodes[0], 'node', tradeId))?.state === 'finalized', 90_000, 200)
  return tradeId
}

async function advanceChain (seconds: number): Promise<void> {
  await anvilRpc(net.network.rpcUrl, 'evm_increaseTime', [seconds])
  await anvilRpc(net.network.rpcUrl, 'evm_mine', [])
}

// A testnet per test: each moves the chain's clock days ahead of the wall clock, and a demand
// (its expiry is set from the chain's clock, checked against the wall clock) posted after that is refused.
test.before.each(async () => {
  net = await LocalTestnet.start({ dir: mkdtempSync(join(dir, 'net-')), sellers: 1, nodes: 1 })
  const s = net.sellers[0]
  writeFileSync(join(s.datadir, 'data.csv'), dataset)
  await s.rpc.call('seller_addDataset', { path: join(s.datadir, 'data.csv'), tag: TAG, unitPrice: '5', policy: { mode: 'any' } })
  await waitFor('DHT announcement', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: `sdte:dataset:${TAG}` })).length >= 1, 30_000, 300)
})

test.after.each(async () => {
  await net?.stop()
})

test.after(() => {
  rmSync(dir, { recursive: true, force: true })
})

test('a buyer offline across settlement fetches its result after restart', async () => {
  const tradeId = await postAndGoOffline()
  await advanceChain(OFFLINE_SECONDS)
  // The node ticks every 500 ms: give it many ticks on the new chain time (and any wall time asked for).
  await sleep(Math.max(5000, OFFLINE_WALL_MS))
  assert.is((await stateOf(net.nodes[0], 'node', tradeId))?.state, 'finalized', 'the node still holds the unfetched result')
  const buyer = await net.add('buyer1', 'buyer', {})
  await waitFor('the restarted buyer to get its result', async () => (await stateOf(buyer, 'buyer', tradeId))?.state === 'delivered', 60_000, 250)
  const result = await buyer.rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  assert.ok(result.verified)
  assert.equal(getBytes(result.result), referenceOutput('Histogram', [dataset]))
  await waitFor('the node to take the buyer\'s ack', async () => (await stateOf(net.nodes[0], 'node', tradeId))?.state === 'delivered', 20_000, 200)
  assert.is((await net.nodes[0].rpc.call<{ tasks: number }>('node_enclave', {})).tasks, 0, 'the acknowledged task is dropped')
})

test('the retention is bounded: past it an unacknowledged result is dropped, and the late buyer records why', async () => {
  const tradeId = await postAndGoOffline()
  const node = net.nodes[0]
  assert.is((await node.rpc.call<{ tasks: number }>('node_enclave', {})).tasks, 1)
  await advanceChain(DEADLINE_SECONDS + resultConstants.RESULT_RETENTION_SECONDS + 60)
  await waitFor('the node to drop the result at the end of its retention', async () => (await node.rpc.call<{ tasks: number }>('node_enclave', {})).tasks === 0, 20_000, 200)
  const rec = (await node.rpc.call<{ records: Array<Record_ & { resultDropped?: string }> }>('trade_get', { tradeId })).records.find(x => x.role === 'node')
  assert.is(rec?.state, 'finalized', 'the node was paid; the buyer never acknowledged')
  assert.is(rec?.resultDropped, 'retention')
  const buyer = await net.add('buyer1', 'buyer', {})
  const late = await waitFor('the late buyer to give up', async () => {
    const r = await stateOf(buyer, 'buyer', tradeId)
    return r?.state === 'failed' ? r : undefined
  }, 60_000, 250)
  assert.match(late.reason ?? '', /within \d+ s of the deadline/)
})

test.run()
