// Attack (issue 10, item 7): a buyer locks sellers' and nodes' pay for as long as it likes.
// Before the fix openTrade accepted any future deadline (years away): no result after a stall could be
// settled before it, so the buyer held the escrow hostage. Now a deadline more than
// MAX_TRADE_DURATION after the opening block is refused.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { MAX_TRADE_DURATION } from '../../contracts/client.ts'
import { startChain, makeMarket, openTrade, reverts, latestTimestamp, type Chain } from '../../contracts/tools/market.ts'

let chain: Chain

test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

test('a deadline ten years away is refused', async () => {
  const m = await makeMarket(chain, 1, 1)
  const now = await latestTimestamp(chain)
  await reverts(openTrade(m, { deadline: now + 10 * 365 * 24 * 3600 }), 'DeadlineTooFar')
})

test('the bound is MAX_TRADE_DURATION, the same on chain and in TypeScript', async () => {
  const m = await makeMarket(chain, 1, 1)
  assert.is(Number(await m.buyer.client.dtmc.contract.MAX_TRADE_DURATION()), MAX_TRADE_DURATION)
  const now = await latestTimestamp(chain)
  // The next block is at least one second later, so now + MAX is within the bound and now + MAX + 2 past it.
  await openTrade(m, { deadline: now + MAX_TRADE_DURATION })
  await reverts(openTrade(m, { deadline: now + MAX_TRADE_DURATION + 3600 }), 'DeadlineTooFar')
})

test.run()
