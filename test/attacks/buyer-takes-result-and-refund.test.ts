// Attack (issue 10, property 1): the buyer takes the result and a full refund. A buyer that runs (or bribes)
// one chosen node reads the result the enclave hands to that host, decrypts it with its own result key, then
// lets the trade fail (never submits, or splits the nodes) and DTMC gave it everything back: the sellers had
// delivered and got nothing. Now (a) a refund holds back the sellers' data fees for DTMC.CLAIM_WINDOW and a
// seller holding an attested enclave's delivery receipt claims its fee, and (b) the enclave runs nothing until
// every seller has acknowledged its receipt with the account that delivered the data key, so the host cannot
// withhold the receipt and still get a result (the enclave half is in host-withholds-receipt.test.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  startChain, makeMarket, openTrade, submit, reveal, reverts, claim, signedReceipt, increaseTime, conserved, everyone, paid, type Chain
} from '../../contracts/tools/market.ts'
import { COMMIT_WINDOW } from '../../contracts/client.ts'

let chain: Chain

test.before(async () => { chain = await startChain() })
test.after(async () => { await chain?.stop() })

test('a seller whose data an enclave verified is paid its data fee although the buyer let the trade lapse', async () => {
  const m = await makeMarket(chain, 2, 3)
  const t = await openTrade(m)
  const view = await m.buyer.client.dtmc.trade(t.tradeId)
  const [fee0, fee1] = view!.sellers.map(s => s.fee)
  await conserved(chain, everyone(m), async () => {
    // The buyer's own node ran the task (the buyer read the result off its host) and nobody submits.
    await increaseTime(chain, 3601)
    assert.is((await m.buyer.client.dtmc.finalize(t.tradeId)).outcome, 'refunded')
    // The refund leaves out the data fees: before the fix the buyer was credited the whole deposit here.
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fee0 - fee1)
    // Seller 0 holds the receipt node 0's enclave gave it; seller 1 never delivered (no receipt).
    await claim(m, t, 0, 0)
    assert.is(await paid(m, t.tradeId, m.sellers[0].address), fee0)
    await reverts(claim(m, t, 0, 1), 'NothingHeld') // once
    await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'ClaimWindowOpen')
    await increaseTime(chain, 3 * 24 * 3600 + 1)
    await reverts(claim(m, t, 1, 0), 'ClaimWindowClosed')
    await m.buyer.client.dtmc.releaseUnclaimed(t.tradeId)
    assert.is(await paid(m, t.tradeId, m.buyer.address), t.deposit - fee0)
    await reverts(m.buyer.client.dtmc.releaseUnclaimed(t.tradeId), 'NothingHeld')
  })
})

test('a receipt counts only when the attested enclave of that node signed it for this seller', async () => {
  const m = await makeMarket(chain, 2, 3)
  const t = await openTrade(m)
  await increaseTime(chain, 3601)
  await m.buyer.client.dtmc.finalize(t.tradeId)
  // signed by node 1's enclave but presented as node 0's
  await reverts(claim(m, t, 0, 0, signedReceipt(m, t, 1, 0)), 'NotAttestedEnclave')
  // seller 1's receipt presented for seller 0
  await reverts(claim(m, t, 0, 0, signedReceipt(m, t, 0, 1)), 'NotAttestedEnclave')
  // signed by a key nobody attested (the buyer's own "enclave")
  await reverts(claim(m, t, 0, 0, signedReceipt(m, t, 0, 0, m.buyer.wallet)), 'NotAttestedEnclave')
  // commitments that are not the trade's
  await reverts(m.sellers[0].client.dtmc.claimDelivery(t.tradeId, 0, 0, [m.sellers[1].commitment, m.sellers[0].commitment], signedReceipt(m, t, 0, 0)), 'CommitmentsMismatch')
  await reverts(claim(m, t, 0, 5, signedReceipt(m, t, 0, 0)), 'UnknownNode')
})

test('no claims on an open trade, nor on one settled with a result (the sellers were paid at settlement)', async () => {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  await reverts(claim(m, t, 0, 0), 'NothingHeld')
  // Two of three nodes commit; the third stays silent, so reveals open after COMMIT_WINDOW and the last
  // committed reveal settles the trade with its majority.
  for (let i = 0; i < 2; i++) await submit(m, t, i)
  await increaseTime(chain, COMMIT_WINDOW + 1)
  for (let i = 0; i < 2; i++) await reveal(m, t, i)
  assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.state, 'settled')
  await reverts(claim(m, t, 0, 0), 'NothingHeld')
})

test.run()
