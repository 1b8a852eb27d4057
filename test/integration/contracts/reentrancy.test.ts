// A malicious payee contract (test/integration/contracts/fixtures/ReentrantPayee.sol) that re-enters DTMC from its
// receive hook gets exactly what it was credited, nothing more; one that refuses payment keeps its credit. Its receive
// hook needs more than the 2,300-gas stipend of the settlement's send, so DTMC credits it instead of paying it at once.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { ContractFactory, type Contract } from 'ethers'
import { compileSources } from '../../../contracts/tools/compile.ts'
import { decodeRevert, factsTupleOf, waitForReceipt } from '../../../contracts/client.ts'
import { startChain, makeMarket, openTrade, prepareCommit, commit, reveal, conserved, everyone, type Chain, type Market, type OpenedTrade } from '../../../contracts/tools/market.ts'

let chain: Chain
let m: Market
let payee: Contract
let payeeAddress: string

const source = readFileSync(new URL('./fixtures/ReentrantPayee.sol', import.meta.url), 'utf8')

test.before(async () => {
  chain = await startChain()
  m = await makeMarket(chain, 1, 3)
  const [artifact] = compileSources({ 'ReentrantPayee.sol': source }).filter(a => a.contractName === 'ReentrantPayee')
  const factory = new ContractFactory(artifact.abi as any[], artifact.bytecode, m.nodes[0].client.signer)
  payee = await factory.deploy(chain.network.contracts.DTMC) as Contract
  await waitForReceipt(chain.provider, payee.deploymentTransaction()!.hash, 10_000, 20)
  payeeAddress = await payee.getAddress()
})
test.after(async () => { await chain?.stop() })

/**
 * A trade whose node 0 is paid to the malicious contract (which commits for it: only the payee may). Settled:
 * all three results revealed (the last one settles it). Not settled: two agreeing results revealed, a majority
 * anyone may finalize at once.
 */
async function tradeWithPayee (settled: boolean): Promise<OpenedTrade> {
  const t = await openTrade(m, {}, [payeeAddress])
  const facts = factsTupleOf(await m.buyer.client.dtmc.factsOf(t.tradeId))
  const tx = await (payee as any).commit(m.buyer.client.dtmc.contract.interface.encodeFunctionData('commitResult', [t.tradeId, 0, prepareCommit(t, 0), facts]))
  await waitForReceipt(chain.provider, tx.hash, 10_000, 20)
  await commit(m, t, 1)
  await commit(m, t, 2)
  for (let i = 0; i < (settled ? 3 : 2); i++) await reveal(m, t, i)
  assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.state, settled ? 'settled' : 'open')
  return t
}

/** Sends a call from node 0's account to the payee contract and waits; returns the decoded revert name if any. */
async function call (method: string, ...args: unknown[]): Promise<string | null> {
  try {
    const tx = await (payee as any)[method](...args)
    await waitForReceipt(chain.provider, tx.hash, 10_000, 20)
    return null
  } catch (err) {
    return decodeRevert((err as any).data)?.errorName ?? (err as Error).message
  }
}

async function dtmcHoldsExactlyTheCredits (): Promise<void> {
  let owed = 0n
  for (const a of [...everyone(m).slice(0, -1), payeeAddress]) owed += await m.buyer.client.dtmc.creditOf(a)
  assert.is(await chain.provider.getBalance(chain.network.contracts.DTMC), owed)
}

test('re-entering withdraw from the receive hook gets nothing extra', async () => {
  await conserved(chain, everyone(m, [payeeAddress]), async () => {
    const t = await tradeWithPayee(true)
    const credit = await m.buyer.client.dtmc.creditOf(payeeAddress)
    assert.is(credit, t.terms.nodePrice * t.terms.gasCap) // node 0's flat fee
    await call('setMode', 0, '0x')
    assert.is(await call('pull'), null)
    assert.is(await payee.attempts(), 1n)
    assert.is(await payee.reentryFailures(), 1n) // the nested withdraw found nothing
    assert.is(await payee.received(), credit)
    assert.is(await chain.provider.getBalance(payeeAddress), credit)
    assert.is(await m.buyer.client.dtmc.creditOf(payeeAddress), 0n)
    assert.is(await call('pull'), 'NothingToWithdraw')
    await dtmcHoldsExactlyTheCredits()
  })
})

test('re-entering finalize of another trade and withdrawing again pays each credit once', async () => {
  await conserved(chain, everyone(m, [payeeAddress]), async () => {
    const before = await chain.provider.getBalance(payeeAddress)
    const a = await tradeWithPayee(true)
    const b = await tradeWithPayee(false)
    const fee = a.terms.nodePrice * a.terms.gasCap
    const finalizeB = m.buyer.client.dtmc.contract.interface.encodeFunctionData('finalize', [b.tradeId, factsTupleOf(await m.buyer.client.dtmc.factsOf(b.tradeId))])
    await call('setMode', 1, finalizeB)
    assert.is(await call('pull'), null)
    // paid for a, then (inside the hook) b was finalized and its credit paid; nothing beyond the two fees
    assert.is(await chain.provider.getBalance(payeeAddress) - before, 2n * fee)
    assert.is((await m.buyer.client.dtmc.trade(b.tradeId))!.state, 'settled')
    assert.is(await m.buyer.client.dtmc.creditOf(payeeAddress), 0n)
    await dtmcHoldsExactlyTheCredits()
  })
})

test('a payee that refuses the money: WithdrawFailed, and its credit stays', async () => {
  await conserved(chain, everyone(m, [payeeAddress]), async () => {
    await tradeWithPayee(true)
    const credit = await m.buyer.client.dtmc.creditOf(payeeAddress)
    await call('setMode', 2, '0x')
    assert.is(await call('pull'), 'WithdrawFailed')
    assert.is(await m.buyer.client.dtmc.creditOf(payeeAddress), credit)
    await call('setMode', 0, '0x')
    assert.is(await call('pull'), null)
    assert.is(await m.buyer.client.dtmc.creditOf(payeeAddress), 0n)
    await dtmcHoldsExactlyTheCredits()
  })
})

test.run()
