// Attack: a buyer gets a trusted node to run gas it is not paid for. DTMC pays each node of the final group the
// flat `min(nodePrice × gasCap, nodeCap)` (the min is deliberate), and every node runs with exactly the trade's
// gasCap. An honest buyer daemon sets gasCap = nodeCap / nodePrice, but a buyer that opens the trade itself may
// set a gas cap up to the node's maxGas with a nodeCap of 1 wei: the node checked that nodePrice is at least its
// price per gas and that gasCap is within its maxGas, never what the trade pays it for all that gas, and took the
// data (then ran the analysis with a cap of 1 000 000 000 gas for 1 wei). Now the node refuses the data of a trade
// whose node fee is below its own price per gas times the trade's gas cap (`FeeBelowPrice`), runs nothing for it,
// and a fair trade (the fee exactly at its price for the whole cap) on the same node is still served.
//
// Real parts: anvil, a relay and a node daemon as separate processes; the attacker is an independent libp2p host
// with two funded accounts of its own: the buyer, and a seller it registers and lists a dataset for.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { keccak256 } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { offerProtocol } from '../../p2p/index.ts'
import { demandHashOf, signDemand } from '../../p2p/demand/index.ts'
import { GASLEFT_CODE, TINY_DATA, attackerHost, attackerTrade, attackTestnet, nodeTradeAttacker, type NodeTradeAttacker } from '../helpers/attacker.ts'

const bench = attackTestnet(test, 'underpaid-gas', { buyers: 0, sellers: 0, nodes: 1 })
const TAG = 'underpaid-gas'
const CODE = GASLEFT_CODE
const DATA = TINY_DATA
const OUTPUT_CAP = 64n
/** The node's price per gas: the testnet's daemons keep DEFAULT_NODE_PRICE_PER_GAS (config/daemon-defaults.ts). */
const NODE_PRICE = 1n
/** Far above what the fee pays for, within the node's default maxGas (2 000 000 000). */
const BIG_GAS_CAP = 1_000_000_000n

let attacker: NodeTradeAttacker | undefined
const setUp = async (): Promise<NodeTradeAttacker> => await nodeTradeAttacker(bench, { tag: TAG, data: DATA, outputCap: OUTPUT_CAP })

interface NodeRecord { role: string, state: string, reason?: string, offeredPricePerGas?: string }

test.after(() => { attacker?.close() })

/** The attacker's trade on the node with these node terms; the delivery's outcome and the node fee DTMC fixed. */
async function trade (a: NodeTradeAttacker, terms: { nodeCap: bigint, gasCap: bigint }): Promise<{ tradeId: string, outcome: string, nodeFee: bigint }> {
  const { tradeId, outcome, view } = await attackerTrade(a, { code: CODE, nodePrice: NODE_PRICE, outputCap: OUTPUT_CAP, ...terms })
  assert.is(view.gasCap, terms.gasCap, 'DTMC holds the attacker\'s gas cap')
  return { tradeId, outcome, nodeFee: view.nodeFee }
}

/** The node's record of the trade, once its tick has found the trade on DTMC. */
async function nodeRecord (a: NodeTradeAttacker, tradeId: string): Promise<NodeRecord> {
  return await waitFor('the node to find the trade', async () =>
    (await a.node.rpc.call<{ records: NodeRecord[] }>('trade_get', { tradeId }).catch(() => ({ records: [] }))).records.find(r => r.role === 'node'), 60_000, 200)
}

test('a trade paying the node 1 wei for 1 000 000 000 gas gets its data refused, and the node runs nothing', async () => {
  attacker = await setUp()
  const { tradeId, outcome, nodeFee } = await trade(attacker, { nodeCap: 1n, gasCap: BIG_GAS_CAP })
  assert.is(nodeFee, 1n, 'DTMC fixed the node\'s fee at min(nodePrice × gasCap, nodeCap) = 1 wei')
  assert.is(outcome, 'FeeBelowPrice', `the node took the data of a trade paying it ${nodeFee} wei for up to ${BIG_GAS_CAP} gas at ${NODE_PRICE} wei per gas: ${outcome}`)
  // No data entered the enclave, so the task never becomes runnable: the node's record stays where discovery put it.
  const record = await nodeRecord(attacker, tradeId)
  assert.is(record.state, 'escrowed', `the node went on to ${record.state} ${record.reason ?? ''}`)
})

