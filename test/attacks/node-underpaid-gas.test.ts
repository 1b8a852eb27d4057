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
import { getBytes, hexlify, keccak256, randomBytes } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { attestProtocol, dataProtocol } from '../../p2p/index.ts'
import type { RequestRefusedError } from '../../p2p/messages/exchange.ts'
import { networkDomainOf, tagHashOf } from '../../contracts/index.ts'
import {
  encryptCodeForEnclave, encryptDataset, generateKeyPair, signChunk, signCodeDelivery, signDataKeyDelivery, signReceiptAck, wrapDataKey
} from '../../enclave/index.ts'
import { attackerHost, attackTestnet, fundedAccount } from '../helpers/attacker.ts'

const bench = attackTestnet(test, 'underpaid-gas', { buyers: 0, sellers: 0, nodes: 1 })
const random32 = (): string => hexlify(randomBytes(32)).toLowerCase()
const TAG = 'underpaid-gas'
// analyze(bytes[]) returning abi.encode(bytes(uint256(gasleft()))): cheap to run, and it reads the cap it ran with.
const CODE = getBytes('0x602060005260206020525a60405260606000f3')
const DATA = new TextEncoder().encode('x,y\n1,2\n3,4\n')
const OUTPUT_CAP = 64n
/** The node's price per gas: the testnet's daemons keep DEFAULT_NODE_PRICE_PER_GAS (config/daemon-defaults.ts). */
const NODE_PRICE = 1n
/** Far above what the fee pays for, within the node's default maxGas (2 000 000 000). */
const BIG_GAS_CAP = 1_000_000_000n

type Attacker = Awaited<ReturnType<typeof setUp>>
let attacker: Attacker | undefined

interface NodeRecord { role: string, state: string, reason?: string }

/** The attacker: a libp2p host connected to the node, a buyer account, and a seller account registered for the host's peer with one dataset. */
async function setUp () {
  const net = bench.net
  const node = net.nodes[0]
  const host = await attackerHost(net)
  bench.hosts.push(host)
  await waitFor('a connection to the node', async () => await host.connect(node.info.addresses[0]).then(() => true, () => false), 30_000, 500)
  const buyer = await fundedAccount(net.network)
  const seller = await fundedAccount(net.network)
  await seller.chain.cisc.registerSeller(host.peerId)
  const ds = encryptDataset(DATA)
  const { offerId } = await seller.chain.cisc.listDataset({
    tag: TAG, size: BigInt(DATA.length), unitPrice: 1n, commitment: ds.commitment,
    policy: { allowedCodeHashes: [], anyCode: true, outputCap: OUTPUT_CAP, minOutputPrice: 0n }
  })
  return { net, node, host, buyer, seller, ds, offerId, attest: attestProtocol(host), data: dataProtocol(host), domain: networkDomainOf(net.network) }
}

test.after(() => {
  attacker?.buyer.chain.close()
  attacker?.seller.chain.close()
})

/**
 * The attacker's trade on the node: a quote from its enclave, the trade opened on DTMC with these node terms, the
 * buyer's code envelope with the trade's gas cap, then the seller's delivery over /sdte/data/1 (acknowledged when
 * the node returns a receipt, so the node would run). Returns the delivery's outcome: 'complete' or the refusal.
 */
async function trade (a: Attacker, terms: { nodeCap: bigint, gasCap: bigint }): Promise<{ tradeId: string, outcome: string, nodeFee: bigint }> {
  const salt = random32()
  const tradeId = a.buyer.chain.dtmc.tradeIdOf(a.buyer.wallet.address, salt)
  const codeHash = keccak256(CODE).toLowerCase()
  const reply = await a.attest.attest(a.node.info.peerId, { tradeId, codeHash, nonce: random32() })
  const taskId = reply.quote.taskId
  const now = (await a.buyer.chain.provider.getBlock('latest'))!.timestamp
  await a.buyer.chain.dtmc.openTrade({
    salt, tagHash: tagHashOf(TAG), codeHash, deadline: now + 600, sellerCap: BigInt(DATA.length), nodePrice: NODE_PRICE, nodeCap: terms.nodeCap,
    outputPrice: 1n, outputCap: OUTPUT_CAP, gasCap: terms.gasCap, offerIds: [a.offerId], nodes: [{ payee: a.node.info.ethAddress, quote: reply.quote }]
  })
  const view = await a.buyer.chain.dtmc.trade(tradeId)
  assert.is(view?.gasCap, terms.gasCap, 'DTMC holds the attacker\'s gas cap')
  const envelope = encryptCodeForEnclave(reply.enclavePublicKey, taskId, {
    code: CODE, resultPublicKey: generateKeyPair().publicKey, gasCap: terms.gasCap, outputCap: OUTPUT_CAP, resultSalt: random32()
  })
  await a.attest.sendCode(a.node.info.peerId, { taskId, envelope: hexlify(envelope), salt, signature: signCodeDelivery(a.buyer.wallet.privateKey, a.domain, taskId, envelope) })
  const sellerKey = a.seller.wallet.privateKey
  const wrapped = wrapDataKey(reply.enclavePublicKey, taskId, 0, { key: a.ds.key, commitment: a.ds.commitment, size: a.ds.size, outputCap: OUTPUT_CAP })
  const open = {
    tradeId, taskId, sellerIndex: 0, commitment: a.ds.commitment, wrappedKey: hexlify(wrapped),
    sellerSignature: signDataKeyDelivery(sellerKey, a.domain, taskId, 0, a.ds.commitment, wrapped), size: a.ds.size, chunks: a.ds.chunks.length
  }
  const chunkAt = (i: number): Uint8Array => signChunk(sellerKey, a.domain, taskId, 0, wrapped, a.ds.chunks[i])
  let outcome: string
  try {
    // The receipt is acknowledged on the delivery's own stream, as the seller daemon does.
    const acknowledge = async (): Promise<string> =>
      signReceiptAck(sellerKey, a.domain, { tradeId, taskId, sellerIndex: 0, commitment: a.ds.commitment, seller: a.seller.wallet.address.toLowerCase() })
    const status = await a.data.deliver(a.node.info.peerId, open, chunkAt, { acknowledge })
    outcome = status.complete ? 'complete' : `incomplete at chunk ${status.nextChunk}`
  } catch (err) {
    outcome = (err as RequestRefusedError).reason ?? String(err)
  }
  return { tradeId, outcome, nodeFee: view!.nodeFee }
}

/** The node's record of the trade, once its tick has found the trade on DTMC. */
async function nodeRecord (a: Attacker, tradeId: string): Promise<NodeRecord> {
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
