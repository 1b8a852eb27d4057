// Gossipsub keeps one outbound stream a peer, opened when the peer connects, and never opens it again
// when it fails while the connection stays open (a reset under load, a negotiation that timed out):
// the peer then silently drops out of gossip. In bench/network the bootstrap relay, which 49 daemons
// connected to at once, was seen so. The host opens such streams again (p2p/host/gossip.ts repairStreams).
// Here: many hosts joining through one at once; every one, the bootstrap too, must get a message.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createP2PHost } from '../../../p2p/index.ts'
import type { P2PHost } from '../../../p2p/index.ts'
import { waitFor } from '../../../daemon/tools/child-daemons.ts'

const TOPIC = '/sdte/test/streams/1'
const LEAVES = 10
const hosts: P2PHost[] = []
/** How long each wait may take (10 leaves joining one host at once, on a loaded machine). */
const EVENTUALLY_MS = 60_000

async function newHost (bootstrap: string[] = []): Promise<P2PHost> {
  // Every leaf dials from 127.0.0.1, all at once: the bootstrap would refuse them as one host
  // dialling too often (inboundConnectionThreshold), which peers on their own addresses are not.
  const limits = bootstrap.length === 0 ? { inboundConnectionThreshold: 10 * LEAVES, maxIncomingPendingConnections: 2 * LEAVES } : {}
  const h = await createP2PHost({ bootstrap, ...limits }, { privateKey: await generateKeyPair('Ed25519') })
  hosts.push(h)
  await h.start()
  return h
}

test.after(async () => {
  await Promise.allSettled(hosts.map(async h => { await h.stop() }))
})

test(`${LEAVES} hosts bootstrapped through one: every host, the bootstrap too, gets a message`, async () => {
  const boot = await newHost()
  const leaves = await Promise.all(Array.from({ length: LEAVES }, async () => await newHost([boot.addresses()[0]])))
  const all = [boot, ...leaves]
  const got = new Map<string, Set<string>>(all.map(h => [h.peerId, new Set()]))
  for (const h of all) h.subscribe(TOPIC, (msg) => { got.get(h.peerId)?.add(new TextDecoder().decode(msg.data)) })
  await waitFor('the bootstrap sees every leaf subscribed', () => boot.topicPeers(TOPIC).length === LEAVES, EVENTUALLY_MS)
  await waitFor('every leaf sees the bootstrap subscribed', () => leaves.every(l => l.topicPeers(TOPIC).includes(boot.peerId)), EVENTUALLY_MS)

  const publishAndWait = async (from: P2PHost, text: string): Promise<void> => {
    // A publish that reaches nobody throws (NoTopicPeersError): retried until someone is subscribed.
    await waitFor(`${text} published`, async () => { try { return (await from.publish(TOPIC, new TextEncoder().encode(text))).recipients > 0 } catch { return false } }, EVENTUALLY_MS)
    await waitFor(`every host but the publisher has ${text}`, () => all.every(h => h === from || got.get(h.peerId)?.has(text)), EVENTUALLY_MS)
  }
  await publishAndWait(leaves[0], 'from a leaf')
  await publishAndWait(boot, 'from the bootstrap')
  assert.ok(all.every(h => got.get(h.peerId)?.size === (h === boot ? 1 : h === leaves[0] ? 1 : 2)), 'each host got the messages it did not publish')
})

test.run()
