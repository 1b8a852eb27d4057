// Attack: quote eviction by a flood of free requests (issue 11, item 5). Anyone may ask a node for a
// quote, and each new (trade, code) makes a task in its enclave. A peer gets at most
// MAX_PENDING_TASKS_PER_PEER tasks that no trade has taken up, and past MAX_PENDING_TASKS in all the
// oldest such task made room: peer ids cost nothing, so a flood from fresh peer ids evicted a real
// buyer's task between its attestation and its escrow (its quote then names a task the enclave no
// longer has). Here, on a real testnet (anvil, a node daemon as a process), a buyer of our own (an
// independent libp2p host with a funded account) posts its demand to BDBC, gossips it, and attests
// the node; then strangers from fresh peer ids ask for more quotes than the table holds. The buyer's
// task must survive: attested again, the enclave answers with the same task key.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { hexlify, randomBytes } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { attestProtocol, offerProtocol } from '../../p2p/index.ts'
import { DEMAND_TOPIC, demandHashOf, encodeDemand, signDemand } from '../../p2p/demand/index.ts'
import { MAX_PENDING_TASKS, MAX_PENDING_TASKS_PER_PEER } from '../../daemon/roles/trusted-node/index.ts'
import { attackerHost, fundedAccount, attackTestnet } from '../helpers/attacker.ts'

const bench = attackTestnet(test, 'quotes', { buyers: 0, sellers: 0, nodes: 1 })
const hosts = bench.hosts
const random32 = (): string => hexlify(randomBytes(32)).toLowerCase()

test('a flood of quote requests from fresh peer ids does not evict the task of a buyer with a demand on chain', async () => {
  const node = bench.net.nodes[0]
  const buyerHost = await attackerHost(bench.net)
  hosts.push(buyerHost)
  const offered = new Promise<void>((resolve) => {
    void offerProtocol(buyerHost).start({ onOffer: async () => { resolve(); return true } })
  })
  buyerHost.subscribe(DEMAND_TOPIC, () => {})
  await buyerHost.connect(node.info.addresses[0])
  await waitFor('the demand topic', () => buyerHost.topicPeers(DEMAND_TOPIC).length > 0, 30_000, 200)

  // The buyer's demand, on BDBC and on the topic; the node's offer says it took the demand in.
  const buyer = await fundedAccount(bench.net.network)
  const codeHash = random32()
  const demand = signDemand({
    chainId: bench.net.network.chainId, dtmc: bench.net.network.contracts.DTMC.toLowerCase(), buyerPeer: buyerHost.peerId, tag: 'quotes', codeHash,
    nodes: 1, sellers: 1, sellerPrice: 20n, sellerCap: 100_000n, nodePrice: 1n, nodeCap: 200_000_000n, outputPrice: 12n, outputCap: 4096n,
    expiresAt: Math.floor(Date.now() / 1000) + 600, tradeSeconds: 600
  }, { address: buyer.wallet.address, privateKey: buyer.wallet.privateKey })
  const { signature: _s, ...unsigned } = demand
  await buyer.chain.bdbc.postDemand(demandHashOf(unsigned))
  buyer.chain.close()
  await buyerHost.publish(DEMAND_TOPIC, encodeDemand(demand))
  await offered

  const attest = attestProtocol(buyerHost)
  const tradeId = random32()
  const first = await attest.attest(node.info.peerId, { tradeId, codeHash, nonce: random32() })

  // The flood: enough fresh peer ids, each up to its quota, to fill the table and then some. On a loaded machine a
  // stranger's request may time out: more strangers come until the quotes are past the table (at most twice as many).
  const strangers = Math.ceil(MAX_PENDING_TASKS / MAX_PENDING_TASKS_PER_PEER) + 2
  let quotes = 0
  // One stranger after the other: the node's host limits how fast new connections come in.
  for (let s = 0; s < 2 * strangers && quotes <= MAX_PENDING_TASKS + MAX_PENDING_TASKS_PER_PEER; s++) {
    const h = await attackerHost(bench.net, { bootstrap: false })
    hosts.push(h)
    await waitFor('a connection to the node', async () => await h.connect(node.info.addresses[0]).then(() => true, () => false), 30_000, 500)
    const a = attestProtocol(h)
    await Promise.all(Array.from({ length: MAX_PENDING_TASKS_PER_PEER }, async () => {
      await a.attest(node.info.peerId, { tradeId: random32(), codeHash: random32(), nonce: random32() }).then(() => { quotes++ }, () => {})
    }))
    await h.stop()
  }
  assert.ok(quotes > MAX_PENDING_TASKS, `the strangers got ${quotes} quotes, more than the ${MAX_PENDING_TASKS} pending tasks the node keeps`)

  const again = await attest.attest(node.info.peerId, { tradeId, codeHash, nonce: random32() })
  assert.is(again.quote.taskId, first.quote.taskId)
  assert.is(again.enclavePublicKey, first.enclavePublicKey, 'the buyer\'s task (and its key) survived the flood')
})

test.run()
