// A connection to a peer that vanished without closing is closed after a few pings in a row without
// an answer (p2p/host/liveness.ts), while a peer that misses some pings but answers others keeps its
// connection. Before, with libp2p's monitor told never to abort (it aborted on the first slow ping,
// which under load took gossip streams with it), such a connection stayed until TCP gave up, ~15 min.
//
// The vanished peer is reached through a TCP forwarder that stops forwarding (no FIN, no RST: a
// machine gone, a NAT mapping dropped, a stopped process). The slow peer answers one ping in
// three: two in a row unanswered, one fewer than the host's limit. Small intervals (the host's
// options) keep the test to seconds; the waits are bounded and generous for a loaded machine.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { ping, PING_PROTOCOL } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { byteStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { createP2PHost } from '../../../p2p/index.ts'
import { waitFor } from '../../../daemon/tools/child-daemons.ts'
import type { P2PHost } from '../../../p2p/index.ts'
import type { Connection, Stream } from '@libp2p/interface'

const MAX_FAILED_PINGS = 3
const PING_INTERVAL_MS = 200
/** Long enough for an answered ping on a loaded machine; short enough for a test of seconds. */
const PING_TIMEOUT_MS = 1_500
/** A bounded wait: the vanished peer is dropped within 3 × (0.2 + 1.5) s when the host keeps up. */
const EVENTUALLY_MS = 45_000

let host: P2PHost | undefined
const peers: Libp2p[] = []
let forwarder: Server | undefined
const forwarded: Socket[] = []

test.after(async () => {
  for (const s of forwarded) s.destroy()
  forwarder?.close()
  await Promise.allSettled(peers.map(async p => { await p.stop() }))
  await host?.stop()
})

/** A bare libp2p peer: no monitor of its own (it pings nobody), the ping service unless `pingHandler` replaces it. */
async function newPeer (pingHandler?: (stream: Stream) => Promise<void>): Promise<Libp2p> {
  const p = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services: { identify: identify(), ...(pingHandler === undefined && { ping: ping() }) }
  })
  peers.push(p)
  await p.start()
  if (pingHandler !== undefined) await p.handle(PING_PROTOCOL, pingHandler, { maxInboundStreams: 4 })
  return p
}

/** Forwards TCP to `port` until `freeze()`: then it stops reading both ways and closes nothing. */
async function freezableForwarder (port: number): Promise<{ port: number, freeze: () => void }> {
  const pairs: Array<[Socket, Socket]> = []
  forwarder = createServer((client) => {
    const upstream = connect(port, '127.0.0.1')
    forwarded.push(client, upstream)
    client.pipe(upstream)
    upstream.pipe(client)
    pairs.push([client, upstream])
  })
  await new Promise<void>(resolve => forwarder?.listen(0, '127.0.0.1', resolve))
  const address = forwarder.address()
  assert.ok(address !== null && typeof address === 'object')
  return {
    port: address.port,
    freeze: () => {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        client.pause()
        upstream.pause()
      }
    }
  }
}

test('a vanished peer\'s connection is closed after a few unanswered pings; a peer that answers one in three keeps its own', async () => {
  host = await createP2PHost({
    connectionPingIntervalMs: PING_INTERVAL_MS,
    connectionPingTimeoutMs: PING_TIMEOUT_MS,
    connectionMaxFailedPings: MAX_FAILED_PINGS
  }, { privateKey: await generateKeyPair('Ed25519') })
  await host.start()

  // The slow peer: of every three pings it answers the third; it holds the other two unanswered
  // until the host gives up on them (MAX_FAILED_PINGS - 1 in a row).
  let pingsSeen = 0
  const slow = await newPeer(async (stream) => {
    const n = ++pingsSeen
    if (n % MAX_FAILED_PINGS !== 0) {
      await new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
      return
    }
    const bytes = byteStream(stream)
    const got = await bytes.read({ bytes: 32, signal: AbortSignal.timeout(EVENTUALLY_MS) })
    await bytes.write(got.subarray())
    await stream.close()
  })
  const vanishing = await newPeer()
  const vanishingPort = Number(vanishing.getMultiaddrs()[0].getComponents().find(c => c.name === 'tcp')?.value)
  const relay = await freezableForwarder(vanishingPort)

  const slowConn: Connection = await host.node.dial(slow.getMultiaddrs()[0])
  const vanishingConn: Connection = await host.node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${relay.port}/p2p/${vanishing.peerId.toString()}`))
  // Both answer (the slow one now and then) before the one vanishes.
  await waitFor('the slow peer answered a ping', () => pingsSeen >= MAX_FAILED_PINGS, EVENTUALLY_MS)
  assert.is(vanishingConn.status, 'open')
  const frozenAt = Date.now()
  relay.freeze()

  await waitFor('the vanished peer\'s connection closed', () => vanishingConn.status !== 'open', EVENTUALLY_MS)
  const tookMs = Date.now() - frozenAt
  // Two full cycles of the slow peer: twice MAX_FAILED_PINGS - 1 unanswered in a row, each followed by an answer.
  const seenAtFreeze = pingsSeen
  await waitFor('the slow peer saw two more cycles of pings', () => pingsSeen >= seenAtFreeze + 2 * MAX_FAILED_PINGS, EVENTUALLY_MS)
  console.log(`  vanished peer dropped ${tookMs} ms after it froze (bound ${MAX_FAILED_PINGS} × (${PING_INTERVAL_MS} + ${PING_TIMEOUT_MS}) ms when the host keeps up); the slow peer saw ${pingsSeen} pings and is ${slowConn.status}`)
  assert.is(slowConn.status, 'open', 'the slow peer keeps its connection')
  assert.ok(host.node.getConnections(slow.peerId).includes(slowConn))
})

test.run()
