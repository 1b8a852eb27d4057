// Attack: offer-table flood (issue 11, item 3). The buyer kept up to MAX_OFFERS_PER_TRADE (64) offers
// per demand, checked only at the end of the offer window and told apart by offer id alone: 64
// made-up seller offers (offer ids 1000-1063, random accounts, from two fresh peer ids) filled the
// table within a second, the honest seller and node were turned away, and the trade failed with
// "not enough offers". Here, on a real testnet (anvil, daemons as processes), the attacker floods
// from two independent libp2p hosts as soon as it sees the demand; besides the made-up offers (each
// signed by its random account, the best a stranger can do), one of its hosts is a seller registered
// in CISC with eight real datasets of the tag, which it all offers. The trade must still complete, no
// made-up offer may take a slot, and the registered one gets at most MAX_OFFERS_PER_PEER.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet, keccak256 } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { offerProtocol, signOffer, type Offer } from '../../p2p/offer/index.ts'
import { DEMAND_TOPIC, type Demand } from '../../p2p/demand/index.ts'
import type { P2PHost } from '../../p2p/index.ts'
import { MAX_OFFERS_PER_PEER, MAX_OFFERS_PER_TRADE } from '../../daemon/roles/buyer/constants.ts'
import { attackerHost, fundedAccount, listenForDemands, attackTestnet } from '../helpers/attacker.ts'

const TAG = 'flood-weather'
const artifactPath = join(ARTIFACTS_DIR, 'StatsFast.json')
const REGISTERED_DATASETS = 8
/** Offers one attacker host has in flight at once (under the buyer's per-connection stream limit). */
const IN_FLIGHT = 8
// A grace long enough for the whole flood to be judged within the window on a loaded machine: the honest seller's
// and node's offers are enough at once, and with the default 100 ms the buyer closed its window before the
// registered flooder's offers (each checked against CISC) came in, so none was taken and the test could not see the
// per-peer cap (a full suite at load ~10: all 8 answered false). Flooded offers still cannot end the window.
const bench = attackTestnet(test, 'flood', { sellers: 1, nodes: 1, config: { trade: { offerGraceMs: 5_000 } } })
const hosts = bench.hosts

test('a trade completes while two strangers flood the buyer with offers', async () => {
  const seller = bench.net.sellers[0]
  const path = join(seller.datadir, 'data.csv')
  writeFileSync(path, sampleDataset(1200, 5))
  await seller.rpc.call('seller_addDataset', { path, tag: TAG, unitPrice: '10', policy: { mode: 'any' } })

  const [a, b] = [await attackerHost(bench.net), await attackerHost(bench.net)]
  hosts.push(a, b)
  // Host a is also a registered seller: its account names a's peer id in CISC and lists datasets of
  // the tag, dearer than the honest seller's (so that the buyer's choice stays the honest one).
  const registered = await fundedAccount(bench.net.network)
  await registered.chain.cisc.registerSeller(a.peerId)
  const listed: bigint[] = []
  for (let i = 0; i < REGISTERED_DATASETS; i++) {
    const { offerId } = await registered.chain.cisc.listDataset({
      tag: TAG, size: 1000n, unitPrice: 20n, commitment: keccak256(new Uint8Array([i])), policy: { allowedCodeHashes: [], anyCode: true, outputCap: 65536n, minOutputPrice: 0n }
    })
    listed.push(offerId)
  }
  registered.chain.close()

  const acks = { madeUp: [] as Array<boolean | 'lost'>, registered: [] as Array<boolean | 'lost'> }
  const flooded = new Promise<void>((resolve) => {
    let started = false
    listenForDemands(a, (d: Demand) => {
      if (started) return
      started = true
      const scope = (peerId: string): { chainId: number, dtmc: string, peerId: string } => ({ chainId: d.chainId, dtmc: d.dtmc, peerId })
      // An answer, or 'lost' when the stream failed (the buyer's per-connection stream limit, say).
      const send = async (host: P2PHost, offer: Offer): Promise<boolean | 'lost'> => await offerProtocol(host).sendOffer(d.buyerPeer, offer).catch(() => 'lost' as const)
      const madeUp = (host: P2PHost, i: number): Offer => {
        const account = Wallet.createRandom()
        return signOffer({ type: 'offer', demandId: d.demandId, kind: 'seller', account: account.address.toLowerCase(), offerId: BigInt(1000 + i) }, scope(host.peerId), account.privateKey)
      }
      const flood = async (host: P2PHost, first: number): Promise<void> => {
        for (let i = first; i < MAX_OFFERS_PER_TRADE; i += 2 * IN_FLIGHT) {
          const batch = Array.from({ length: IN_FLIGHT }, (_, k) => i + 2 * k).filter(n => n < MAX_OFFERS_PER_TRADE)
          acks.madeUp.push(...await Promise.all(batch.map(async n => await send(host, madeUp(host, n)))))
        }
      }
      void (async () => {
        acks.registered.push(...await Promise.all(listed.map(async offerId => await send(a, signOffer(
          { type: 'offer', demandId: d.demandId, kind: 'seller', account: registered.wallet.address.toLowerCase(), offerId }, scope(a.peerId), registered.wallet.privateKey)))))
        await Promise.all([flood(a, 0), flood(b, 1)])
      })().then(() => { resolve() })
    })
  })
  await waitFor('the attacker and the buyer on the demand topic', () => a.topicPeers(DEMAND_TOPIC).length > 0 && b.topicPeers(DEMAND_TOPIC).length > 0, 30_000, 200)
  await waitFor('the seller in the DHT', async () => (await bench.net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: `sdte:dataset:${TAG}` })).length >= 1, 30_000, 300)

  const buyer = bench.net.buyers[0]
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: artifactPath, nodes: 1, sellers: 1, sellerPrice: '20', sellerCap: '500000', nodePrice: '1', nodeCap: '200000000',
    outputPrice: '12', outputCap: '4096', deadlineSeconds: 600
  })
  await flooded
  const view = await waitFor('the trade to end', async () => {
    const v = await buyer.rpc.call<{ records: Array<{ state: string, reason?: string, sellerOffers: Array<{ peerId: string, offerId: string }>, nodeOffers: unknown[] }> }>('trade_get', { tradeId })
    return ['delivered', 'failed', 'refunded'].includes(v.records[0].state) ? v.records[0] : undefined
  }, 120_000, 250)
  assert.is(view.state, 'delivered', `the trade went on despite the flood: ${view.reason ?? ''}`)
  assert.is(acks.madeUp.length, MAX_OFFERS_PER_TRADE)
  assert.is(acks.madeUp.filter(a => a === false).length, MAX_OFFERS_PER_TRADE, `every made-up offer was answered, and refused: ${JSON.stringify(acks.madeUp)}`)
  const fromRegistered = view.sellerOffers.filter(o => o.peerId === a.peerId)
  assert.ok(fromRegistered.length <= MAX_OFFERS_PER_PEER, `the registered flooder holds ${fromRegistered.length} slots, at most ${MAX_OFFERS_PER_PEER}`)
  assert.is(acks.registered.filter(a => a === true).length, MAX_OFFERS_PER_PEER, `and was told so: ${JSON.stringify(acks.registered)}`)
  assert.not.ok(view.sellerOffers.some(o => BigInt(o.offerId) >= 1000n && BigInt(o.offerId) < 1000n + BigInt(MAX_OFFERS_PER_TRADE)), 'no made-up offer id in the record')
  assert.ok(view.sellerOffers.some(o => o.peerId === seller.info.peerId), 'the honest seller\'s offer is in the record')
})

test.run()
