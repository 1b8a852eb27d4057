// Defaults of the daemon's own parts (keys, trading loop, shutdown, log): their one home. config/options.ts takes
// its defaults from here, from p2p/constants.ts and from config/rpc-defaults.ts.

/** Roles a daemon runs when none is given: a relay only helps the network (DHT, gossip). */
export const DEFAULT_ROLES = ['relay'] as const
/** scrypt cost of a newly written keystore (ethers' default, 2^17); tests and devnets use 1024. */
export const DEFAULT_SCRYPT_N = 131_072
/** Smallest scrypt cost accepted (it must also be a power of two). */
export const MIN_SCRYPT_N = 1024
export const DEFAULT_LOG_LEVEL = 'info'
/**
 * The safety poll: how often each role looks at its active trades and the chain even when no event woke it.
 * Roles react to new blocks, their own trades' state changes and stream messages as they come
 * (trade.events); this poll only bounds how long a missed event can leave a trade waiting.
 */
export const DEFAULT_TICK_MS = 2000
/**
 * Blocks deep a transaction of ours must be before the role acts on it as done, and how deep a trade's opening
 * must be before a seller delivers data or a node runs for it (contracts/client.ts). 1, as soon as it is mined:
 * right for a devnet, which mines one block per transaction and never reorganises on its own; whatever it is,
 * a transaction a reorganisation drops is broadcast again and the roles re-check the chain. On a public chain
 * use more, e.g. 3 on Ethereum mainnet (reorganisations deeper than 2 blocks are very rare since the merge).
 * Not more than 1 on a chain that mines only on transactions (an automining devnet): no block would follow
 * the last transaction, and its send would wait for its receipt timeout.
 */
export const DEFAULT_CONFIRMATIONS = 1
/** Buyer: the most offers are collected after a demand goes out (the choice comes earlier once there are enough). */
export const DEFAULT_OFFER_WINDOW_MS = 3000
/**
 * Buyer: once the checked offers are enough for the demand (its sellers and nodes), how long more offers may
 * still come (a faster enclave, a better rated seller) before the choice. Short: every honest party answers
 * the same gossiped demand within a few tens of milliseconds on a local network (issue 13: the four offers of a
 * 1 KiB trade came within 2-85 ms of each other at load average 10-16 on 2 cores, BENCHMARKS.md), so 100 ms.
 */
export const DEFAULT_OFFER_GRACE_MS = 100
/** Buyer: how long one attestation may take before the node is passed over. */
export const DEFAULT_ATTEST_TIMEOUT_MS = 10_000
/** Node: the price it asks per unit of enclave gas, wei as a decimal string. */
export const DEFAULT_NODE_PRICE_PER_GAS = '1'
/** Node: the most enclave gas it runs for one task, a decimal string. */
export const DEFAULT_NODE_MAX_GAS = '2000000000'
/** Grace period for a graceful stop before the process is forced out. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 15_000
/** The datadir when neither --datadir nor SDTE_DATADIR is given: ~/.sdte (config/options.ts defaultDatadir). */
export const HOME_DATADIR_NAME = '.sdte'
/** The datadir's name under $XDG_DATA_HOME, where that is set. */
export const XDG_DATADIR_NAME = 'sdte'
/** Log line format (--log-format): human or json. */
export const DEFAULT_LOG_FORMAT = 'human'
/** Size at which the log file (--log-file) is rotated: FILE becomes FILE.1. */
export const DEFAULT_LOG_MAX_FILE_BYTES = 10 * 1024 * 1024
/** Rotated log files kept besides the current one (FILE.1 .. FILE.<n>). */
export const DEFAULT_LOG_MAX_FILES = 5
/** The monitoring server (/metrics, /health, /ready) listens on loopback unless told otherwise. */
export const DEFAULT_METRICS_HOST = '127.0.0.1'
/** Its port (Prometheus exporters' customary 9464); 0 picks a free one. */
export const DEFAULT_METRICS_PORT = 9464
/**
 * The p2p network mode (p2p/constants.ts NETWORK_MODES) or 'auto': 'local' on a devnet (its network
 * file says devnet) or without a network, 'public' on any other network.
 */
export const DEFAULT_P2P_MODE = 'auto' as const
/**
 * The daemon process's environment, set by its launchers (bin/sdte; daemon/tools/child-daemons.ts for the
 * local testnets, tests and benchmarks) where the user has not set the variable; glibc and V8 read them when
 * the process starts, so the daemon cannot set them for itself. Measured in BENCHMARKS.md "Daemon footprint":
 * - MALLOC_MMAP_THRESHOLD_: buffers from this size up (the 1 MiB data chunks, their ciphertexts, a whole input)
 *   get pages of their own that go back to the system when freed. Without it glibc raises its threshold to the
 *   size of the largest buffer freed so far (up to 32 MiB), after which such buffers come from the heap, which
 *   keeps their memory once they are freed (a seller stayed at 2.2x its resting memory after a 64 MiB trade).
 * - MALLOC_ARENA_MAX: the malloc arenas the daemon's threads (the enclave worker and run threads, libuv's pool)
 *   share, instead of up to 8 per core, each keeping its own freed memory.
 */
export const DAEMON_PROCESS_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_ARENA_MAX: '2'
}
/**
 * V8 flags the launchers add to NODE_OPTIONS (unless it sets the flag already): a young generation of at most
 * 2 MiB per semi-space instead of 16, which V8 fills at start-up and keeps (about 25 MiB less at rest).
 */
export const DAEMON_NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=2']
