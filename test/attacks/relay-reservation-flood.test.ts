// Attack: a relay's reservations filled by one stranger. The relay role serves circuit-relay v2
// reservations to hosts behind NAT, at most RELAY_MAX_RESERVATIONS at once, each held for
// RELAY_RESERVATION_TTL_MS (an hour) whether or not its holder stays connected. Peer ids cost
// nothing: one machine that reserves from fresh peer ids took every slot, and honest hosts behind
// NAT then found no relay for an hour. A relay now holds at most RELAY_MAX_RESERVATIONS_PER_SOURCE
// reservations per source address (an IPv4 address, an IPv6 /64). Here, on loopback, one process
// reserves from more fresh peer ids than that through the real relay transport; the relay (a real
// host with the relay role's options) must hold no more than the cap from that address.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { createP2PHost } from '../../p2p/index.ts'
import * as C from '../../p2p/constants.ts'
import { multiaddr } from '@multiformats/multiaddr'
import type { P2PHost } from '../../p2p/index.ts'

let relay: P2PHost | undefined
let racedRelay: P2PHost | undefined
const strangers: Libp2p[] = []

test.after(async () => {
  await Promise.allSettled(strangers.map(async s => { await s.stop() }))
  await relay?.stop()
  await racedRelay?.stop()
})

const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'
/** A circuit-relay v2 HopMessage { type: RESERVE } (field 1, varint 0). */
const RESERVE_REQUEST = Uint8Array.from([0x08, 0x00])
const STATUS_OK = 100

/** The `status` (field 5, a varint) of a HopMessage; the other fields are skipped by their wire type. */
function hopStatusOf (msg: Uint8Array): number | undefined {
  let i = 0
  const varint = (): number => {
    let v = 0
    for (let shift = 0; ; shift += 7) {
      const b = msg[i++]
      v += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return v
    }
  }
  while (i < msg.length) {
    const key = varint()
    if ((key & 7) === 0) {
      const v = varint()
      if (key >>> 3 === 5) return v
    } else if ((key & 7) === 2) {
      const length = varint()
      i += length
    } else return undefined
  }
  return undefined
}

test('fresh peer ids from one address hold no more than the per-source cap of a relay\'s reservations', async () => {
  relay = await createP2PHost({ relayServer: true }, { privateKey: await generateKeyPair('Ed25519') })
  await relay.start()
  const [relayAddr] = relay.addresses()
  const attempts = C.RELAY_MAX_RESERVATIONS_PER_SOURCE + 4
  assert.ok(attempts < C.RELAY_MAX_RESERVATIONS, 'the flood stays under the global cap, so only the per-source cap can refuse it')

  // Each stranger is a bare libp2p node whose only listen address is a reservation on our relay:
  // its start() resolves once the relay granted the slot and rejects when the relay refused it.
  // libp2p itself accepts DEFAULT_INBOUND_CONNECTION_THRESHOLD connections a second from one host,
  // so the flood comes in batches under that rate: slow, but an hour's reservations wait for it.
  const reserve = async (): Promise<boolean> => {
    const stranger = await createLibp2p({
      addresses: { listen: [`${relayAddr}/p2p-circuit`] },
      transports: [tcp(), circuitRelayTransport()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() }
    })
    strangers.push(stranger)
    await stranger.start()
    return stranger.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit'))
  }
  const batch = C.DEFAULT_INBOUND_CONNECTION_THRESHOLD - 1
  const outcomes: Array<PromiseSettledResult<boolean>> = []
  while (outcomes.length < attempts) {
    const n = Math.min(batch, attempts - outcomes.length)
    outcomes.push(...await Promise.allSettled(Array.from({ length: n }, reserve)))
    await new Promise(resolve => setTimeout(resolve, 1_100))
  }
  const granted = outcomes.filter(o => o.status === 'fulfilled' && o.value).length
  const held = relay.node.services.relay?.reservations.size ?? 0
  console.log(`  ${attempts} reservations asked from 127.0.0.1: ${granted} granted, the relay holds ${held}`)
  assert.is(held, C.RELAY_MAX_RESERVATIONS_PER_SOURCE, 'the relay holds exactly the per-source cap from one address')
  assert.is(granted, C.RELAY_MAX_RESERVATIONS_PER_SOURCE, 'and the strangers were told the rest were refused')
})

