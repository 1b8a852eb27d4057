// Defaults of the p2p host. Every one is an option of createP2PHost (see P2PHostOptions).

export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']
/**
 * The kind of network a host is on. 'local' (a devnet, a LAN, loopback testnets): private and
 * loopback addresses are announced, kept in the DHT, and one IP may hold many peers. 'public': only
 * public addresses (and relayed ones through a public relay) are announced or stored in the DHT.
 */
export const NETWORK_MODES = ['local', 'public'] as const
export type NetworkMode = typeof NETWORK_MODES[number]
export const DEFAULT_NETWORK_MODE: NetworkMode = 'local'
/** Prefix of every protocol id we own: the DHT is `${prefix}/kad/1.0.0`, streams `${prefix}/<name>/<version>`. */
export const DEFAULT_PROTOCOL_PREFIX = '/sdte'
export const DHT_PROTOCOL_NAME = 'kad'
export const DHT_PROTOCOL_VERSION = '1.0.0'

// Connection manager
export const DEFAULT_MAX_CONNECTIONS = 100
export const DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS = 10
export const DEFAULT_MAX_PARALLEL_DIALS = 50
/** Incoming connection attempts allowed per remote host per second. */
export const DEFAULT_INBOUND_CONNECTION_THRESHOLD = 5
export const DEFAULT_DIAL_TIMEOUT_MS = 10_000
/**
 * Connection liveness (p2p/host/liveness.ts, in place of libp2p's connection monitor, which aborted
 * a connection on its first slow ping: under load a slow ping is not a dead connection, and an abort
 * takes every stream on the connection with it). Every CONNECTION_PING_INTERVAL_MS each connection
 * without a ping in flight is pinged; a ping waits CONNECTION_PING_TIMEOUT_MS for its answer; after
 * CONNECTION_MAX_FAILED_PINGS unanswered in a row the connection is closed. A peer that vanished
 * without closing is so dropped within CONNECTION_MAX_FAILED_PINGS × (interval + timeout), 60 s
 * (TCP alone took ~15 min), while a loaded peer must miss 30 s of pings in a row to be dropped.
 */
export const CONNECTION_PING_INTERVAL_MS = 10_000
export const CONNECTION_PING_TIMEOUT_MS = 10_000
export const CONNECTION_MAX_FAILED_PINGS = 3

// Bootstrap: @libp2p/bootstrap dials its list once; we redial while we have no peer at all.
export const DEFAULT_BOOTSTRAP_REDIAL_INTERVAL_MS = 5_000

// Gossip
/** Largest gossip message data we publish or accept. */
export const DEFAULT_MAX_GOSSIP_MESSAGE_BYTES = 64 * 1024
/** Largest gossipsub RPC frame accepted from a peer (several messages plus control). */
export const DEFAULT_MAX_GOSSIP_RPC_BYTES = 1024 * 1024
export const MAX_TOPIC_LENGTH = 256
/**
 * Per-topic score weight of a rejected message: the penalty is weight × (invalid count)², so one
 * reject costs 5, two cost 20 (below gossipsub's gossip threshold of -10), four reach -80
 * (graylisted). Decays by this factor per second: about a minute of memory.
 */
export const GOSSIP_INVALID_MESSAGE_WEIGHT = -5
export const GOSSIP_INVALID_MESSAGE_DECAY = 0.99

