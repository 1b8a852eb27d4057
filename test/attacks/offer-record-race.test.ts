// Attack (a race anyone could trigger, honest sellers included): offers that arrived in the first
// seconds of a demand were lost from the buyer's record. `publishDemand()` ran outside the trade's
// lock and wrote back its own copy of the record after the BDBC transaction, over the offers
// recorded meanwhile: `trade_get` showed 0 offers although the log showed offers received at
// +30 ms. Here a seller registered in CISC (an independent libp2p host with its own account) offers
// the moment it sees the demand; once the buyer says it took the offer and has finished publishing,
// the offer must be in the record, and stay there.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256 } from 'ethers'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { offerProtocol, signOffer } from '../../p2p/offer/index.ts'
import { DEMAND_TOPIC } from '../../p2p/demand/index.ts'
import type { P2PHost } from '../../p2p/index.ts'
import { attackerHost, fundedAccount, listenForDemands } from '../helpers/attacker.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-attack-race-'))
const TAG = 'race-weather'
let net: LocalTestnet
let host: P2PHost | undefined

test.before(async () => {
  net = await LocalTestnet.start({ dir, sellers: 0, nodes: 0 })
})

test.after(async () => {
  await host?.stop()
  await net?.stop()
  if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
})

interface Record { state: string, published: boolean, posted: boolean, sellerOffers: Array<{ peerId: string, offerId: string }> }

test('an offer taken in the first moments of a demand stays in the record', async () => {
  host = await attackerHost(net)
  const h = host
  const seller = await fundedAccount(net.network)
  await seller.chain.cisc.registerSeller(h.peerId)
  const { offerId } = await seller.chain.cisc.listDataset({ tag: TAG, size: 1000n, unitPrice: 10n, commitment: keccak256('0x01'), policy: { allowedCodeHashes: [], anyCode: true, outputCap: 65536n, minOutputPrice: 0n } })
  seller.chain.close()

  const acked = new Promise<{ accepted: boolean, at: number }>((resolve) => {
    let sent = false
    listenForDemands(h, (d) => {
      if (sent) return
      sent = true
      const offer = signOffer({ type: 'offer', demandId: d.demandId, kind: 'seller', account: seller.wallet.address.toLowerCase(), offerId },
        { chainId: d.chainId, dtmc: d.dtmc, peerId: h.peerId }, seller.wallet.privateKey)
      void offerProtocol(h).sendOffer(d.buyerPeer, offer).then(accepted => { resolve({ accepted, at: Date.now() }) }, () => { resolve({ accepted: false, at: Date.now() }) })
    })
  })
  const buyer = net.buyers[0]
  // Connected beforehand, as the buyer's usual sellers are: the offer is then there within milliseconds.
  await h.connect(buyer.info.addresses[0])
  await waitFor('the demand topic', () => h.topicPeers(DEMAND_TOPIC).length > 0, 30_000, 200)
  const posted = Date.now()
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: 1, sellers: 1, sellerPrice: '20', sellerCap: '100000', nodePrice: '1',
    nodeCap: '200000000', outputPrice: '12', outputCap: '4096', deadlineSeconds: 600
  })
  const ack = await acked
  assert.ok(ack.accepted, 'the buyer took the offer')
  const record = async (): Promise<Record> => (await buyer.rpc.call<{ records: Record[] }>('trade_get', { tradeId })).records[0]
  const done = await waitFor('the demand published and posted', async () => { const r = await record(); return r.published && r.posted ? r : undefined }, 30_000, 50)
  assert.ok(done.sellerOffers.some(o => o.offerId === offerId.toString() && o.peerId === h.peerId),
    `the offer acked ${ack.at - posted} ms after buyer_postDemand was called is in the record: ${JSON.stringify(done.sellerOffers)}`)
})

test.run()
