// A whole trade across hosts: every daemon in its own network namespace with its own address, the
// chain on the bridge between them, and the trusted node behind a NAT router (nftables masquerade,
// packet loss on its link) so that nobody can dial it. The relay sits behind a delaying TCP relay
// and announces that address (--announce). The node finds out it is private, reserves a slot on the
// relay, and is reached through it; the buyer and the seller then talk to it directly (DCUtR's
// upgrade: the node dials back). The result, the payments and the refund are checked as in
// trade.test.ts. Where namespaces are not permitted the suite says so and skips.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getBytes } from 'ethers'
import { LocalTestnet, NetnsNetwork, netnsUnavailable, waitFor, type TestnetDaemon } from '../../daemon/tools/index.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { runTrade, expectedPayments, paymentsOf, type BuyerView } from '../helpers/trade.ts'

const TAG = 'nat-weather'
const P2P_PORT = 4001
/** The relay's public port: a delaying TCP relay in front of its daemon. */
const RELAY_PUBLIC_PORT = 4002
const RELAY_DELAY_MS = 20
/** Forwarded packets the node's NAT router drops, per thousand. */
const LOSS_PER_MILLE = 5
const datasets = [sampleDataset(1200, 21)]

const why = netnsUnavailable()
if (why !== null) {
  process.stdout.write(`SKIPPED: the NAT trade needs network namespaces: ${why}\n`)
  test.skip('a trade with a node behind a NAT', () => {})
  test.run()
} else {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-nat-'))
  const HOSTS: Record<string, string> = { relay: 'relay', buyer1: 'buyer', seller1: 'seller', node1: 'node' }
  let hosts: NetnsNetwork
  let net: LocalTestnet
  let view: BuyerView
  let node: TestnetDaemon

  test.before(async () => {
    hosts = await NetnsNetwork.create({
      hosts: [{ name: 'relay' }, { name: 'buyer' }, { name: 'seller' }, { name: 'node', nat: true }],
      lossPerMille: LOSS_PER_MILLE
    })
    const relayIp = hosts.host('relay').ip
    await hosts.delayRelay('relay', RELAY_PUBLIC_PORT, `${relayIp}:${P2P_PORT}`, { delayMs: RELAY_DELAY_MS })
    net = await LocalTestnet.start({
      dir,
      buyers: 1,
      sellers: 1,
      nodes: 1,
      chainHost: hosts.chainHost,
      // As on the internet: only public (and relayed) addresses are announced or kept in the DHT.
      config: { p2p: { mode: 'public' } },
      // Operators with a public address announce it (libp2p would otherwise wait for AutoNAT to confirm
      // it, which takes more peers than this network has); the node behind the NAT has none.
      place: hosts.placeDaemons({ hostOf: (name) => HOSTS[name], p2pPort: P2P_PORT, announcePort: (_h, name) => name === 'relay' ? RELAY_PUBLIC_PORT : P2P_PORT })
    })
    node = net.nodes[0]
  })

  test.after(async () => {
    try {
      await net?.stop()
    } finally {
      await hosts?.destroy()
      if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
    }
  })

  test('the node behind the NAT cannot be dialled, and reserves a slot on the relay', async () => {
    const n = hosts.host('node')
    assert.not.ok(hosts.canConnect('seller', n.ip, P2P_PORT), 'its own address is unreachable')
    assert.not.ok(hosts.canConnect('seller', n.publicIp, P2P_PORT), 'its router forwards nothing inbound')
    const relayId = net.relay.info.peerId
    assert.equal(net.relay.info.addresses, [`/ip4/${hosts.host('relay').ip}/tcp/${RELAY_PUBLIC_PORT}/p2p/${relayId}`], 'the relay announces only its --announce address')
    const circuit = await waitFor('a relay reservation', async () => {
      const info = await node.rpc.call<{ addresses: string[] }>('admin_info')
      return info.addresses.find(a => a.includes(`/p2p/${relayId}/p2p-circuit`))
    }, 60_000, 500)
    assert.match(circuit, `/tcp/${RELAY_PUBLIC_PORT}/p2p/${relayId}/p2p-circuit/p2p/${node.info.peerId}`)
    const info = await node.rpc.call<{ addresses: string[], reachability: string }>('admin_info')
    assert.ok(info.addresses.every(a => a.includes('/p2p-circuit/')), `public mode: its LAN address is not announced (${info.addresses.join(' ')})`)
    assert.is(info.reachability, 'relayed')
    assert.is((await net.sellers[0].rpc.call<{ reachability: string }>('admin_info')).reachability, 'public')
  })

  test('a trade with the seller and the node on different hosts, the node behind a NAT, completes', async () => {
    const run = await runTrade(net, { tag: TAG, datasets, nodes: 1, timeoutMs: 180_000 })
    assert.equal(run.providers[0].addresses, [`/ip4/${hosts.host('seller').ip}/tcp/${P2P_PORT}`], 'the DHT holds the seller\'s public address only')
    view = run.view
    const rec = view.records[0]
    assert.is(rec.state, 'delivered', `${rec.reason ?? ''} ${JSON.stringify(rec.rejected)}`)
    assert.ok(run.result.verified, 'result hash equals the final hash on DTMC')
    assert.equal(getBytes(run.result.result), referenceOutput('Stats', datasets))
    assert.is(view.chain.nodes[0].payee.toLowerCase(), node.info.ethAddress.toLowerCase(), 'the node behind the NAT did the work')
  })

  test('the buyer and the seller reached the node directly, not through the relay', async () => {
    for (const d of [net.buyers[0], net.sellers[0]]) {
      const peers = await d.rpc.call<Array<{ peerId: string, direct?: boolean }>>('admin_peers')
      const n = peers.find(p => p.peerId === node.info.peerId)
      assert.ok(n !== undefined, `${d.name} is connected to the node`)
      assert.is(n.direct, true, `${d.name} holds a direct connection to the node`)
    }
  })

  test('payments and the refund match the caps and prices to the wei', () => {
    const { deposit, payments } = expectedPayments(net, datasets, view)
    assert.is(BigInt(view.chain.deposit), deposit)
    assert.equal(paymentsOf(view), payments)
  })

  test.run()
}