// DHT
export const MAX_DHT_KEY_LENGTH = 256
/** `sdte:<kind>:<value>`, printable ASCII without spaces. */
export const DHT_KEY_PATTERN = /^sdte:[a-z][a-z0-9-]*:[\x21-\x7e]+$/
export const DEFAULT_PROVIDE_TIMEOUT_MS = 30_000
export const DEFAULT_FIND_PROVIDERS_TIMEOUT_MS = 10_000
export const DEFAULT_FIND_PROVIDERS_LIMIT = 20
/** Pause between findProviders passes while nothing is found yet. */
export const DEFAULT_FIND_PROVIDERS_RETRY_MS = 500
/** Keys we re-announce when new DHT peers appear. */
export const DEFAULT_MAX_PROVIDED_KEYS = 1024
/** Re-announce provided keys this long after the last new DHT peer (batches a burst of joins). */
export const REPROVIDE_DEBOUNCE_MS = 1_000
/**
 * A re-announce of the provided keys starts at least this long after the previous announce began.
 * Each one is a whole provide per key (a lookup, then ADD_PROVIDER to up to k peers), competing with
 * the daemon's gossip and chain reads: in a 20-daemon bench a listing seller re-announced 2-3 times
 * within 8 s as its table filled, and got the first demand 2-6 s late (BENCHMARKS.md, "The stall after
 * the DHT lookups"). Peers that join meanwhile still find the record through the peers that hold it;
 * one trailing re-announce then reaches them.
 */
export const DHT_REPROVIDE_MIN_INTERVAL_MS = 15_000

// Protocol streams
export const DEFAULT_MAX_INBOUND_STREAMS = 32
export const DEFAULT_MAX_OUTBOUND_STREAMS = 64
/** Whole-exchange deadline of one inbound stream handler. */
export const DEFAULT_HANDLER_TIMEOUT_MS = 60_000

// Stream muxing
/**
 * yamux's largest per-stream receive window (its default is 16 MiB). A stream paused by the
 * channel's read backpressure still receives what the window allowed, and was seen to buffer up to
 * twice the window before the pause took hold; a smaller window bounds that, and 4 MiB in flight is
 * plenty on loopback and LANs.
 */
export const YAMUX_MAX_STREAM_WINDOW = 4 * 1024 * 1024
/**
 * Bytes a stream may buffer while paused: twice the window plus the largest frame (a 4 MiB data
 * chunk) and slack. libp2p's default (4 MiB) reset large deliveries under load.
 */
export const YAMUX_MAX_READ_BUFFER = 2 * YAMUX_MAX_STREAM_WINDOW + 8 * 1024 * 1024

// NAT traversal (docs/p2p.md "Across NATs"): a relay serves circuit-relay v2 reservations, hosts
// learn whether they are reachable (AutoNAT), private ones reserve a relay slot, and a relayed
// connection is upgraded to a direct one (DCUtR) where one side can be dialled.
/** Reservations a relay holds at once; a host asking for one more is refused (RESERVATION_REFUSED). */
export const RELAY_MAX_RESERVATIONS = 64
/**
 * Reservations a relay holds at once for one source: an IPv4 address, or an IPv6 /64 (what one
 * subscriber gets). Peer ids cost nothing, so without it one machine took every slot for an hour
 * (test/attacks/relay-reservation-flood). Several honest hosts behind one home NAT share an address.
 */
export const RELAY_MAX_RESERVATIONS_PER_SOURCE = 8
/** How long a reservation lasts before the host must renew it (the transport renews it itself). */
export const RELAY_RESERVATION_TTL_MS = 60 * 60_000
/**
 * How long one relayed connection may stay open. A relayed connection carries only signalling (the
 * DCUtR upgrade, identify); our trade protocols refuse limited connections and run on direct ones.
 */
export const RELAY_CONNECTION_DURATION_MS = 2 * 60_000
/** Bytes one relayed connection may carry (both directions) before the relay resets it. */
export const RELAY_CONNECTION_DATA_BYTES = 1024 * 1024
/** A hop request (reserve or connect) must complete within this. */
export const RELAY_HOP_TIMEOUT_MS = 30_000
/** Hop streams a relay serves at once (reservations and relayed connections being set up). */
export const RELAY_MAX_INBOUND_HOP_STREAMS = 64
/** Relayed connections (stop streams) a relay has open at once. */
export const RELAY_MAX_STOP_STREAMS = 256
/**
 * Default of the option directUpgradeWaitMs: how long dialProtocol waits for a relayed connection to become direct (DCUtR makes the private
 * side dial back within its 3 tries of 5 s) before it gives up on a peer reachable only via a relay.
 */