test('a fair trade on the same node (the fee exactly its price for the whole gas cap) is still served', async () => {
  attacker ??= await setUp()
  const gasCap = 1_000_000n
  const { outcome, nodeFee } = await trade(attacker, { nodeCap: gasCap * NODE_PRICE, gasCap })
  assert.is(nodeFee, gasCap * NODE_PRICE)
  assert.is(outcome, 'complete', 'the node took the data and acknowledged receipt')
})

// Regression: the node judged a trade by its price per gas at the time the data came, not by the price it offered
// for the trade. An operator who raises the price (it is read from the config at the daemon's start: a restart with a
// new price) made the node refuse the trades it had offered for at the old price (`PriceTooLow`, or `FeeBelowPrice`):
// the buyer opened the trade on the node's signed offer, and the trade lost a node. Now the node keeps the price of
// each offer it signs (level, on disk: it outlives the restart) and judges a trade opened on that offer by it.
test('a trade opened on an offer at price P is served after the node\'s price was raised to 2P; one without an offer, or underpaid, is not', async () => {
  attacker ??= await setUp()
  const net = bench.net
  const gasCap = 1_000_000n
  const nodeCap = gasCap * NODE_PRICE
  // The attacker, as an honest buyer: a demand at NODE_PRICE on BDBC, and the node's offer for it, solicited.
  const host = await attackerHost(net)
  bench.hosts.push(host)
  await waitFor('a connection to the node', async () => await host.connect(attacker!.node.info.addresses[0]).then(() => true, () => false), 30_000, 500)
  const demand = signDemand({
    chainId: net.network.chainId, dtmc: net.network.contracts.DTMC.toLowerCase(), buyerPeer: host.peerId, tag: TAG, codeHash: keccak256(CODE).toLowerCase(),
    nodes: 1, sellers: 1, sellerPrice: 1n, sellerCap: BigInt(DATA.length), nodePrice: NODE_PRICE, nodeCap, outputPrice: 1n, outputCap: OUTPUT_CAP,
    expiresAt: Math.floor(Date.now() / 1000) + 600, tradeSeconds: 600, epsilon: 0n
  }, { address: attacker.buyer.wallet.address, privateKey: attacker.buyer.wallet.privateKey })
  const { signature: _s, ...unsigned } = demand
  await attacker.buyer.chain.bdbc.postDemand(demandHashOf(unsigned))
  const offer = await offerProtocol(host).solicit(attacker.node.info.peerId, demand)
  assert.is(offer.account.toLowerCase(), attacker.node.info.ethAddress.toLowerCase(), 'the node offered for the demand at its price')

  // The operator raises the node's price to 2P: a restart on the same datadir with the new price in its config.
  await attacker.node.stop('SIGTERM')
  const node = await net.add('node1', 'node', { trade: { nodePricePerGas: String(2n * NODE_PRICE) } })
  const a: NodeTradeAttacker = { ...attacker, node }
  await waitFor('a connection to the restarted node', async () =>
    await Promise.all(bench.hosts.map(async h => await h.connect(node.info.addresses[0]))).then(() => true, () => false), 30_000, 500)

  const offered = await attackerTrade(a, { code: CODE, nodePrice: NODE_PRICE, nodeCap, gasCap, outputCap: OUTPUT_CAP })
  assert.is(offered.outcome, 'complete', `the node refused a trade opened on its own offer at ${NODE_PRICE} wei per gas: ${offered.outcome}`)
  const record = await waitFor('the node to run the trade it offered for', async () => {
    const r = await nodeRecord(a, offered.tradeId)
    return r.state === 'escrowed' || r.state === 'delivering' || r.state === 'executing' ? undefined : r
  }, 60_000, 200)
  assert.ok(record.state !== 'failed', `the node gave up the trade it offered for: ${record.reason ?? ''}`)
  assert.is(record.offeredPricePerGas, String(NODE_PRICE), 'the node keeps the price it offered with the trade')

  // The offer's terms with a gas cap the fee does not pay for: still refused, at the offered price.
  const underpaid = await attackerTrade(a, { code: CODE, nodePrice: NODE_PRICE, nodeCap, gasCap: BIG_GAS_CAP, outputCap: OUTPUT_CAP })
  assert.is(underpaid.outcome, 'FeeBelowPrice', `an underpaid trade on the offer's terms: ${underpaid.outcome}`)
  // Terms the node made no offer for are judged by its price now: P is below it.
  const unoffered = await attackerTrade(a, { code: CODE, nodePrice: NODE_PRICE, nodeCap: nodeCap + 1n, gasCap, outputCap: OUTPUT_CAP })
  assert.is(unoffered.outcome, 'PriceTooLow', `a trade at the old price without an offer: ${unoffered.outcome}`)
})

test.run()
