// A reorganisation of the chain during a trade (issue 12): the block that opened the trade, or the
// one that settled it, is replaced by an empty block (anvil_reorg: the dropped transactions are gone,
// not back in the pool, as when the competing chain's miner never saw them). The parties' receipts
// said "mined"; the trade must still end correctly (the result, every payment and the refund to the
// wei, nothing left in DTMC) and no party's record may stay active: never stuck, never funds lost.
// The reorg is at the two riskiest moments: of 1 block right after the escrow (sellers start
// delivering, nodes start running on a trade that then vanishes), and of 2 right after the
// settlement (the last reveal and the withdrawals after it vanish, while the buyer took the result as
// final and recorded its refund). The chain client repairs those by broadcasting the dropped
// transactions again; two more trades show the roles' own repair for when it cannot (a restart lost the
// signed transaction, or another client of the account took its nonce): the competing chain's block
// holds a transfer of the sender's at the dropped transaction's nonce, so the broadcast again is
// refused ("nonce too low"), and the buyer must open the escrow again, or the node commit again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getBytes } from 'ethers'
import { LocalTestnet, waitFor } from '../../daemon/tools/index.ts'
import { ChainClient, rpc } from '../../contracts/index.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { runTrade, expectedPayments, paymentsOf, type TradeRun } from '../helpers/trade.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-reorg-'))
let net: LocalTestnet
let chain: ChainClient

test.before(async () => {
  net = await LocalTestnet.start({ dir, sellers: 1, nodes: 2 })
  chain = await ChainClient.connect({ network: net.network })
})

test.after(async () => {
  chain?.close()
  await net?.stop()
  if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
})

type DtmcEvent = 'TradeOpened' | 'TradeSettled' | 'ResultCommitted'
/** How long one trade may take (a few seconds when nothing goes wrong; a stuck one fails here). */
const TRADE_TIMEOUT_MS = 90_000

/**
 * Waits for DTMC's first `event` from block `fromBlock` on and, the moment it is seen, replaces the
 * last `depth` blocks with empty ones (more when blocks were mined after the event's meanwhile).
 * Returns the block of the event, the head at the reorg, the reorg's depth, whether the event's block
 * was replaced and the event's transaction: the event's block must be among those dropped, or the test
 * proves nothing. With `takeNonce`, the first replacement block holds a transfer of the event's sender
 * to itself at the dropped transaction's nonce.
 */
