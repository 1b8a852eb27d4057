// test-run: alone (its runaway analyses keep the CPU busy for their whole budget: a neighbour's timeouts would suffer)
// Attack: one runaway task stalls the whole node. A buyer (any stranger who opens a trade) delivers an
// analysis that loops until its gas cap, as large as the node allows. The enclave worker ran it in the
// thread that also answers attestation, code and data requests, in their queue: every other request
// waited behind it (and timed out, which stopped the worker); the node awaited the run in its tick,
// and the daemon awaited every role's tick together, so the buyer and seller roles of the same daemon
// stood still too; a run that never finished was started again on every tick.
// The defence: each run in its own thread with a time and heap budget derived from its gas cap
// (enclave/runs.ts), killed and reported when over it, nothing signed; the node's step runs in the
// background (advanceActive's in-flight set), each role ticks on its own, and a task is given up
// after MAX_RUN_ATTEMPTS runs or at its trade's deadline.
//
// Observed by behaviour, never by the clock: which request is answered while which is still pending.
// The budgets are set small through options (enclave runBudget, the node's enclave.runBudget).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getBytes, keccak256 } from 'ethers'
import { tradeIdOf, ResultStatus } from '../../contracts/formats.ts'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { startDaemon, waitFor, waitNodeBooted, type DaemonProcess } from '../../daemon/tools/child-daemons.ts'
import { MAX_RUN_ATTEMPTS } from '../../daemon/roles/trusted-node/index.ts'
import { computeMeasurement } from '../../enclave/measurement.ts'
import { sampleDataset } from '../../enclave/index.ts'
import { buyer, buyerSetup, random32, rejectsWith, startEnclave } from '../helpers/enclave.ts'

/** JUMPDEST; PUSH1 0; JUMP: loops until its gas runs out. */
const LOOP = getBytes('0x5b600056')

test('a long run holds up no other request of its enclave, is killed at its budget, signs nothing, and may run again', async () => {
  // A budget that does not grow with the gas: 5 s for any run. The loop's gas cap would take far longer.
  const enclave = await startEnclave({ runBudget: { wallMsPerMgas: 0, minWallMs: 5000 }, requestTimeoutMs: 10_000 })
  try {
    const task = await buyerSetup(enclave, LOOP, { gasCap: 1_000_000_000n })
    let settled = false
    const run = enclave.execute(task.taskId)
    run.then(() => { settled = true }, () => { settled = true })

    // Meanwhile: another buyer's attestation, its code, and the task list are answered.
    const other = await buyerSetup(enclave, LOOP, { gasCap: 1_000_000n })
    const again = await enclave.attest({ tradeId: tradeIdOf(buyer.address, other.salt), codeHash: keccak256(LOOP), nonce: random32() })
    assert.is(again.taskId, other.taskId)
    const listed = await enclave.tasks()
    assert.is(settled, false, 'attestation, code delivery and the task list were answered while the long run was in progress')
    assert.is(listed.find(t => t.taskId === task.taskId)?.executed, false)

    const err = await rejectsWith(run, 'RunOverBudgetError')
    assert.match(err.message, /time budget of 5000 ms/)
    // Nothing was signed or sealed for the killed run: the task is not executed, and may run again
    // (the node decides how often: MAX_RUN_ATTEMPTS).
    assert.is((await enclave.tasks()).find(t => t.taskId === task.taskId)?.executed, false)
    await rejectsWith(enclave.execute(task.taskId), 'RunOverBudgetError')

    // A run within its budget still gives its signed result.
    const small = await enclave.execute(other.taskId)
    assert.is(small.resultInfo.status, ResultStatus.OutOfGas)
  } finally {
    await enclave.close()
  }
})

test('a run over its heap budget is killed and reported the same way, and the enclave goes on', async () => {
  // The smallest heap a run gets (MIN_RUN_HEAP_MB, 8 MiB): its thread cannot even load the EVM.
  // Asked for less, it still gets that much (less would abort the process, not just the thread).
  const enclave = await startEnclave({ runBudget: { heapBaseMb: 0, heapMbPerMgas: 0 } })
  try {
    const task = await buyerSetup(enclave, LOOP, { gasCap: 1_000_000n })
    const err = await rejectsWith(enclave.execute(task.taskId), 'RunOverBudgetError')
    assert.match(err.message, /heap budget of 8 MiB/)
    assert.is((await enclave.tasks()).find(t => t.taskId === task.taskId)?.executed, false)
  } finally {
    await enclave.close()
  }
})

