// Attack (review, settlement gas griefing): payees that accept ether while a client estimates gas and refuse it when
// the transaction is mined. DTMC pushes every payout with the settlement; a refused send is credited to a fresh
// `balanceOf` slot instead, which costs the settling transaction some 24,000 gas more than the estimate saw. The
// attacker's payees (sellers and one node's payee, all contracts: test/attacks/fixtures/EstimateOnlyPayee.sol) tell
// the estimate from the mined call by `tx.gasprice` (0 in anvil's eth_estimateGas of a call without fees, as the
// client's are), so every attempt fails the same way: before the fix the client's limit (estimate + 25 %) ran the
// honest node's settling reveal, its retry and an honest node's `finalize` out of gas, and the trade could never
// settle. Worse when the estimate saw no settlement at all (another reveal mined first in the same block makes this
// one the settling one). Now the client adds PAYOUT_GAS per possible payout (sellers + nodes + the buyer) over the
// margin for the calls that pay: the most one payout can cost whatever its payee does (DTMC sends with the 2,300-gas
// stipend).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { Contract, ContractFactory, Wallet, type TransactionReceipt } from 'ethers'
import { compileSources } from '../../contracts/tools/compile.ts'
import { PAYOUT_GAS, factsTupleOf, waitForReceipt } from '../../contracts/client.ts'
import {
  startChain, makeMarket, openTrade, prepareCommit, commit, reveal, account, rand32, conserved, everyone, TAG,
  type Account, type Chain, type Market, type OpenedTrade, type Seller
} from '../../contracts/tools/market.ts'

const source = readFileSync(new URL('./fixtures/EstimateOnlyPayee.sol', import.meta.url), 'utf8')
const [artifact] = compileSources({ 'EstimateOnlyPayee.sol': source }).filter(a => a.contractName === 'EstimateOnlyPayee')

let chain: Chain
/** The honest trade's settling reveal (same shape, every payee an account that accepts): what the attack adds to. */
let honestSettlingGas: bigint

test.before(async () => {
  chain = await startChain()
  const m = await makeMarket(chain, 2, 3)
  const t = await openTrade(m)
  for (let i = 0; i < 3; i++) await commit(m, t, i)
  await reveal(m, t, 0)
  await reveal(m, t, 1)
  honestSettlingGas = (await reveal(m, t, 2)).gasUsed
  assert.is((await m.buyer.client.dtmc.trade(t.tradeId))!.state, 'settled')
})
test.after(async () => { await chain?.stop() })

/** The attacker: an account that deploys payee contracts and acts through them. */
interface Attacker { account: Account, wallet: Wallet }

async function deployPayee (attacker: Attacker): Promise<Contract> {
  const payee = await new ContractFactory(artifact.abi as any[], artifact.bytecode, attacker.wallet).deploy()
  await waitForReceipt(chain.provider, payee.deploymentTransaction()!.hash, 10_000, 20)
  return payee as Contract
}

/** The attacker's payee `payee` calls `to` with `data`. */
async function exec (payee: Contract, to: string, data: string): Promise<TransactionReceipt> {
  const tx = await (payee as any).exec(to, data)
  const receipt = await waitForReceipt(chain.provider, tx.hash, 10_000, 20)
  if (receipt.status !== 1) throw new Error('exec reverted')
  return receipt
}

/** A seller whose account is one of the attacker's payee contracts: registered and listed under TAG through it. */
async function attackerSeller (attacker: Attacker): Promise<Seller> {
  const payee = await deployPayee(attacker)
  const address = await payee.getAddress()
  const cisc = chain.admin.cisc
  await exec(payee, cisc.address, cisc.iface.encodeFunctionData('registerSeller', ['12D3KooW' + address.slice(2, 20)]))
  const commitment = rand32()
  const size = 10_000n
  const unitPrice = 1_000_000n
  // the Policy tuple as contracts/client.ts listDataset encodes it: any code, output cap, no minimum price, no limits
  const policy = [[], true, 1_000_000n, 0n, [], 0, 0, false, 0n, []]
  const receipt = await exec(payee, cisc.address, cisc.iface.encodeFunctionData('listDataset', [TAG, size, unitPrice, commitment, policy]))
  const [listed] = cisc.eventsIn(receipt, 'DatasetListed')
  return { ...attacker.account, address, offerId: listed.args.offerId as bigint, commitment, size, unitPrice }
}