async function reorgOn (event: DtmcEvent, depth: number, fromBlock: number, stop: { stopped: boolean }, takeNonce = false): Promise<{ eventBlock: number, head: number, depth: number, replaced: boolean, txHash: string }> {
  const rpcUrl = net.network.rpcUrl
  const topic = chain.dtmc.iface.getEvent(event)!.topicHash
  const until = Date.now() + TRADE_TIMEOUT_MS
  while (Date.now() < until && !stop.stopped) {
    const head = await headBlock()
    const logs = head < fromBlock ? [] : await rpc<Array<{ blockNumber: string, blockHash: string, transactionHash: string }>>(rpcUrl, 'eth_getLogs', [{ address: net.network.contracts.DTMC, topics: [topic], fromBlock: `0x${fromBlock.toString(16)}`, toBlock: `0x${head.toString(16)}` }])
    if (logs.length > 0) {
      const eventBlock = Number(logs[0].blockNumber)
      const txHash = logs[0].transactionHash
      const from = takeNonce ? (await rpc<{ from: string }>(rpcUrl, 'eth_getTransactionByHash', [txHash])).from : undefined
      if (from !== undefined) await rpc(rpcUrl, 'anvil_impersonateAccount', [from])
      // The head read again right before: on a loaded machine other parties' transactions may have mined blocks
      // after the event's since, and the reorg must still reach the event's block. anvil_reorg counts its depth from
      // the head when it runs, so mining stops from that read to the reorg; what the daemons send meanwhile waits in
      // the pool and is mined when automine is back on (anvil mines the pending transactions then).
      await rpc(rpcUrl, 'evm_setAutomine', [false])
      let reorged: { head: number, depth: number }
      try {
        const now = await headBlock()
        reorged = { head: now, depth: Math.max(depth, now - eventBlock + 1) }
        await rpc(rpcUrl, 'anvil_reorg', [reorged.depth, from === undefined ? [] : [[{ from, to: from, value: '0x0' }, 0]]])
        if (from !== undefined) await rpc(rpcUrl, 'anvil_stopImpersonatingAccount', [from])
      } finally {
        await rpc(rpcUrl, 'evm_setAutomine', [true])
      }
      const block = await rpc<{ hash: string } | null>(rpcUrl, 'eth_getBlockByNumber', [`0x${eventBlock.toString(16)}`, false])
      return { eventBlock, ...reorged, replaced: block?.hash !== logs[0].blockHash, txHash }
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  throw new Error(`no ${event} seen`)
}

async function headBlock (): Promise<number> {
  return Number(await rpc<string>(net.network.rpcUrl, 'eth_blockNumber', []))
}

/**
 * A trade with a reorg of `depth` blocks the moment `event` is mined; checked to the wei, and every party's part ended.
 * With `takeNonce`, the event's transaction cannot be broadcast again: the event that ends on the chain is another transaction's.
 */
async function tradeThroughReorg (tag: string, event: DtmcEvent, depth: number, takeNonce = false): Promise<void> {
  const datasets = [sampleDataset(700 + depth * 50 + (takeNonce ? 25 : 0), depth + (event === 'TradeOpened' ? 0 : event === 'TradeSettled' ? 10 : 20))]
  const from = await headBlock() + 1
  const stop = { stopped: false }
  const reorg = reorgOn(event, depth, from, stop, takeNonce)
  reorg.catch(() => {}) // awaited below; a trade that fails first must not leave it unhandled
  let run: TradeRun
  try {
    run = await runTrade(net, { tag, datasets, nodes: 2, timeoutMs: TRADE_TIMEOUT_MS })
  } finally {
    stop.stopped = true
  }
  const r = await reorg
  assert.ok(r.eventBlock > r.head - r.depth, `the reorg of ${r.depth} at head ${r.head} dropped the block ${r.eventBlock} with ${event}`)
  assert.ok(r.replaced, `the block ${r.eventBlock} with ${event} was replaced`)
  assert.ok(await chain.dtmc.trade(run.tradeId) !== null, 'the trade is on the chain after the reorg')
  if (takeNonce) {
    const redone = await rpc<Array<{ transactionHash: string }>>(net.network.rpcUrl, 'eth_getLogs', [{ address: net.network.contracts.DTMC, topics: [chain.dtmc.iface.getEvent(event)!.topicHash, run.tradeId], fromBlock: `0x${from.toString(16)}`, toBlock: 'latest' }])
    assert.ok(redone.length > 0, `${event} is on the chain again`)
    assert.ok(redone.every(l => l.transactionHash !== r.txHash), `${event} came from a new transaction (the role's repair), not the dropped one broadcast again`)
  }

  const rec = run.view.records[0]
  assert.is(rec.state, 'delivered', `${rec.reason ?? ''} ${JSON.stringify(rec.rejected)}`)
  assert.ok(run.result.verified, 'result hash equals the final hash on DTMC')
  assert.equal(getBytes(run.result.result), referenceOutput('Stats', datasets))
  // The buyer's view as the chain is now: the view runTrade returned may have been read between the reorg and
  // the repair (a reorg of the settlement leaves the trade on DTMC unsettled, `final` null, until the dropped
  // reveal is mined again): wait, bounded, for the chain to settle it again.
  const view = await waitFor('the trade settled again on the chain as it is now', async () => {
    const v = await net.buyers[0].rpc.call<typeof run.view>('trade_get', { tradeId: run.tradeId })
    return v.chain?.final !== null && v.chain?.final !== undefined && v.records[0].state === 'delivered' ? v : undefined
  }, 60_000, 250)
  const { deposit, payments } = expectedPayments(net, datasets, view)
  assert.is(BigInt(view.chain.deposit), deposit)
  assert.equal(paymentsOf(view), payments, 'the buyer records the payments of the chain as it is now')

  // Every party ends its part, and withdraws all DTMC credited it: nothing is left in the contract.
  for (const d of [...net.sellers, ...net.nodes]) {
    await waitFor(`${d.name}'s part of the trade to end`, async () => {
      const v = await d.rpc.call<{ records: Array<{ role: string, state: string }> }>('trade_get', { tradeId: run.tradeId })
      const mine = v.records.find(x => x.role === d.role)
      return mine !== undefined && ['finalized', 'delivered'].includes(mine.state) ? true : undefined
    }, 60_000, 250)
  }
  for (const d of [...net.buyers, ...net.sellers, ...net.nodes]) {
    await waitFor(`${d.name}'s credit on DTMC to be withdrawn`, async () => (await chain.dtmc.creditOf(d.info.ethAddress)) === 0n ? true : undefined, 60_000, 250)
  }
  const credited = await chain.provider.getBalance(net.network.contracts.DTMC)
  assert.is(credited, 0n, 'DTMC holds no ether once every trade ended and every party withdrew')
}

test('a 1-block reorg right after the escrow: the trade still settles, paid to the wei', async () => {
  await tradeThroughReorg('reorg-open-1', 'TradeOpened', 1)
})

test('a 2-block reorg right after the settlement: settled again, nobody paid twice or not at all', async () => {
  await tradeThroughReorg('reorg-settle-2', 'TradeSettled', 2)
})

test('a reorg takes the escrow\'s nonce: the dropped openTrade cannot come back, the buyer opens the trade again', async () => {
  await tradeThroughReorg('reorg-open-nonce', 'TradeOpened', 1, true)
})

test('a reorg takes a commitment\'s nonce: the dropped commitResult cannot come back, the node commits again', async () => {
  await tradeThroughReorg('reorg-commit-nonce', 'ResultCommitted', 1, true)
})

test.run()
