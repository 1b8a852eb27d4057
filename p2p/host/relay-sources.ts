// A relay's reservations counted per source address (RELAY_MAX_RESERVATIONS_PER_SOURCE). js-libp2p's
// circuit-relay v2 server caps reservations in all (maxReservations) but not per peer address, and
// peer ids cost nothing; its one hook is the connection gater's denyInboundRelayReservation, which
// is given the asking peer only. So the gater looks up the peer's connection and the relay's own
// reservation table, which keeps the address each reservation was made from, plus the grants it
// answered that the relay has not recorded yet.
import { IpNet, iPv4FromIPv6, ipToString, isIPv4mappedIPv6 } from '@chainsafe/netmask'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'

/** What the gater reads from the built node: the peer's open connections and the held reservations. */
export interface RelaySourceView {
  remoteAddrsOf: (peer: PeerId) => Multiaddr[]
  /** Every reservation the relay holds now: its holder and the address it reserved from. */
  reservations: () => Iterable<[PeerId, { addr: Multiaddr }]>
}

/**
 * The source a reservation counts against: an IPv4 address, or an IPv6 address's /64 (one
 * subscriber's prefix: an IPv6 host gets a whole /64 and would otherwise have addresses without
 * end). Undefined for an address without an IP (a relayed one, which the relay refuses anyway).
 */
export function reservationSourceOf (addr: Multiaddr): string | undefined {
  for (const c of addr.getComponents()) {
    if (c.name === 'ip4' && c.value !== undefined) return c.value
    if (c.name !== 'ip6' || c.value === undefined) continue
    // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d: it is that IPv4 address.
    const ip = new IpNet(c.value, 128).network
    return isIPv4mappedIPv6(ip) ? ipToString(iPv4FromIPv6(ip)) : new IpNet(c.value, 64).toString()
  }
  return undefined
}

/** Grants the gater answered but the relay may not have recorded yet: per peer, the sources it asked from. */
export type PendingGrants = Iterable<[PeerId, string[]]>

/**
 * Whether a reservation asked by `peer` is refused: its connection's source already holds
 * `maxPerSource` reservations of other peers, held or granted and not yet recorded (its own counts
 * as a renewal). A peer whose connection the node cannot find is refused: the request came over
 * one, so that is a race with its closing, and refusing costs the peer a retry while granting could
 * pass the cap.
 */
export function refusesReservation (peer: PeerId, view: RelaySourceView, maxPerSource: number, pending: PendingGrants = []): boolean {
  const sources = new Set(view.remoteAddrsOf(peer).map(reservationSourceOf).filter((s): s is string => s !== undefined))
  if (sources.size === 0) return true
  const held = new Map<string, number>()
  const count = (source: string | undefined): void => { if (source !== undefined) held.set(source, (held.get(source) ?? 0) + 1) }
  const holders = new Set<string>()
  for (const [holder, reservation] of view.reservations()) {
    holders.add(holder.toString())
    if (!holder.equals(peer)) count(reservationSourceOf(reservation.addr))
  }
  for (const [granted, from] of pending) {
    if (granted.equals(peer) || holders.has(granted.toString())) continue
    for (const source of from) count(source)
  }
  return [...sources].some(s => (held.get(s) ?? 0) >= maxPerSource)
}

/**
 * The gater's check with the grants it answered counted until the relay records them (or
 * `pendingMs` passes: the relay's hop timeout, within which a reserve completes or fails). The
 * relay awaits the gater before it records a reservation, so a check that saw only recorded
 * reservations would let requests answered in that gap all pass. Today the check runs in the
 * same turn as the record (the gater answers synchronously and the relay reserves in the
 * microtask after), but nothing in libp2p promises that; this keeps the cap without it.
 * Entries are per granted peer and go when recorded or expired: at most maxPerSource a source.
 */
export function reservationGate (view: RelaySourceView, maxPerSource: number, pendingMs: number, clock: () => number = Date.now): (peer: PeerId) => boolean {
  const pending = new Map<string, { peer: PeerId, sources: string[], until: number }>()
  return (peer) => {
    const now = clock()
    const held = new Set<string>()
    for (const [holder] of view.reservations()) held.add(holder.toString())
    for (const [id, grant] of pending) if (grant.until <= now || held.has(id)) pending.delete(id)
    const refused = refusesReservation(peer, view, maxPerSource, [...pending.values()].map(g => [g.peer, g.sources]))
    if (refused) return true
    const sources = view.remoteAddrsOf(peer).map(reservationSourceOf).filter((s): s is string => s !== undefined)
    pending.set(peer.toString(), { peer, sources, until: now + pendingMs })
    return false
  }
}

/** What dropReservationsOnDisconnect touches: the relay's table (its signals' timers are cleared too). */
export interface HeldReservations {
  get: (peer: PeerId) => { signal: { clear: () => void } } | undefined
  delete: (peer: PeerId) => unknown
}

/**
 * Drops a peer's reservation when its last connection to the relay closed. js-libp2p's relay keeps
 * it until its TTL (an hour), though it cannot serve it (a relayed connection needs the relay's
 * connection to the holder), and the holder's client asks another relay or again once it
 * reconnects; go-libp2p's relay drops it on disconnect too. The timer is cleared first: left
 * running, it would delete the peer's next reservation when it fired.
 */
export function dropReservationOf (reservations: HeldReservations, peer: PeerId): boolean {
  const held = reservations.get(peer)
  if (held === undefined) return false
  held.signal.clear()
  reservations.delete(peer)
  return true
}
