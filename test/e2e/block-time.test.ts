// A trade on a chain that mines a block every 2 s (anvil --block-time 2, as `sdte devnet up
// --block-time 2` runs it) rather than one per transaction: every role must wait for its
// transactions to be mined, and read the chain after they are; with trade.confirmations 2, as on a
// public chain, each waits for one more block. The result and the payments to the
// wei are checked as in trade.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getBytes } from 'ethers'
import { LocalTestnet } from '../../daemon/tools/index.ts'
import { rpc } from '../../contracts/index.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { runTrade, expectedPayments, paymentsOf, type TradeRun } from '../helpers/trade.ts'

const BLOCK_TIME_S = 2
/** As on a public chain: every role waits for its transactions, and the trade's opening and end, to be 2 blocks deep. */
const CONFIRMATIONS = 2
const dir = mkdtempSync(join(tmpdir(), 'sdte-blocks-'))
const datasets = [sampleDataset(900, 31)]
let net: LocalTestnet
let run: TradeRun

test.before(async () => {
  net = await LocalTestnet.start({ dir, sellers: 1, nodes: 2, blockTime: BLOCK_TIME_S, config: { trade: { confirmations: CONFIRMATIONS } } })
})

test.after(async () => {
  await net?.stop()
  if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
})

test('the chain mines on a timer, not per transaction', async () => {
  const block = async (): Promise<number> => Number(await rpc<string>(net.network.rpcUrl, 'eth_blockNumber', []))
  const first = await block()
  await new Promise(resolve => setTimeout(resolve, (BLOCK_TIME_S + 1) * 1000))
  assert.ok(await block() > first, 'a block was mined with no transaction')
})

test('a trade with two nodes completes on 2 s blocks, and its result is the plain TypeScript one', async () => {
  run = await runTrade(net, { tag: 'slow-blocks', datasets, nodes: 2, timeoutMs: 240_000 })
  const rec = run.view.records[0]
  assert.is(rec.state, 'delivered', `${rec.reason ?? ''} ${JSON.stringify(rec.rejected)}`)
  assert.ok(run.result.verified, 'result hash equals the final hash on DTMC')
  assert.equal(getBytes(run.result.result), referenceOutput('Stats', datasets))
  assert.is(run.view.chain.final.count, 2, 'both enclaves agree')
})

test('payments and the refund match the caps and prices to the wei', () => {
  const { deposit, payments } = expectedPayments(net, datasets, run.view)
  assert.is(BigInt(run.view.chain.deposit), deposit)
  assert.equal(paymentsOf(run.view), payments)
})

test.run()
