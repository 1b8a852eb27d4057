// The buyer's bounds. Those an operator may tune are options (config/options.ts: trade.offerWindowMs,
// trade.offerGraceMs, trade.attestTimeoutMs); these are fixed.

/** Offers (sellers and nodes together) one trade records; later ones are turned away. */
export const MAX_OFFERS_PER_TRADE = 64
/**
 * Offers one peer may have recorded for one trade (a seller may offer several datasets of the tag).
 * Every recorded offer is already signed by a CISC-registered account with this peer id (offers.ts
 * checkOffer), so filling the table takes MAX_OFFERS_PER_TRADE / MAX_OFFERS_PER_PEER registrations.
 */
export const MAX_OFFERS_PER_PEER = 4
/**
 * Node accounts a trade may strike after failed attestations (index.ts attestAndEscrow) before it fails: each needs a
 * CISC registration with an accepted measurement, and each costs the buyer an attestation and a round of offers.
 */
export const MAX_UNATTESTED_PER_TRADE = 16
/** Peers found in the DHT that one offer window solicits. */
export const MAX_SOLICITED_PEERS = 32
/** How long one DHT provider lookup for a trade's candidates may take. */
export const FIND_PROVIDERS_TIMEOUT_MS = 3000
/** How long a solicited peer has to answer with an offer. */
export const SOLICIT_TIMEOUT_MS = 5000
/** Stop collecting offers this long before the demand expires, so the choice is made in time. */
export const EXPIRY_MARGIN_SECONDS = 5
/** A demand stays open at least this long... */
export const MIN_DEMAND_TTL_SECONDS = 60
/** ...and at least this many offer windows, so that a buyer short of offers can collect again. */
export const DEMAND_TTL_OFFER_WINDOWS = 4
/** The rating a seller nobody has rated yet is ranked with (the middle of 1..5). */
export const UNRATED_SELLER_SCORE = 3
/**
 * How long after DTMC settled on a status other than 0 the buyer tries the nodes of the majority for the
 * enclave's diagnosis (why there is no output) before it records the trade `failed` with what DTMC says
 * alone: the trade is over either way, and `sdte watch` should not wait days for the details.
 */
export const DIAGNOSIS_WAIT_MS = 2 * 60_000