interface Rec { role: string, state: string, reason?: string, timeline: Array<{ state: string, note?: string }>, runAttempts?: number, published?: boolean, posted?: boolean }
interface View { records: Rec[], chain: { nodes: Array<{ submitted: boolean }> } | null }

test('a daemon whose node runs a runaway task: its buyer role goes on meanwhile; the run is killed, reported, tried MAX_RUN_ATTEMPTS times, nothing submitted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-runaway-'))
  let net: LocalTestnet | undefined
  let both: DaemonProcess | undefined
  try {
    net = await LocalTestnet.start({ dir, buyers: 1, sellers: 1, nodes: 0 })
    // One daemon with the node and the buyer role; every run of its enclave gets 15 s, whatever its gas.
    both = await startDaemon(join(dir, 'node-and-buyer'), {
      args: ['--role', 'node', '--role', 'buyer', '--network', net.networkPath, '--bootstrap', net.relay.info.addresses[0]],
      config: { keys: { scryptN: 1024 }, enclave: { runBudget: { wallMsPerMgas: 0, minWallMs: 15_000 } } },
      timeoutMs: 60_000
    })
    await waitNodeBooted(both, 60_000)
    const seller = net.sellers[0]
    const path = join(seller.datadir, 'data.csv')
    writeFileSync(path, sampleDataset(100, 7))
    await seller.rpc.call('seller_addDataset', { path, tag: 'runaway', unitPrice: '5', policy: { mode: 'any' } })
    const stranger = net.buyers[0]
    await waitFor('DHT announcements', async () =>
      (await stranger.rpc.call<unknown[]>('net_findProviders', { key: 'sdte:dataset:runaway' })).length >= 1 &&
      (await stranger.rpc.call<unknown[]>('net_findProviders', { key: `sdte:node:${computeMeasurement()}` })).length >= 1, 30_000, 300)

    // The stranger's analysis loops until its gas cap, a Ggas.
    const demand = { code: '0x5b600056', nodes: 1, sellers: 1, sellerPrice: '10', sellerCap: '1000000', nodePrice: '1', nodeCap: '1000000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: 600 }
    const { tradeId } = await stranger.rpc.call<{ tradeId: string }>('buyer_postDemand', { tag: 'runaway', ...demand })
    const nodeRecord = async (): Promise<Rec | undefined> => (await both!.rpc.call<View>('trade_get', { tradeId })).records.find(r => r.role === 'node')
    await waitFor('the node to start its run', async () => ((await nodeRecord())?.runAttempts ?? 0) >= 1, 120_000, 200)

    // While it runs, the same daemon's buyer role posts a demand of its own: a tick publishes it and,
    // once the offer window is over, a later tick looks at its offers (no node offers, so it keeps
    // collecting and says so). Ticks that waited for the run would do neither before it ended.
    const own = await both.rpc.call<{ tradeId: string }>('buyer_postDemand', { tag: 'runaway', ...demand })
    await waitFor('the buyer role of the node\'s daemon to look at its offers', async () =>
      both!.output().split('\n').some(l => l.includes('still collecting') && l.includes(own.tradeId)) ||
      (await both!.rpc.call<View>('trade_get', { tradeId: own.tradeId })).records.some(r => r.role === 'buyer' && r.state !== 'demanded'), 60_000, 200)
    const during = (await nodeRecord())!
    assert.is(during.state, 'executing')
    assert.is(during.runAttempts, 1)
    assert.not.ok(during.timeline.some(e => /ended without a result/.test(e.note ?? '')), 'the buyer role advanced while the first run was still in progress')

    // The runs are killed at their budget, noted, tried MAX_RUN_ATTEMPTS times, then given up.
    const ended = await waitFor('the node to give the task up', async () => {
      const r = await nodeRecord()
      return r?.state === 'failed' ? r : undefined
    }, 180_000, 500)
    assert.match(ended.reason ?? '', /no run finished within its budget in 2 tries: run killed: over its time budget of 15000 ms/)
    assert.is(ended.runAttempts, MAX_RUN_ATTEMPTS)
    assert.is(ended.timeline.filter(e => /ended without a result: run killed: over its time budget/.test(e.note ?? '')).length, MAX_RUN_ATTEMPTS)
    const view = await both.rpc.call<View>('trade_get', { tradeId })
    assert.is(view.chain?.nodes[0].submitted, false, 'nothing was submitted for a killed run')
    assert.match(both.output(), /run killed over its budget, nothing signed/)
  } finally {
    await both?.stop()
    await net?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
