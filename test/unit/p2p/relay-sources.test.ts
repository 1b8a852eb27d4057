// Which reservations count against one source, and when the relay refuses one more
// (p2p/host/relay-sources.ts; the flood itself: test/attacks/relay-reservation-flood.test.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { dropReservationOf, refusesReservation, reservationGate, reservationSourceOf, type RelaySourceView } from '../../../p2p/host/relay-sources.ts'
import type { PeerId } from '@libp2p/interface'

const peer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

test('a source is an IPv4 address, or an IPv6 /64; a mapped IPv4 address is that IPv4 address', () => {
  assert.is(reservationSourceOf(multiaddr('/ip4/203.0.113.7/tcp/4001')), '203.0.113.7')
  const a = reservationSourceOf(multiaddr('/ip6/2001:db8:1:2::5/tcp/4001'))
  assert.is(a, reservationSourceOf(multiaddr('/ip6/2001:db8:1:2:ffff:1:2:3/tcp/9')), 'one /64')
  assert.is.not(a, reservationSourceOf(multiaddr('/ip6/2001:db8:1:3::5/tcp/4001')), 'the next /64')
  assert.is(reservationSourceOf(multiaddr('/ip6/::ffff:203.0.113.7/tcp/4001')), '203.0.113.7')
  assert.is(reservationSourceOf(multiaddr('/dns4/example.org/tcp/4001')), undefined)
})

test('refused at the cap of other peers from one source; a renewal, another source and an unknown peer', async () => {
  const [a, b, c, d] = await Promise.all([peer(), peer(), peer(), peer()])
  const from = new Map<string, Multiaddr[]>([
    [a.toString(), [multiaddr('/ip4/198.51.100.1/tcp/1')]],
    [b.toString(), [multiaddr('/ip4/198.51.100.1/tcp/2')]],
    [c.toString(), [multiaddr('/ip4/198.51.100.1/tcp/3')]],
    [d.toString(), [multiaddr('/ip4/198.51.100.2/tcp/1')]]
  ])
  const held: Array<[PeerId, { addr: Multiaddr }]> = [[a, { addr: multiaddr('/ip4/198.51.100.1/tcp/1') }], [b, { addr: multiaddr('/ip4/198.51.100.1/tcp/2') }]]
  const view: RelaySourceView = { remoteAddrsOf: (p) => from.get(p.toString()) ?? [], reservations: () => held }
  assert.ok(refusesReservation(c, view, 2), 'a third peer from the source that holds two')
  assert.not.ok(refusesReservation(c, view, 3), 'under a larger cap')
  assert.not.ok(refusesReservation(a, view, 2), 'a holder renews its own')
  assert.not.ok(refusesReservation(d, view, 2), 'another address')
  assert.ok(refusesReservation(await peer(), view, 2), 'a peer without a connection')
})

test('the gate counts the grants it answered until the relay records them or they expire', async () => {
  const ids = await Promise.all([peer(), peer(), peer(), peer()])
  const [a, b, c, d] = ids
  const from = new Map(ids.map((p, i) => [p.toString(), [multiaddr(`/ip4/198.51.100.1/tcp/${i + 1}`)]]))
  const held: Array<[PeerId, { addr: Multiaddr }]> = []
  const view: RelaySourceView = { remoteAddrsOf: (p) => from.get(p.toString()) ?? [], reservations: () => held }
  let now = 1_000
  const gate = reservationGate(view, 2, 500, () => now)
  // Asked together, before the relay recorded either: the third is refused all the same.
  assert.not.ok(gate(a))
  assert.not.ok(gate(b))
  assert.ok(gate(c), 'two grants pending from the source')
  assert.not.ok(refusesReservation(c, view, 2), 'the check without pending grants would have passed it (the race)')
  // Recorded: counted once, not as held and pending both.
  held.push([a, { addr: multiaddr('/ip4/198.51.100.1/tcp/1') }])
  assert.ok(gate(c), 'one held and one pending')
  assert.not.ok(gate(a), 'a renewal')
  // b's grant was never recorded (its reserve failed): it lapses after pendingMs.
  now += 500
  assert.not.ok(gate(d), 'the lapsed grant no longer counts')
  assert.ok(gate(c), 'a held, d pending')
})

test('a dropped reservation has its timer cleared first', async () => {
  const a = await peer()
  let cleared = 0
  const table = new Map<string, { signal: { clear: () => void } }>([[a.toString(), { signal: { clear: () => { cleared++ } } }]])
  const reservations = { get: (p: PeerId) => table.get(p.toString()), delete: (p: PeerId) => table.delete(p.toString()) }
  assert.ok(dropReservationOf(reservations, a))
  assert.is(table.size, 0)
  assert.is(cleared, 1)
  assert.not.ok(dropReservationOf(reservations, a), 'nothing to drop')
})

test.run()