export const DIRECT_UPGRADE_WAIT_MS = 20_000
/**
 * Whether a host reserves a relay slot: 'auto' (in mode 'public', unless it announces a public
 * address with --announce), 'always', or 'never'.
 */
export const RELAY_RESERVATION_MODES = ['auto', 'always', 'never'] as const
export type RelayReservationMode = typeof RELAY_RESERVATION_MODES[number]
export const DEFAULT_RELAY_RESERVATION: RelayReservationMode = 'auto'
// Bounds on what strangers can make this host hold (issue 11 item 6). kad-dht 16 keeps every provider
// record a peer sends (ADD_PROVIDER, for itself) forever, in the in-memory datastore; gossipsub keeps
// every message id it saw for seenTTL, however many arrive.
/**
 * Provider records of other peers kept for one DHT key. Past it the oldest record of that key makes
 * room: providers re-announce (dht.ts), so a flood of fresh peer ids on a key pushes honest ones
 * out only while it lasts.
 */
export const MAX_PROVIDERS_PER_KEY = 64
/** Provider records one other peer may have stored here; it may refresh them, not add more. */
export const MAX_PROVIDER_RECORDS_PER_PEER = DEFAULT_MAX_PROVIDED_KEYS
/** Provider records of other peers kept in all (about 300 bytes each); past it new ones are refused. */
export const MAX_PROVIDER_RECORDS = 16_384
/** How long a provider record stays valid (kad-dht's provideValidity default); expired ones go first. */
export const PROVIDER_RECORD_TTL_MS = 24 * 60 * 60_000
/** How long gossipsub remembers a message id (its default is 2 minutes): a replay within it is ignored. */
export const GOSSIP_SEEN_TTL_MS = 120_000
/**
 * Message ids remembered in all, whatever their age: past it the oldest are forgotten (a replay of
 * one is then validated again, at worst one BDBC read). Bounds the seen caches under a flood.
 */
export const GOSSIP_MAX_SEEN = 50_000
/** Heartbeats a message stays in gossipsub's message cache (served to IWANT), and those gossiped in IHAVE. */
export const GOSSIP_MCACHE_LENGTH = 5
export const GOSSIP_MCACHE_GOSSIP = 3
/**
 * Messages held in the message cache in all: past it a new message is still validated and delivered
 * but not kept for IWANT (peers in the mesh got it pushed).
 */
export const GOSSIP_MAX_MCACHE = 10_000
/**
 * How often the host looks for connected peers that gossipsub has no outbound stream to (p2p/host/gossip.ts
 * repairStreams): gossipsub opens it once, when the peer connects, and never again if it fails while the
 * connection stays open. A lost stream is opened again within about this long (gossipsub's heartbeat is 1 s).
 */
export const GOSSIP_STREAM_REPAIR_INTERVAL_MS = 1_000
/** Least time between two attempts to open a gossip stream to one peer (each may wait for a negotiation timeout). */
export const GOSSIP_STREAM_RETRY_MS = 5_000
/**
 * Reopenings of one connected peer's gossip stream within GOSSIP_STREAM_REPAIR_WINDOW_MS; past it the
 * host stops reopening it until the oldest falls out of the window. A peer that keeps closing our
 * stream (or dropping us) made the repairer reopen it every GOSSIP_STREAM_RETRY_MS for as long as it
 * stayed connected; an honest peer loses its stream now and then (a reset under load), not 5 times
 * in 10 minutes once connections are not aborted on a slow ping (p2p/host/libp2p.ts).
 */
export const GOSSIP_MAX_STREAM_REPAIRS = 5
export const GOSSIP_STREAM_REPAIR_WINDOW_MS = 10 * 60_000
/**
 * Disconnected peers whose gossip stream reopenings are remembered for the window (a peer that
 * reconnects keeps its count); past it the oldest is forgotten. A peer id costs nothing, so this
 * only needs to outlast an ordinary churn of reconnecting peers: ten times DEFAULT_MAX_CONNECTIONS.
 */
export const GOSSIP_MAX_REPAIR_RECORDS = 1_000
