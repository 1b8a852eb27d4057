// A relay's reservations counted per source address (RELAY_MAX_RESERVATIONS_PER_SOURCE). js-libp2p's
// circuit-relay v2 server caps reservations in all (maxReservations) but not per peer address, and
// peer ids cost nothing; its one hook is the connection gater's denyInboundRelayReservation, which
// is given the asking peer only. So the gater looks up the peer's connection and the relay's own
// reservation table, which keeps the address each reservation was made from.
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

/**
 * Whether a reservation asked by `peer` is refused: its connection's source already holds
 * `maxPerSource` reservations of other peers (its own counts as a renewal). A peer whose
 * connection the node cannot find is refused: the request came over one, so that is a race with
 * its closing, and refusing costs the peer a retry while granting could pass the cap.
 */
export function refusesReservation (peer: PeerId, view: RelaySourceView, maxPerSource: number): boolean {
  const sources = new Set(view.remoteAddrsOf(peer).map(reservationSourceOf).filter((s): s is string => s !== undefined))
  if (sources.size === 0) return true
  const held = new Map<string, number>()
  for (const [holder, reservation] of view.reservations()) {
    if (holder.equals(peer)) continue
    const source = reservationSourceOf(reservation.addr)
    if (source !== undefined) held.set(source, (held.get(source) ?? 0) + 1)
  }
  return [...sources].some(s => (held.get(s) ?? 0) >= maxPerSource)
}
