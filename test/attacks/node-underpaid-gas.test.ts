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
import { getBytes } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { attackerTrade, attackTestnet, nodeTradeAttacker, type NodeTradeAttacker } from '../helpers/attacker.ts'

const bench = attackTestnet(test, 'underpaid-gas', { buyers: 0, sellers: 0, nodes: 1 })
const TAG = 'underpaid-gas'
// analyze(bytes[]) returning abi.encode(bytes(uint256(gasleft()))): cheap to run, and it reads the cap it ran with.
const CODE = getBytes('0x602060005260206020525a60405260606000f3')
const DATA = new TextEncoder().encode('x,y\n1,2\n3,4\n')
const OUTPUT_CAP = 64n
/** The node's price per gas: the testnet's daemons keep DEFAULT_NODE_PRICE_PER_GAS (config/daemon-defaults.ts). */
const NODE_PRICE = 1n
/** Far above what the fee pays for, within the node's default maxGas (2 000 000 000). */
const BIG_GAS_CAP = 1_000_000_000n

let attacker: NodeTradeAttacker | undefined
const setUp = async (): Promise<NodeTradeAttacker> => await nodeTradeAttacker(bench, { tag: TAG, data: DATA, outputCap: OUTPUT_CAP })

interface NodeRecord { role: string, state: string, reason?: string }

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

test.run()