/**
 * A market of `sellers` attacker sellers and three nodes, node 0 paid to an attacker payee contract (which commits for
 * it: only the payee may); nodes 1 and 2 honest. Every node commits the same result and the nodes `revealed` reveal
 * (default 0 and 1: a majority of two, not yet settled; the next reveal, or a finalize, settles it).
 */
async function attackedTrade (sellers = 2, revealed = [0, 1]): Promise<{ m: Market, t: OpenedTrade, attacker: Attacker, attackerPayees: string[] }> {
  const a = await account(chain)
  const attacker = { account: a, wallet: new Wallet(a.wallet.privateKey, chain.provider) }
  const m = await makeMarket(chain, 0, 3)
  for (let i = 0; i < sellers; i++) m.sellers.push(await attackerSeller(attacker))
  const nodePayee = await deployPayee(attacker)
  const nodePayeeAddress = await nodePayee.getAddress()
  const t = await openTrade(m, {}, [nodePayeeAddress, m.nodes[1].address, m.nodes[2].address])
  const dtmc = m.buyer.client.dtmc
  const facts = factsTupleOf(await dtmc.factsOf(t.tradeId))
  await exec(nodePayee, dtmc.address, dtmc.iface.encodeFunctionData('commitResult', [t.tradeId, 0, prepareCommit(t, 0), facts]))
  await commit(m, t, 1)
  await commit(m, t, 2)
  for (const i of revealed) await reveal(m, t, i)
  assert.is((await dtmc.trade(t.tradeId))!.state, 'open')
  return { m, t, attacker, attackerPayees: [...m.sellers.map(s => s.address), nodePayeeAddress] }
}

/** Each attacker payee refused its payout when mined and was credited it; every honest payee was sent its own. */
async function checkPayouts (m: Market, t: OpenedTrade, receipt: TransactionReceipt, attackerPayees: string[], honest: string[]): Promise<void> {
  const dtmc = m.buyer.client.dtmc
  const credited = dtmc.eventsIn(receipt, 'Credited')
  assert.is(credited.length, attackerPayees.length + honest.length)
  let sum = 0n
  for (const e of credited) {
    const account = e.args.account as string
    const amount = e.args.amount as bigint
    sum += amount
    assert.ok(amount > 0n)
    if (attackerPayees.includes(account)) {
      assert.is(e.args.sent, false, `${account} refused: credited, not sent`)
      assert.is(await dtmc.creditOf(account), amount)
    } else {
      assert.ok(honest.includes(account), `${account} is a payee of the trade`)
      assert.is(e.args.sent, true, `${account} accepts: sent`)
      assert.is(await dtmc.creditOf(account), 0n)
    }
  }
  assert.is(sum, t.deposit) // every wei of the deposit paid out, sent or credited
}

test('three payees that refuse only when mined: the honest node\'s settling reveal still settles the trade', async () => {
  const { m, t, attackerPayees } = await attackedTrade()
  await conserved(chain, everyone(m, attackerPayees), async () => {
    const receipt = await reveal(m, t, 2) // before the fix: mined out of gas (gasUsed = gasLimit), trade still open
    const view = await m.buyer.client.dtmc.trade(t.tradeId)
    assert.is(view!.state, 'settled')
    assert.equal(view!.final!.members, [0, 1, 2])
    await checkPayouts(m, t, receipt, attackerPayees, [m.nodes[1].address, m.nodes[2].address, m.buyer.address])
    // What the three refusals cost over the honest settlement: each more than a fresh slot (22,100); with what an
    // accepted send costs at least (9,300: a cold account and the transfer, the stipend handed back), within PAYOUT_GAS.
    const extra = receipt.gasUsed - honestSettlingGas
    assert.ok(extra > 3n * 22_100n, `three refusals cost ${extra} gas`)
    assert.ok(extra <= 3n * (PAYOUT_GAS - 9_300n), `three refusals cost ${extra} gas`)
  })
})

