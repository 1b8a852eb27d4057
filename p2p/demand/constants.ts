// Limits of the demand topic (docs/trade.md step 2). Every one is explicit.

/** The gossipsub topic of buyer demands (BDBC). */
export const DEMAND_TOPIC = '/sdte/bdbc/1'
/** Largest demand message accepted or published, in bytes of JSON. */
export const MAX_DEMAND_BYTES = 8 * 1024
/** A demand may not ask for offers further ahead than this (seconds). */
export const MAX_DEMAND_TTL_SECONDS = 3600
/** Longest trade a demand may ask for, from escrow to deadline (seconds). */
export const MAX_TRADE_SECONDS = 7 * 24 * 3600
/** Upper bounds of a trade's shape; DTMC holds the same (MAX_NODES, MAX_SELLERS). */
export const MAX_DEMAND_NODES = 9
export const MAX_DEMAND_SELLERS = 8
/** Demand ids remembered to refuse duplicates; older ones have expired anyway. */
export const MAX_SEEN_DEMANDS = 10_000
/** Clock skew tolerated between peers when checking expiry (seconds). */
export const CLOCK_SKEW_SECONDS = 30
/** Demands one buyer account may have accepted (and so answered and forwarded) per rate window. */
export const MAX_DEMANDS_PER_BUYER = 10
/** The window of MAX_DEMANDS_PER_BUYER (seconds). */
export const DEMAND_RATE_WINDOW_SECONDS = 60
/** Buyers whose recent demands are counted; beyond it the least recently active are forgotten. */
export const MAX_RATE_TRACKED_BUYERS = 10_000
/**
 * Posted demands (buyer and hash, read from BDBC's DemandPosted logs as blocks arrive) remembered so
 * that the validator need not read the chain for them (posted.ts); past it the oldest are forgotten
 * and such a demand is read from the chain again. About 250 bytes each.
 */
export const MAX_KNOWN_POSTED_DEMANDS = 20_000
