// Attack: reflected demand spam (issue 11, item 4). Sellers and nodes answered every gossiped demand
// that was well formed and signed, without looking for it on BDBC, and dialled whatever `buyerPeer`
// it named: 10 demands signed by throwaway keys and naming a victim's peer id made the seller and
// the node open 20 offer streams to the victim, and the gossip forwarded every one of them. Here, on
// a real testnet (anvil, daemons as processes), an independent libp2p host sends two kinds of free
// demands: ones naming a victim peer, and ones naming itself that it never posted to BDBC. Neither
// kind may get an offer stream, and neither may be forwarded to an observer that hears the topic only
// through the seller. A demand the buyer daemon posted (on chain, authored by its buyer peer) is
// still answered and forwarded: that is also the marker that everything sent before was decided on.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet, keccak256 } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { offerProtocol } from '../../p2p/offer/index.ts'
import { DEMAND_TOPIC, decodeDemand, encodeDemand, signDemand, type DemandTerms } from '../../p2p/demand/index.ts'
import type { P2PHost } from '../../p2p/index.ts'
import { attackerHost, attackTestnet } from '../helpers/attacker.ts'

const TAG = 'reflect-weather'
const SPAM = 10
const bench = attackTestnet(test, 'reflect', { sellers: 1, nodes: 1 })
const hosts = bench.hosts

test('free demands get no offer stream and are not forwarded; a posted one is', async () => {
  const seller = bench.net.sellers[0]
  const path = join(seller.datadir, 'data.csv')
  writeFileSync(path, sampleDataset(1000, 3))
  await seller.rpc.call('seller_addDataset', { path, tag: TAG, unitPrice: '10', policy: { mode: 'any' } })

  const offersTo = new Map<string, number>()
  const countOffers = async (h: P2PHost): Promise<void> => {
    offersTo.set(h.peerId, 0)
    await offerProtocol(h).start({ onOffer: async () => { offersTo.set(h.peerId, offersTo.get(h.peerId)! + 1); return false } })
  }
  const victim = await attackerHost(bench.net)
  const attacker = await attackerHost(bench.net)
  // The observer dials only the seller daemon. Other peers may still find and dial it (its own DHT lookups
  // make it known), and a direct connection to the attacker lets the attacker's own publish reach it (seen once:
  // all 20 "heard"); so it records which peer each copy came from, and right before the spam it hangs up on
  // every peer but the seller, so that what it hears of the spam can only have come through the seller.
  const observer = await attackerHost(bench.net, { bootstrap: false })
  hosts.push(victim, attacker, observer)
  await countOffers(victim)
  await countOffers(attacker)
  const heard: string[] = []
  /** Each demand the observer heard (its first copy), by the peer it came from. */
  const heardFrom = new Map<string, string>()
  observer.subscribe(DEMAND_TOPIC, (msg) => { heard.push(decodeDemand(msg.data).demand.demandId) }, (msg) => {
    try { heardFrom.set(decodeDemand(msg.data).demand.demandId, msg.receivedFrom ?? '') } catch {}
    return 'accept'
  })
  attacker.subscribe(DEMAND_TOPIC, () => {})
  await observer.connect(seller.info.addresses[0])
  // The victim is an ordinary peer of the network, which the seller and the node can reach.
  for (const h of [victim, attacker]) for (const d of [seller, bench.net.nodes[0]]) await h.connect(d.info.addresses[0])
  await waitFor('the attacker and the observer on the demand topic', () => attacker.topicPeers(DEMAND_TOPIC).length > 0 && observer.topicPeers(DEMAND_TOPIC).length > 0, 30_000, 200)

  const code = keccak256('0x6001')
  const terms = (buyerPeer: string): DemandTerms => ({
    chainId: bench.net.network.chainId, dtmc: bench.net.network.contracts.DTMC.toLowerCase(), buyerPeer, tag: TAG, codeHash: code, nodes: 1, sellers: 1,
    sellerPrice: 20n, sellerCap: 500_000n, nodePrice: 1n, nodeCap: 200_000_000n, outputPrice: 12n, outputCap: 4096n,
    expiresAt: Math.floor(Date.now() / 1000) + 300, tradeSeconds: 600, epsilon: 0n
  })
  const spam = [
    ...Array.from({ length: SPAM }, () => signDemand(terms(victim.peerId), Wallet.createRandom())),
    ...Array.from({ length: SPAM }, () => signDemand(terms(attacker.peerId), Wallet.createRandom()))
  ]
  for (const p of observer.peers()) if (p.peerId !== seller.info.peerId) await observer.hangUp(p.peerId)
  for (const d of spam) await attacker.publish(DEMAND_TOPIC, encodeDemand(d))

  // The marker: a demand the buyer daemon posted. Once the observer heard it and the seller and the
  // node offered for it, they have long had the spam.
  const buyer = bench.net.buyers[0]
  const { tradeId, demandId } = await buyer.rpc.call<{ tradeId: string, demandId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: 1, sellers: 1, sellerPrice: '20', sellerCap: '500000', nodePrice: '1',
    nodeCap: '200000000', outputPrice: '12', outputCap: '4096', deadlineSeconds: 600
  })
  await waitFor('the observer to hear the posted demand', () => heard.includes(demandId), 30_000, 100)
  await waitFor('the seller and the node to offer for it', async () => {
    const r = (await buyer.rpc.call<{ records: Array<{ sellerOffers: unknown[], nodeOffers: unknown[] }> }>('trade_get', { tradeId })).records[0]
    return r.sellerOffers.length >= 1 && r.nodeOffers.length >= 1
  }, 30_000, 100)
  await new Promise(resolve => setTimeout(resolve, 2000))

  assert.is(offersTo.get(victim.peerId), 0, 'no offer stream to the victim named by demands it did not send')
  assert.is(offersTo.get(attacker.peerId), 0, 'no offer stream for demands not posted to BDBC')
  const spamIds = new Set(spam.map(d => d.demandId))
  const spamHeard = [...heardFrom].filter(([id]) => spamIds.has(id))
  const direct = spamHeard.filter(([, from]) => from === attacker.peerId).length
  if (direct > 0) console.log(`  (the attacker dialled the observer again before its spam was out: ${direct} of ${spamIds.size} came from it directly)`)
  // Each copy that came directly hid whether the seller forwarded it (a later copy is dropped as seen): with all of
  // them direct, the test would show nothing.
  assert.ok(direct < spamIds.size, `all ${spamIds.size} free demands reached the observer directly from the attacker: this run cannot tell whether the seller forwarded any`)
  assert.is(spamHeard.filter(([, from]) => from === seller.info.peerId).length, 0, 'no free demand forwarded by the seller')
  assert.is(spamHeard.length - direct, 0, 'no free demand reached the observer but from its author')
})

test.run()
