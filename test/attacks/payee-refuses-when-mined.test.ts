// Attack (review, settlement gas griefing): payees that accept ether while a client estimates gas and refuse it when
// the transaction is mined. DTMC pushes every payout with the settlement; a refused send is credited to a fresh
// `balanceOf` slot instead, which costs the settling transaction some 24,000 gas more than the estimate saw. The
// attacker's payees (two sellers and one node's payee, all contracts: test/attacks/fixtures/EstimateOnlyPayee.sol)
// tell the estimate from the mined call by `tx.gasprice` (0 in eth_estimateGas, on anvil as on geth), so every
// attempt fails the same way: before the fix the client's limit (estimate + 25 %) ran the honest node's settling
// reveal, and every `finalize` after it (before the deadline or after), out of gas, and the trade could never settle.
// Now the client adds REFUSED_PUSH_GAS per possible payee (sellers + nodes + the buyer) over the margin for the calls
// that pay, a bound on what any payee's behaviour can add (DTMC sends with the 2,300-gas stipend).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { Contract, ContractFactory, Wallet, type TransactionReceipt } from 'ethers'
import { compileSources } from '../../contracts/tools/compile.ts'
import { REFUSED_PUSH_GAS, factsTupleOf, waitForReceipt } from '../../contracts/client.ts'
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
 * A market of two attacker sellers and three nodes, node 0 paid to an attacker payee contract (which commits for it:
 * only the payee may); nodes 1 and 2 honest. Every node commits the same result and nodes 0 and 1 reveal: a majority
 * of two, not yet settled (the next reveal, or a finalize, settles it).
 */
async function attackedTrade (): Promise<{ m: Market, t: OpenedTrade, attackerPayees: string[] }> {
  const a = await account(chain)
  const attacker = { account: a, wallet: new Wallet(a.wallet.privateKey, chain.provider) }
  const m = await makeMarket(chain, 0, 3)
  m.sellers.push(await attackerSeller(attacker), await attackerSeller(attacker))
  const nodePayee = await deployPayee(attacker)
  const nodePayeeAddress = await nodePayee.getAddress()
  const t = await openTrade(m, {}, [nodePayeeAddress, m.nodes[1].address, m.nodes[2].address])
  const dtmc = m.buyer.client.dtmc
  const facts = factsTupleOf(await dtmc.factsOf(t.tradeId))
  await exec(nodePayee, dtmc.address, dtmc.iface.encodeFunctionData('commitResult', [t.tradeId, 0, prepareCommit(t, 0), facts]))
  await commit(m, t, 1)
  await commit(m, t, 2)
  await reveal(m, t, 0)
  await reveal(m, t, 1)
  assert.is((await dtmc.trade(t.tradeId))!.state, 'open')
  return { m, t, attackerPayees: [...m.sellers.map(s => s.address), nodePayeeAddress] }
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
    // What the three refusals cost over the honest settlement: each more than a fresh slot, none more than the bound
    // the client reserves per payee.
    const extra = receipt.gasUsed - honestSettlingGas
    assert.ok(extra > 3n * 22_100n, `three refusals cost ${extra} gas`)
    assert.ok(extra <= 3n * REFUSED_PUSH_GAS, `three refusals cost ${extra} gas, over 3 x REFUSED_PUSH_GAS`)
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

test.run()