test('three payees that refuse only when mined: an honest node\'s finalize still settles the trade', async () => {
  const { m, t, attackerPayees } = await attackedTrade()
  await conserved(chain, everyone(m, attackerPayees), async () => {
    const { outcome, receipt } = await m.nodes[1].client.dtmc.finalize(t.tradeId) // before the fix: out of gas, every time
    assert.is(outcome, 'settled')
    const view = await m.buyer.client.dtmc.trade(t.tradeId)
    assert.equal(view!.final!.members, [0, 1])
    await checkPayouts(m, t, receipt, attackerPayees, [m.nodes[1].address, m.buyer.address])
  })
})

test('eight sellers and a node\'s payee that refuse when mined, and a reveal mined first that makes the honest one settle', async () => {
  // The honest node 2 estimates its reveal when only node 1's is in: not the settling one (one of three results
  // missing), so the estimate sees no payout at all. The attacker relays node 0's reveal with a higher tip into the
  // same block, ahead of it: node 2's reveal becomes the settling one and pays everyone, nine payees refusing.
  const { m, t, attacker, attackerPayees } = await attackedTrade(8, [1])
  const dtmc = m.buyer.client.dtmc
  const node0 = t.committed.get(0)!
  const info = node0.info
  const frontRun = dtmc.iface.encodeFunctionData('submitResult', [
    [info.tradeId, info.taskId, info.inputHash, info.resultHash, info.resultSize, info.status], 0, node0.signature, node0.nonce,
    factsTupleOf(await dtmc.factsOf(t.tradeId))
  ])
  await conserved(chain, everyone(m, [...attackerPayees, attacker.account.address]), async () => {
    await chain.provider.send('evm_setAutomine', [false])
    let settling: Promise<TransactionReceipt> | undefined
    try {
      settling = reveal(m, t, 2)
      settling.catch(() => {}) // awaited below
      const pending = async (): Promise<number> => ((await chain.provider.send('eth_getBlockByNumber', ['pending', false])).transactions as string[]).length
      await waitUntil(async () => await pending() === 1)
      await attacker.wallet.sendTransaction({ to: dtmc.address, data: frontRun, gasLimit: 1_000_000n, maxPriorityFeePerGas: 100_000_000_000n, maxFeePerGas: 200_000_000_000n })
      await waitUntil(async () => await pending() === 2)
      await chain.provider.send('evm_mine', [])
    } finally {
      await chain.provider.send('evm_setAutomine', [true])
    }
    const receipt = await settling
    // The reserve was needed: the estimate (no payout) + 25 % is the limit less the reserve of 12 possible payouts
    // (8 sellers, 3 nodes, the buyer).
    const tx = await chain.provider.getTransaction(receipt.hash)
    assert.ok(receipt.gasUsed > tx!.gasLimit - 12n * PAYOUT_GAS, `used ${receipt.gasUsed} of ${tx!.gasLimit}`)
    const block = await chain.provider.getBlock(receipt.blockNumber)
    assert.is(block!.transactions.length, 2)
    assert.is(block!.transactions[1], receipt.hash, 'the honest reveal was mined after the attacker\'s')
    const view = await dtmc.trade(t.tradeId)
    assert.is(view!.state, 'settled')
    assert.equal(view!.final!.members, [0, 1, 2])
    await checkPayouts(m, t, receipt, attackerPayees, [m.nodes[1].address, m.nodes[2].address, m.buyer.address])
  })
})

/** Polls `condition` every 20 ms for up to 30 s (a loaded machine). */
async function waitUntil (condition: () => Promise<boolean>): Promise<void> {
  for (const until = Date.now() + 30_000; !(await condition());) {
    if (Date.now() > until) throw new Error('condition not met within 30 s')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

test.run()