// Review: the relay awaits the gater's answer before it records a reservation, so requests that
// arrive together could all pass the per-source check before any is recorded. Here strangers from
// one address connect first, then all ask at once (the same turn of their event loop), each over
// its own connection: the relay must still grant no more than the cap.
test('concurrent reservation requests from one address get no more than the per-source cap', async () => {
  const strangersAtOnce = 2 * C.RELAY_MAX_RESERVATIONS_PER_SOURCE
  // The connections come in at once: the per-host connection rate is not what is tested here.
  racedRelay = await createP2PHost({ relayServer: true, inboundConnectionThreshold: 4 * strangersAtOnce, maxIncomingPendingConnections: 2 * strangersAtOnce }, { privateKey: await generateKeyPair('Ed25519') })
  await racedRelay.start()
  const [relayAddr] = racedRelay.addresses()
  const bare = await Promise.all(Array.from({ length: strangersAtOnce }, async () => {
    const stranger = await createLibp2p({
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() }
    })
    strangers.push(stranger)
    await stranger.start()
    return stranger
  }))
  const connections = await Promise.all(bare.map(async s => await s.dial(multiaddr(relayAddr))))
  const streams = await Promise.all(connections.map(async c => lpStream(await c.newStream(HOP_PROTOCOL))))
  const statuses = await Promise.all(streams.map(async lp => {
    await lp.write(RESERVE_REQUEST)
    return hopStatusOf((await lp.read({ signal: AbortSignal.timeout(30_000) })).subarray())
  }))
  const granted = statuses.filter(s => s === STATUS_OK).length
  const held = racedRelay.node.services.relay?.reservations.size ?? 0
  console.log(`  ${strangersAtOnce} reservations asked at once from 127.0.0.1: ${granted} granted, the relay holds ${held} (statuses ${[...new Set(statuses)].join(', ')})`)
  assert.is(held, C.RELAY_MAX_RESERVATIONS_PER_SOURCE, 'the relay holds exactly the per-source cap')
  assert.is(granted, C.RELAY_MAX_RESERVATIONS_PER_SOURCE, 'and granted no more')
})

// Review: js-libp2p's relay kept a reservation until its TTL (an hour) after its holder's
// connection closed, though it cannot relay to a holder it has no connection to: strangers that
// reserved and left held the source's slots for the hour. Now the relay drops a reservation with
// its holder's last connection, and the address can reserve again.
test('a reservation is dropped when its holder disconnects, and its slot is free again', async () => {
  const relayNode = racedRelay?.node
  assert.ok(relayNode !== undefined, 'the relay of the case before')
  const reservations = relayNode.services.relay?.reservations
  assert.ok(reservations !== undefined && reservations.size === C.RELAY_MAX_RESERVATIONS_PER_SOURCE, 'the case before left the cap held')
  const holders = strangers.filter(s => reservations.has(s.peerId))
  await Promise.all(holders.map(async s => { await s.hangUp(relayNode.peerId) }))
  const deadline = Date.now() + 30_000
  while (reservations.size > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  console.log(`  ${holders.length} holders disconnected: the relay holds ${reservations.size}`)
  assert.is(reservations.size, 0, 'no reservation outlives its holder\'s connection')

  const stranger = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
  strangers.push(stranger)
  await stranger.start()
  const lp = lpStream(await (await stranger.dial(multiaddr(racedRelay?.addresses()[0] ?? ''))).newStream(HOP_PROTOCOL))
  await lp.write(RESERVE_REQUEST)
  assert.is(hopStatusOf((await lp.read({ signal: AbortSignal.timeout(30_000) })).subarray()), STATUS_OK, 'the address reserves again')
})

test.run()
