// The prices per gas the trusted node signed offers at (docs/threat-model.md "The price a trade is judged by"),
// kept in level (they outlive a restart) under OFFERED_PRICE_PREFIX, with an index in memory of each record's
// `until`: bounded (`max`, evicting what expires first), expired without reading level (only once the earliest
// `until` has passed), and written one at a time (a gossiped demand and a solicit for the same terms race otherwise).
import type { Repository } from '../../store.ts'

/** Meta key prefix of the price per gas this node offered at, by the terms of the demand it offered for (offerKeyOf). */
export const OFFERED_PRICE_PREFIX = 'node:offeredPrice:'

/** The price per gas this node signed an offer at, kept until a trade opened on the demand can no longer run. */
export interface OfferedPrice {
  pricePerGas: string
  /** Unix seconds: the demand's expiresAt plus its tradeSeconds (a trade opened on it runs at most that long). */
  until: number
}

/** What a trade opened on a demand shares with it, and what fixes this node's pay: the key of the demand's record. */
export interface OfferTerms { buyer: string, codeHash: string, nodePrice: bigint, nodeCap: bigint }

/**
 * The buyer, the code, the node price and cap (the offer itself names only the demand, and DTMC does not know the
 * demand: these are the link between a trade and the offer it was opened on).
 */
export function offerKeyOf (t: OfferTerms): string {
  return `${OFFERED_PRICE_PREFIX}${t.buyer.toLowerCase()}:${t.codeHash.toLowerCase()}:${t.nodePrice}:${t.nodeCap}`
}

/**
 * The price per gas a trade is judged by: the lower of the one we offered for it (if we did) and our price now. The
 * offered one holds the node to its offer after a raise; our price now, when lower, serves a trade that pays for
 * itself at it (a node restarted at a lower price refused such a trade by its old, higher offer).
 */
export function judgedPrice (offered: bigint | undefined, current: bigint): bigint {
  return offered !== undefined && offered < current ? offered : current
}

export class OfferedPrices {
  private readonly meta: Repository<unknown>
  private readonly max: number
  private readonly now: () => number
  /** Every record's `until`, by key (loaded from level once, then kept in step with it). */
  private index: Map<string, number> | undefined
  /** The smallest `until` in `index` (Infinity when empty): expire() reads nothing before it has passed. */
  private earliest = Infinity
  /**
   * Every read-modify-write of the records, one after the other: recordOffer reads the previous record to keep the
   * lower price and the later `until`, and two at once for the same key would lose one of them. One queue (not per
   * key) keeps the count against `max` exact too; a write is one level put, so the queue stays short.
   */
  private queue: Promise<unknown> = Promise.resolve()

  /** `now`: unix seconds (a test passes its own clock). */
  constructor (meta: Repository<unknown>, max: number, now: () => number = () => Math.floor(Date.now() / 1000)) {
    this.meta = meta
    this.max = max
    this.now = now
  }

  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return await run
  }

  private async loaded (): Promise<Map<string, number>> {
    if (this.index === undefined) {
      const index = new Map<string, number>()
      for (const [key, value] of await this.meta.list({ prefix: OFFERED_PRICE_PREFIX })) index.set(key, (value as OfferedPrice).until)
      this.index = index
      this.earliest = Math.min(Infinity, ...index.values())
    }
    return this.index
  }

  /** How many records there are (what the bound holds to). */
  async size (): Promise<number> {
    return await this.serial(async () => (await this.loaded()).size)
  }

  /**
   * Keeps `pricePerGas` for the demand's terms until `until`. Offered twice (before and after a price change), the
   * lower price and the later `until` hold: the buyer may open the trade on either offer. A new key when `max` records
   * are kept evicts the one that expires first (an expired one, if any). Evicting rather than refusing to offer: a
   * stranger who fills the book (one BDBC transaction per record) must not stop the node from offering to anyone;
   * what an eviction costs is one trade judged by the node's price now instead of its offered one, which matters only
   * if the operator raised the price since. The entry that expires first is the one whose trade is nearest its end.
   */
  async record (terms: OfferTerms, pricePerGas: bigint, until: number): Promise<void> {
    await this.serial(async () => {
      const index = await this.loaded()
      const key = offerKeyOf(terms)
      const prev = index.has(key) ? await this.meta.get(key) as OfferedPrice | undefined : undefined
      const live = prev !== undefined && prev.until >= this.now() ? prev : undefined
      const price = live !== undefined && BigInt(live.pricePerGas) < pricePerGas ? BigInt(live.pricePerGas) : pricePerGas
      const value: OfferedPrice = { pricePerGas: price.toString(), until: Math.max(live?.until ?? 0, until) }
      if (!index.has(key) && index.size >= this.max) await this.evictFirstToExpire(index)
      await this.meta.put(key, value)
      index.set(key, value.until)
      if (value.until < this.earliest) this.earliest = value.until
    })
  }

  private async evictFirstToExpire (index: Map<string, number>): Promise<void> {
    let victim: string | undefined
    let first = Infinity
    for (const [key, until] of index) if (until < first) { first = until; victim = key }
    if (victim === undefined) return
    await this.meta.delete(victim)
    index.delete(victim)
    this.earliest = Math.min(Infinity, ...index.values())
  }

  /** The price kept for these terms, if any (an expired record not yet dropped still answers: expire() drops it). */
  async get (terms: OfferTerms): Promise<bigint | undefined> {
    const o = await this.meta.get(offerKeyOf(terms)) as OfferedPrice | undefined
    return o === undefined ? undefined : BigInt(o.pricePerGas)
  }

  /** Drops the records whose demand's trades can no longer run; reads nothing until the earliest `until` has passed. */
  async expire (): Promise<void> {
    const now = this.now()
    if (this.index !== undefined && this.earliest >= now) return
    await this.serial(async () => {
      const index = await this.loaded()
      if (this.earliest >= now) return
      for (const [key, until] of index) {
        if (until >= now) continue
        await this.meta.delete(key)
        index.delete(key)
      }
      this.earliest = Math.min(Infinity, ...index.values())
    })
  }
}
