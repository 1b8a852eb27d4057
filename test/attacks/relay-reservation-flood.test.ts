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
import { createP2PHost } from '../../p2p/index.ts'
import * as C from '../../p2p/constants.ts'
import type { P2PHost } from '../../p2p/index.ts'

let relay: P2PHost | undefined
const strangers: Libp2p[] = []

test.after(async () => {
  await Promise.allSettled(strangers.map(async s => { await s.stop() }))
  await relay?.stop()
})

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

test.run()
