// The seller (docs/protocol.md steps 1, 3, 6, 7, 9): lists datasets in CISC and the DHT (Register),
// answers matching demands with offers (Offers), and for every trade DTMC opens with one of its
// offers checks the terms (Checks: its dataset's policy, policy.ts), attests each chosen enclave and
// streams its encrypted data to it (Data delivery); then withdraws its pay (Consensus and payment).
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import {
  datasetCommitment, encryptChunk, privacySecretOf, signChunk, signDataKeyDelivery, signReceiptAck, wrapDataKey, verifyQuote, DEFAULT_CHUNK_SIZE, MAX_DATASET_SIZE,
  type PrivacyTerms
} from '../../../enclave/index.ts'
import { TAG_PATTERN, datasetKey, signOffer, type Demand } from '../../../p2p/index.ts'
import type { DataStatus, Offer } from '../../../p2p/index.ts'
import { hexlify, randomBytes } from 'ethers'
import { logger } from '../../log.ts'
import { appError } from '../../rpc/errors.ts'
import type { RpcServer } from '../../rpc/server.ts'
import type { TradeRecord } from '../../trades.ts'
import { deriveSecret } from '../../local-secrets.ts'
import { ChainRevertError, TradeTermsChangedError, networkDomainOf, receiptDigestOf, recoverDigest, ResultStatus, type TradeView } from '../../../contracts/index.ts'
import { advanceActive, chainTime, collectPayment, nodePeerId, scanNewTrades, tradeFromBlock, tradeParties, type Role, type RoleContext, type TradeNodeEvent } from '../context.ts'
import * as r from '../../rpc/results.ts'
import {
  CODE_MODES, MAX_ALLOWED_BUYERS, MAX_ALLOWED_CODE_HASHES, CLAMP_BOUND_PATTERN, MAX_CLAMPS, MAX_CLAMP_COLUMN, MAX_CSV_DECIMALS, MAX_EXPIRES_AT, MAX_TRADES_LIMIT, chainPolicyOf, fullPriceOf, judgePolicy,
  parsePolicy, type DatasetPolicy
} from './policy.ts'
import { ADDRESS_PATTERN, BYTES32_PATTERN, weiDigits } from '../../rpc/params.ts'

export { MAX_ALLOWED_CODE_HASHES, MAX_ALLOWED_BUYERS, type DatasetPolicy } from './policy.ts'

/** The JSON Schema of seller_addDataset's policy: what rpc_discover serves and the server checks (parsePolicy then fills the defaults). */
const POLICY_SCHEMA = {
  type: 'object',
  properties: {
    // Deny by default: a policy names its mode (policy.ts parsePolicy says what goes with which).
    mode: { type: 'string', enum: [...CODE_MODES] },
    allowedCodeHashes: { type: 'array', maxItems: MAX_ALLOWED_CODE_HASHES, items: { type: 'string', pattern: BYTES32_PATTERN } },
    allowedBuyers: { type: 'array', maxItems: MAX_ALLOWED_BUYERS, items: { type: 'string', pattern: ADDRESS_PATTERN } },
    maxTrades: { type: 'integer', minimum: 1, maximum: MAX_TRADES_LIMIT },
    expiresAt: { type: 'integer', minimum: 1, maximum: MAX_EXPIRES_AT },
    // Both land in uint64 fields of CISC: at most 19 digits always fits.
    outputCap: { type: ['string', 'integer'], pattern: `^[0-9]{1,${weiDigits(64)}}$`, minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    minOutputPrice: { type: 'string', pattern: `^[0-9]{1,${weiDigits(64)}}$` },
    // Mode private only: micro-epsilon (1 epsilon = 1,000,000) in a uint64 of CISC, and the column bounds.
    epsilonBudget: { type: ['string', 'integer'], pattern: `^[0-9]{1,${weiDigits(64)}}$`, minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    clamps: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_CLAMPS,
      items: {
        type: 'object',
        properties: {
          column: { type: 'integer', minimum: 0, maximum: MAX_CLAMP_COLUMN },
          decimals: { type: 'integer', minimum: 0, maximum: MAX_CSV_DECIMALS },
          // integers at the column's decimals (12.5 at decimals 1 is 125), within ±MAX_CLAMP_ABS (parseClamps checks the value)
          lower: { type: ['string', 'integer'], pattern: CLAMP_BOUND_PATTERN },
          upper: { type: ['string', 'integer'], pattern: CLAMP_BOUND_PATTERN }
        },
        required: ['column', 'decimals', 'lower', 'upper'],
        additionalProperties: false
      }
    }
  },
  required: ['mode'],
  additionalProperties: false
}

const log = logger('sdte:seller')

export interface DatasetRecord {
  datasetId: string
  tag: string
  path: string
  size: number
  commitment: string
  unitPrice: string
  policy: DatasetPolicy
  addedAt: string
  /** seller_delistDataset was called (CISC refuses new trades on it, and so do we). */
  delisted?: boolean
  /** Trades on the dataset we accepted at our checks (a statistic: policy.maxTrades bounds CISC's count, read there). */
  trades?: number
  /**
   * The commitment is salted (commitmentOf). Absent in records listed before: their commitment is the plain SHA-256,
   * which an enclave of this build cannot check (it hashes with the salt), so such a dataset is neither offered nor
   * traded (UNSALTED_COMMITMENT): its seller delists it and lists it again.
   */
  saltedCommitment?: boolean
}

/**
 * How many (demand, dataset) pairs the seller remembers having said at info why it made no offer (sayNoOffer), each
 * until its demand expires: a buyer soliciting its demand again, or more pairs at once, get the reason at debug.
 * About 100 bytes each.
 */
export const NO_OFFER_PAIRS_LOGGED = 256

/** Why a dataset listed before commitments were salted is not offered nor traded. */
const UNSALTED_COMMITMENT = 'the dataset was listed with an unsalted commitment (before this version): delist it and list it again'

export interface SellerTradeData {
  offerId: string
  sellerIndex: number
  fee: string
  commitment: string
  codeHash: string
  deadline: number
  /**
   * Per chosen node: its enclave, how much of our data it has (updated as the delivery goes), and the delivery
   * receipt its enclave signed once our whole dataset matched our commitment (what DTMC.claimDelivery pays on).
   */
  nodes: Array<TradeNodeEvent & { peerId?: string, delivered: boolean, sentBytes: number, receipt?: string }>
  size?: number
  payment?: string
  /** Micro-epsilon the trade declared (its TradePrivate event); absent: none. */
  epsilon?: string
  /** The block DTMC opened the trade in (where its log queries start). */
  openedBlock?: number
  /**
   * The trade's terms as we checked them (DtmcClient.termsDigestOf): a trade its buyer opened again with other terms
   * after a reorganisation gets no delivery and no claim of ours under those (it ends `failed`): our policy judged
   * the first ones. Absent in records older than this check.
   */
  terms?: string
}

const DATA_KEY_PURPOSE = 'seller-data-key'
const COMMITMENT_SALT_PURPOSE = 'seller-commitment-salt'
/**
 * The seller's privacy master secret (32 bytes), derived from its account key like its data keys: nothing more to
 * store or back up, the same after a restart (a retried delivery to a trade's enclave carries the same secret, so the
 * enclaves agree on the noise), and never on chain or on the wire in the clear. Each trade's secret is
 * privacySecretOf(master, tradeId) (enclave/privacy-terms.ts): another one for every trade.
 */
const PRIVACY_MASTER_PURPOSE = 'seller-privacy-master'

/**
 * Meta key prefix (+ tradeId) of the trades that reserved something on our datasets in CISC (a private dataset's
 * epsilon, a place in a dataset's maxTrades) which we may have to free (`releaseReservations`): one entry per such
 * trade, from our checks until the trade needs nothing more from us. (The name predates the maxTrades reservation;
 * kept so entries stored before it are still found.)
 */
const RESERVATION_RELEASE_PREFIX = 'seller:budgetRelease:'

/** The start of the reason of a record our checks refused (the problem follows). */
const REFUSED_REASON_PREFIX = 'checks: '
/** The reasons a refused trade's record ends with when judged again, found opened again without our offer, or gone. */
const REOPENED_WITHOUT_US = 'the trade was opened again (after a reorganisation) without our offer: nothing of ours in it'
const REOPENED_THEN_GONE = 'the trade was opened again (after a reorganisation) with other terms, then left the chain again: nothing of ours in it'

/** What `releaseReservations` needs of a trade that reserved something on one of our datasets. */
interface ReservationRelease {
  sellerIndex: number
  /** The trade's deadline (unix seconds): nothing to do before it, unless `refused`. */
  deadline: number
  /** Our checks refused the trade: we decline it at once (`DTMC.declineTrade`) instead of waiting for its deadline. */
  refused?: boolean
  /**
   * The terms digest (DtmcClient.termsDigestOf) judged: a reorganisation can open the same trade id again with other
   * terms, so a refusal holds for these terms only. The decline is held to them, and a trade whose terms changed is
   * judged again (test/attacks/declined-reopened-trade.test.ts). Absent in entries older than this: the trade
   * record's `terms` stands for it.
   */
  terms?: string
}

/** Whether trades reserve something on the dataset in CISC (a private dataset's epsilon, a place in its maxTrades): read it there. */
function reservesOnChain (ds: DatasetRecord): boolean {
  return ds.policy.mode === 'private' || ds.policy.maxTrades !== 0
}

export class SellerRole implements Role {
  readonly name = 'seller' as const
  private readonly ctx: RoleContext
  private readonly delivering = new Set<string>()
  /** The (demand, dataset) pairs whose refusal was logged at info (sayNoOffer), with their demand's expiry (unix s). */
  private readonly noOfferLogged = new Map<string, number>()

  constructor (ctx: RoleContext) {
    this.ctx = ctx
  }

  private get address (): string { return this.ctx.keys.ethAddress.toLowerCase() }

  async start (): Promise<void> {
    await this.register()
    for (const d of await this.datasets()) {
      if (d.saltedCommitment !== true && d.delisted !== true) log.warn(UNSALTED_COMMITMENT, { datasetId: d.datasetId, path: d.path })
      void this.announce(d.tag)
    }
  }

  async stop (): Promise<void> {}

  /** Step 1, Register: our peer id in CISC, so buyers can tie our offers to this connection. */
  private async register (): Promise<void> {
    const record = await this.ctx.chain.cisc.seller(this.ctx.keys.ethAddress)
    if (record?.peerId === this.ctx.p2p.peerId) return
    await this.ctx.chain.cisc.registerSeller(this.ctx.p2p.peerId)
    log.info('registered as seller in CISC', { peerId: this.ctx.p2p.peerId })
  }

  private async announce (tag: string): Promise<void> {
    try {
      await this.ctx.p2p.provide(datasetKey(tag))
    } catch (err) {
      log.warn('DHT announcement failed', { tag, err: err as Error })
    }
  }

  async datasets (): Promise<DatasetRecord[]> {
    return (await this.ctx.store.datasets.list()).map(([, v]) => v as DatasetRecord)
  }

  /**
   * A dataset's commitment and its secret salt (enclave/crypto.ts datasetCommitment). The salt is derived from our
   * account key and the data's own SHA-256, so it needs no storage (nothing the API or a backup could show), is the
   * same at every delivery, and differs between datasets; one more hash of the file at listing and at delivery.
   */
  private commitmentOf (plain: Uint8Array): { commitment: string, commitmentSalt: Uint8Array } {
    const commitmentSalt = deriveSecret(this.ctx.keys.ethWallet.privateKey, networkDomainOf(this.ctx.network), COMMITMENT_SALT_PURPOSE,
      createHash('sha256').update(plain).digest('hex'))
    return { commitment: datasetCommitment(plain, commitmentSalt), commitmentSalt }
  }

  /** seller_addDataset: reads the file, commits to it, lists it in CISC and announces its tag. */
  async addDataset (p: { path: string, tag: string, unitPrice: bigint, policy?: Record<string, unknown> }): Promise<DatasetRecord> {
    if (!TAG_PATTERN.test(p.tag)) throw appError('Rejected', 'tag must be 1..64 of letters, digits, . _ -', { param: 'tag' })
    const path = resolve(p.path)
    let size: number
    try {
      const st = statSync(path)
      if (!st.isFile()) throw new Error('not a regular file')
      size = st.size
    } catch (err) {
      throw appError('Rejected', `cannot read dataset ${path}: ${(err as Error).message}`, { param: 'path' })
    }
    if (size === 0 || size > MAX_DATASET_SIZE) throw appError('Rejected', `dataset must be 1..${MAX_DATASET_SIZE} bytes, is ${size}`, { param: 'path' })
    const policy = parsePolicy(p.policy, p.unitPrice)
    if (policy.expiresAt !== 0 && policy.expiresAt <= await chainTime(this.ctx.chain)) {
      throw appError('Rejected', 'policy.expiresAt must be in the future (chain time)', { param: 'policy' })
    }
    if (policy.mode === 'none') log.warn('dataset listed without a policy: no analysis may use it', { path })
    const { commitment } = this.commitmentOf(readFileSync(path))
    const { offerId } = await this.ctx.chain.cisc.listDataset({ tag: p.tag, size: BigInt(size), unitPrice: p.unitPrice, commitment, policy: chainPolicyOf(policy) })
    const record: DatasetRecord = {
      datasetId: offerId.toString(), tag: p.tag, path, size, commitment, unitPrice: p.unitPrice.toString(), policy, addedAt: new Date().toISOString(), delisted: false, trades: 0,
      saltedCommitment: true
    }
    await this.ctx.store.datasets.put(record.datasetId, record)
    log.info('dataset listed', { datasetId: record.datasetId, tag: p.tag, size })
    void this.announce(p.tag)
    return record
  }

  /**
   * seller_delistDataset: CISC refuses new trades on the dataset from the next block, and we refuse every
   * trade on it we have not checked yet (trades we already accepted go on).
   */
  async delistDataset (datasetId: string): Promise<DatasetRecord> {
    const ds = await this.ctx.store.datasets.get(datasetId) as DatasetRecord | undefined
    if (ds === undefined) throw appError('NotFound', `no dataset ${datasetId}`, { param: 'datasetId' })
    if (ds.delisted === true) throw appError('Rejected', `dataset ${datasetId} is already delisted`, { param: 'datasetId' })
    // Refuse locally first: a trade checked while the transaction is pending is refused too.
    const record = { ...ds, delisted: true }
    await this.ctx.store.datasets.put(datasetId, record)
    await this.ctx.chain.cisc.delistDataset(BigInt(datasetId))
    log.info('dataset delisted', { datasetId })
    return record
  }

  /** Which of our datasets a demand can use: its tag, on our chain, at our unit price, within the dataset's policy. */
  private async matching (d: Demand): Promise<DatasetRecord[]> {
    if (d.chainId !== this.ctx.network.chainId) return []
    const now = await chainTime(this.ctx.chain)
    const out: DatasetRecord[] = []
    for (const ds of await this.datasets()) {
      if (ds.tag !== d.tag) continue
      if (BigInt(ds.unitPrice) > d.sellerPrice) { this.sayNoOffer(d, ds, 'the demand\'s seller price is below the dataset\'s unit price'); continue }
      // Before any read of CISC: a dataset listed with an unsalted commitment is never offered.
      if (ds.saltedCommitment !== true) { this.sayNoOffer(d, ds, UNSALTED_COMMITMENT); continue }
      // DTMC would pay min(unitPrice × size, sellerCap) for the data.
      const fullPrice = fullPriceOf(ds)
      // A private dataset's budget and a maximum of trades are counted on chain (CISC reserves them for every trade
      // and gives back those of trades that never got the data): read what is used there.
      const onChain = reservesOnChain(ds) ? await this.ctx.chain.cisc.offer(BigInt(ds.datasetId)) : undefined
      const why = judgePolicy({ ...ds, epsilonSpent: onChain?.epsilonSpent, trades: onChain?.trades }, {
        codeHash: d.codeHash, outputCap: d.outputCap, outputPrice: d.outputPrice, dataFee: d.sellerCap < fullPrice ? d.sellerCap : fullPrice, buyer: d.buyer, now, epsilon: d.epsilon
      })
      if (why !== null) this.sayNoOffer(d, ds, why)
      else out.push(ds)
    }
    return out
  }

  /**
   * Why a demand of one of our datasets' tags gets no offer, at info the first time for a (demand, dataset) pair: the
   * operator's side of a buyer's "not enough offers". Every demand was posted to BDBC (the gossip validator, and the
   * same checks for a solicitation), but a buyer may solicit its demands again and again: the pairs said are
   * remembered until their demand expires, at most NO_OFFER_PAIRS_LOGGED of them; a repeat, or a pair past that
   * bound, goes to debug (so no round of solicitations makes more info lines than the bound while they last).
   */
  private sayNoOffer (d: Demand, ds: DatasetRecord, why: string): void {
    const pair = `${d.demandId}/${ds.datasetId}`
    const now = Date.now() / 1000
    if (this.noOfferLogged.size >= NO_OFFER_PAIRS_LOGGED) for (const [k, expiresAt] of this.noOfferLogged) if (expiresAt < now) this.noOfferLogged.delete(k)
    if (this.noOfferLogged.has(pair) || this.noOfferLogged.size >= NO_OFFER_PAIRS_LOGGED) {
      log.debug('no offer', { demandId: d.demandId, datasetId: ds.datasetId, why })
      return
    }
    this.noOfferLogged.set(pair, d.expiresAt)
    log.info('no offer for a demand of this dataset\'s tag', { demandId: d.demandId, datasetId: ds.datasetId, tag: ds.tag, why })
  }

  /** Signed by our account for this demand's network and our peer id (p2p/offer/signature.ts). */
  private offerFor (d: Demand, ds: DatasetRecord): Offer {
    return signOffer({ type: 'offer', demandId: d.demandId, kind: 'seller', account: this.address, offerId: BigInt(ds.datasetId) },
      { chainId: d.chainId, dtmc: d.dtmc, peerId: this.ctx.p2p.peerId }, this.ctx.keys.ethWallet.privateKey)
  }

  /** Step 3, Offers: answer a matching demand on /sdte/offer/1. */
  async onDemand (d: Demand): Promise<void> {
    for (const ds of await this.matching(d)) {
      try {
        const accepted = await this.ctx.offer.sendOffer(d.buyerPeer, this.offerFor(d, ds))
        log.info('offered dataset', { demandId: d.demandId, datasetId: ds.datasetId, accepted })
      } catch (err) {
        log.debug('offer not delivered', { demandId: d.demandId, err: err as Error })
      }
    }
  }

  async onSolicit (_remotePeer: string, d: Demand): Promise<Offer | null> {
    const [ds] = await this.matching(d)
    return ds === undefined ? null : this.offerFor(d, ds)
  }

  async tick (): Promise<void> {
    await this.discoverTrades()
    await advanceActive<SellerTradeData>(this.ctx, 'seller', async t => await this.advance(t), log)
    await this.releaseReservations()
  }

  /** Step 6, Checks: trades DTMC opened with our offers; each is checked before anything is delivered. */
  private async discoverTrades (): Promise<void> {
    await scanNewTrades(this.ctx, 'seller', async (tradeId, openedBlock) => { await this.checkTrade(tradeId, openedBlock) },
      async (tradeId, openedBlock) => {
        // Caught here: a failure must not hold up the scan (its scanned block would not move on: no new trade taken).
        await this.judgeAgain(tradeId, { ifReopened: true, openedBlock }).catch((err: unknown) => {
          log.warn('a refused trade seen opened again could not be judged again yet', { tradeId, err: err as Error })
        })
      })
  }

  /**
   * Records the trade, `failed` with the reason when it is not ours or its terms fail the dataset's policy. With
   * `previous`, the record of a trade we refused that was opened again with other terms (a reorganisation): judged
   * again, on its terms as they are now. Returns what it found: `gone` (no trade under that id, or its terms unread)
   * and `not ours` (none of its sellers is us) record nothing.
   */
  private async checkTrade (tradeId: string, openedBlock: number | undefined, previous?: TradeRecord<SellerTradeData>): Promise<'recorded' | 'gone' | 'not ours'> {
    // Read together: the trade was found by its TradeSeller event, so both are there (one wait, not two).
    // The chain's time too: the policy is judged at it.
    const [view, { sellers, nodes }, checkedAt] = await Promise.all([this.ctx.chain.dtmc.trade(tradeId), tradeParties(this.ctx.chain, tradeId, tradeFromBlock(this.ctx, openedBlock)), chainTime(this.ctx.chain)])
    if (view === null) return 'gone'
    const mine = sellers.find(s => s.account === this.address)
    if (mine === undefined) return 'not ours'
    const terms = await this.ctx.chain.dtmc.termsDigestOf(tradeId)
    if (terms === null) return 'gone' // gone again since the view: the next scan sees it if it comes back
    const ds = await this.ctx.store.datasets.get(mine.offerId.toString()) as DatasetRecord | undefined
    const data: SellerTradeData = {
      offerId: mine.offerId.toString(),
      sellerIndex: mine.index,
      fee: mine.fee.toString(),
      commitment: mine.commitment,
      codeHash: view.codeHash.toLowerCase(),
      deadline: view.deadline,
      nodes: nodes.map(n => ({ ...n, delivered: false, sentBytes: 0 })),
      ...(view.epsilon !== 0n && { epsilon: view.epsilon.toString() }),
      ...(openedBlock !== undefined && { openedBlock }),
      terms
    }
    // CISC charged and counted this trade already: the budget and count the other trades left is what it is judged against.
    const onChain = ds !== undefined && reservesOnChain(ds) ? await this.ctx.chain.cisc.offer(mine.offerId) : undefined
    const others = onChain === undefined ? {} : { epsilonSpent: onChain.epsilonSpent - view.epsilon, trades: onChain.maxTrades !== 0 ? onChain.trades - 1 : 0 }
    const problem = ds === undefined ? 'the offer is not one of our datasets'
      : ds.commitment !== mine.commitment ? 'the trade commits to other data'
        : ds.saltedCommitment !== true ? UNSALTED_COMMITMENT
        // Judged now, at our check: a trade that opened before a delisting or expiry but reaches us after is refused.
        : judgePolicy({ ...ds, ...others }, {
          codeHash: data.codeHash, outputCap: view.outputCap, outputPrice: view.outputPrice, dataFee: mine.fee, buyer: view.buyer, now: checkedAt, epsilon: view.epsilon
        }) ??
          (view.state !== 'open' ? `the trade is ${view.state}` : null)
    const note = `offer ${data.offerId}, fee ${data.fee} wei, ${nodes.length} nodes`
    let t: TradeRecord<SellerTradeData>
    if (previous === undefined) t = await this.ctx.trades.create('seller', tradeId, 'escrowed', data, note)
    else {
      // The refusal's reason was about other terms: the record starts again from these (its timeline kept).
      const { reason: _refusedTerms, ...rest } = previous
      t = await this.ctx.trades.transition({ ...rest, data }, 'escrowed', { note: `judged again, opened again with other terms: ${note}` })
    }
    // CISC reserved the trade's epsilon on our private dataset or its place in our maxTrades, refused by us or not: see
    // that it comes back if our data never goes in.
    const releaseKey = RESERVATION_RELEASE_PREFIX + tradeId
    if (ds !== undefined && ((ds.policy.mode === 'private' && view.epsilon !== 0n) || ds.policy.maxTrades !== 0)) {
      await this.ctx.store.meta.put(releaseKey, {
        sellerIndex: mine.index, deadline: view.deadline, terms, ...(problem !== null && { refused: true })
      } satisfies ReservationRelease)
    } else if (previous !== undefined) await this.ctx.store.meta.delete(releaseKey)
    if (problem !== null) {
      log.warn('trade refused', { tradeId, problem })
      await this.ctx.trades.transition(t, 'failed', { reason: `${REFUSED_REASON_PREFIX}${problem}` })
    } else if (ds !== undefined) {
      // Read again: a delisting since our read must not be written over.
      const now = await this.ctx.store.datasets.get(ds.datasetId) as DatasetRecord
      await this.ctx.store.datasets.put(ds.datasetId, { ...now, trades: (now.trades ?? 0) + 1 })
    }
    return 'recorded'
  }

  private async advance (t: TradeRecord<SellerTradeData>): Promise<void> {
    try {
      await this.step(t)
    } catch (err) {
      if (!(err instanceof TradeTermsChangedError)) throw err
      await this.refuseOtherTerms(await this.ctx.trades.get<SellerTradeData>('seller', t.tradeId) ?? t)
    }
  }

  /** The trade was opened again with other terms than the ones we checked: nothing more of ours goes to it. */
  private async refuseOtherTerms (t: TradeRecord<SellerTradeData>): Promise<void> {
    log.warn('the trade was opened again with other terms than the ones we checked: refused', { tradeId: t.tradeId })
    await this.ctx.trades.transition(t, 'failed', { reason: 'the trade was opened again (after a reorganisation) with other terms than the ones we checked', note: 'refused: opened again with other terms' })
  }

  private async step (t: TradeRecord<SellerTradeData>): Promise<void> {
    // The chain's time is read with the trade (one wait, not two) where the step needs it: before a delivery starts.
    const [view, deliveryTime] = await Promise.all([
      this.ctx.chain.dtmc.trade(t.tradeId), t.state === 'escrowed' || t.state === 'delivering' ? chainTime(this.ctx.chain) : undefined
    ])
    if (view === null) {
      // A reorganisation took the trade's opening away; its buyer opens it again (same id). One that never comes back ends here.
      if ((deliveryTime ?? await chainTime(this.ctx.chain)) > t.data.deadline) await this.ctx.trades.transition(t, 'failed', { reason: 'the trade left the chain in a reorganisation and was not opened again by its deadline' })
      return
    }
    await this.claimDeliveries(t, view)
    if (await collectPayment(this.ctx, t, view)) return
    if (t.state === 'escrowed' || t.state === 'delivering') {
      if ((deliveryTime ?? await chainTime(this.ctx.chain)) > t.data.deadline) return // too late to deliver; wait for the refund
      if (!this.delivering.has(t.tradeId)) {
        this.delivering.add(t.tradeId)
        this.deliverData(t).finally(() => this.delivering.delete(t.tradeId)).catch((err: unknown) => {
          log.warn('delivery failed (will retry)', { tradeId: t.tradeId, err: err as Error })
        })
      }
    }
  }

  /**
   * A refunded trade, or one settled on "input invalid", holds our data fee for claims: we claim it with a
   * receipt an enclave gave us (after "input invalid", one from a node of the final group). Before withdrawing.
   */
  private async claimDeliveries (t: TradeRecord<SellerTradeData>, view: TradeView): Promise<void> {
    if (view.state === 'open' || (view.state === 'settled' && view.final?.status !== ResultStatus.InputInvalid)) return
    const claims = await this.ctx.chain.dtmc.claimsOf(t.tradeId)
    if (!claims.held.includes(t.data.sellerIndex)) return
    const { sellers } = await tradeParties(this.ctx.chain, t.tradeId, tradeFromBlock(this.ctx, t.data.openedBlock))
    const commitments = sellers.map(s => s.commitment)
    for (const n of t.data.nodes) {
      if (n.receipt === undefined || (view.state === 'settled' && view.final?.members.includes(n.index) !== true)) continue
      try {
        await this.ctx.chain.dtmc.claimDelivery(t.tradeId, t.data.sellerIndex, n.index, commitments, n.receipt, t.data.terms)
        log.info('data fee claimed with a delivery receipt', { tradeId: t.tradeId, node: n.index })
        return
      } catch (err) {
        if (!(err instanceof ChainRevertError)) throw err
        log.warn('delivery claim refused', { tradeId: t.tradeId, node: n.index, error: err.errorName })
      }
    }
  }

  /**
   * What a trade reserved on our dataset in CISC (a private dataset's epsilon, a place in its maxTrades) stays reserved
   * until DTMC's releaseUnclaimed gives it back: after the trade ended, for a seller that claimed no delivery within
   * the claim window (so its data never entered an enclave; contracts.md "Private datasets", "Maximum of trades").
   * The buyer gets its held fee back with that call, but a buyer that wanted the budget or the trades used up has no
   * reason to make it, nor to end its trade: past the deadline we end the trade (`finalize`) and, after the claim
   * window, release it ourselves. Never for a trade we delivered to (we hold a receipt): an enclave may have computed
   * on our data, the epsilon and the trade are used, and `advance` claims our fee for it.
   */
  private async releaseReservations (): Promise<void> {
    const pending = await this.ctx.store.meta.list({ prefix: RESERVATION_RELEASE_PREFIX })
    if (pending.length === 0) return
    const now = await chainTime(this.ctx.chain)
    for (const [key, value] of pending) {
      const { sellerIndex, deadline, refused = false, terms } = value as ReservationRelease
      if (now <= deadline && !refused) continue
      const tradeId = key.slice(RESERVATION_RELEASE_PREFIX.length)
      try {
        try {
          if (await this.releaseReservation(tradeId, sellerIndex, deadline, now, refused, terms)) await this.ctx.store.meta.delete(key)
        } catch (err) {
          if (!(err instanceof TradeTermsChangedError)) throw err
          // Opened again (a reorganisation) with other terms than the ones we refused: not declined on that refusal.
          await this.judgeAgain(tradeId)
        }
      } catch (err) {
        // A revert: the buyer or a node ended or released it first (the next tick sees that); else the chain is away.
        if (err instanceof ChainRevertError) log.debug('reservation release reverted (will look again)', { tradeId, error: err.errorName })
        else log.warn('reservation release failed (will retry)', { tradeId, err: err as Error })
      }
    }
  }

  /**
   * One step towards giving a trade's reservation back; true once nothing is left to do for it. A trade our checks
   * `refused` (we never deliver to it) is declined at once (`DTMC.declineTrade`: open with no node committed, or our
   * fee held within the claim window): else a stranger's trades at a fee of nothing would hold our epsilon or our
   * places in maxTrades for the deadline and the claim window, up to 10 days (test/attacks/zero-deposit-reservation-lock.test.ts).
   * Only trades that reserved something on our datasets: declining costs us gas, waiting for any other costs us nothing.
   */
  private async releaseReservation (tradeId: string, sellerIndex: number, deadline: number, now: number, refused: boolean, terms: string | undefined): Promise<boolean> {
    const t = await this.ctx.trades.get<SellerTradeData>('seller', tradeId)
    if (t?.data.nodes.some(n => n.receipt !== undefined) === true) return true
    // The terms we refused: the decline is held to them (it throws TradeTermsChangedError on a trade opened again with others).
    const refusedTerms = terms ?? t?.data.terms
    const view = await this.ctx.chain.dtmc.trade(tradeId)
    // Gone in a reorganisation and not opened again by its deadline: nothing is reserved.
    if (view === null) return now > deadline
    if (view.state === 'open') {
      if (refused && view.nCommits === 0) return await this.decline(tradeId, sellerIndex, refusedTerms)
      if (now <= view.deadline) return false
      await this.ctx.chain.dtmc.finalize(tradeId)
      return false
    }
    if (view.state === 'settled' && view.final?.status !== ResultStatus.InputInvalid) return true
    const claims = await this.ctx.chain.dtmc.claimsOf(tradeId)
    if (!claims.held.includes(sellerIndex)) return true
    if (refused && now <= claims.until) return await this.decline(tradeId, sellerIndex, refusedTerms)
    if (now <= claims.until) return false
    await this.ctx.chain.dtmc.releaseUnclaimed(tradeId)
    log.info('reservation given back (epsilon, place in maxTrades): the trade ended without our data', { tradeId })
    return true
  }

  /** Declines a trade we refused: the buyer is refunded (our fee), our reservation comes back now. */
  private async decline (tradeId: string, sellerIndex: number, refused: string | undefined): Promise<boolean> {
    await this.ctx.chain.dtmc.declineTrade(tradeId, sellerIndex, refused)
    log.info('refused trade declined: its reservation (epsilon, place in maxTrades) given back at once', { tradeId })
    return true
  }

  /**
   * A trade we refused was opened again with other terms (a reorganisation, same trade id): our refusal was of the
   * others, so the trade is judged again, as if new (`checkTrade`): declined only if these fail our checks too, else
   * our part goes on. Only refused trades: one we accepted and that changed its terms is refused (`refuseOtherTerms`).
   * Opened again without our offer, or gone again: it reserves nothing of ours, so its release entry goes (else every
   * tick would try the decline again, up to its deadline and claim window) and the record ends saying why.
   */
  private async judgeAgain (tradeId: string, o: { ifReopened?: boolean, openedBlock?: number } = {}): Promise<void> {
    await this.ctx.trades.locked('seller', tradeId, async () => {
      const t = await this.ctx.trades.get<SellerTradeData>('seller', tradeId)
      if (t === undefined || t.state !== 'failed') return
      if (o.ifReopened === true && !await this.reopenedSinceRefusal(t)) return
      log.warn('a trade we refused was opened again with other terms: judged again', { tradeId })
      // From the block the scan saw it opened in, when it did; else from the deploy block (the opening may be in another block than the first one's).
      const found = await this.checkTrade(tradeId, o.openedBlock, t)
      if (found === 'recorded') return
      await this.ctx.store.meta.delete(RESERVATION_RELEASE_PREFIX + tradeId)
      const reason = found === 'not ours' ? REOPENED_WITHOUT_US : REOPENED_THEN_GONE
      await this.ctx.trades.transition(t, 'failed', { reason, note: `judged again: ${found === 'not ours' ? 'opened again without us' : 'gone again'}` })
    })
  }

  /**
   * Whether a failed record of ours is a refusal that a trade now on the chain naming us (the scan saw it opened,
   * again after a reorganisation) has outlived, so that it must be judged again, whatever the dataset reserves
   * (one that reserves nothing has no release entry, whose decline would otherwise find the change): a refusal by
   * our checks whose terms digest is not the chain's now; or a refusal whose trade left the chain or came back
   * without our offer (its release entry went then) and now names us again. Not a trade we accepted whose terms
   * changed (`refuseOtherTerms`): that one stays refused.
   */
  private async reopenedSinceRefusal (t: TradeRecord<SellerTradeData>): Promise<boolean> {
    const reason = t.reason ?? ''
    if (reason === REOPENED_WITHOUT_US || reason === REOPENED_THEN_GONE) return true
    if (!reason.startsWith(REFUSED_REASON_PREFIX)) return false
    const terms = await this.ctx.chain.dtmc.termsDigestOf(t.tradeId)
    return terms !== null && terms !== t.data.terms
  }

  /** Step 7, Data delivery, to every node of the trade not served yet: attest its enclave ourselves, wrap the key to it, stream the data. */
  private async deliverData (t0: TradeRecord<SellerTradeData>): Promise<void> {
    // Read from the chain at each start of a delivery (not per tick): our data goes only under the terms we checked.
    if (t0.data.terms !== undefined) {
      const now = await this.ctx.chain.dtmc.termsDigestOf(t0.tradeId)
      if (now === null) return // gone (a reorganisation): advance waits for it to come back
      if (now !== t0.data.terms) {
        await this.ctx.trades.locked('seller', t0.tradeId, async () => {
          await this.refuseOtherTerms(await this.ctx.trades.get<SellerTradeData>('seller', t0.tradeId) ?? t0)
        })
        return
      }
    }
    let t = t0.state === 'delivering' ? t0 : await this.ctx.trades.transition(t0, 'delivering')
    const ds = await this.ctx.store.datasets.get(t.data.offerId) as DatasetRecord
    const plain = readFileSync(ds.path)
    const { commitment, commitmentSalt } = this.commitmentOf(plain)
    if (commitment !== ds.commitment) {
      await this.ctx.trades.transition(t, 'failed', { reason: `dataset file ${ds.path} changed since it was listed` })
      return
    }
    const key = deriveSecret(this.ctx.keys.ethWallet.privateKey, networkDomainOf(this.ctx.network), DATA_KEY_PURPOSE, `${t.tradeId}/${t.data.offerId}`)
    const chunkSize = DEFAULT_CHUNK_SIZE
    const chunks = Math.max(1, Math.ceil(plain.length / chunkSize))
    if (t.data.size !== plain.length) t = await this.ctx.trades.update(t, { size: plain.length })
    const domain = networkDomainOf(this.ctx.network)
    const account = this.ctx.keys.ethWallet.privateKey
    // Each chunk goes out signed with our account key: the enclave tells bytes we sent from bytes changed on the way.
    const chunkAt = (taskId: string, wrapped: Uint8Array) => (i: number): Uint8Array =>
      signChunk(account, domain, taskId, t.data.sellerIndex, wrapped, encryptChunk(key, ds.commitment, i, i === chunks - 1, plain.subarray(i * chunkSize, (i + 1) * chunkSize)))
    const privacy = this.privacyTermsOf(ds, t.tradeId, t.data.epsilon)
    const nodes = [...t.data.nodes]
    // Progress and completion per node go to the record (trade_get shows them), one write at a time.
    const saveNodes = async (): Promise<void> => {
      await this.ctx.trades.locked('seller', t.tradeId, async () => { t = await this.ctx.trades.update(t, { nodes: [...nodes] }) })
    }
    // The enclave's receipt must be over our delivery to this node's attested enclave, naming our account; it is
    // stored before we acknowledge it (the enclave may run once we have).
    const receiptOf = (n: SellerTradeData['nodes'][number], i: number, peerId: string) => async (status: DataStatus): Promise<string> => {
      const receipt = status.receipt
      const digest = receiptDigestOf(domain, t.tradeId, n.taskId, t.data.sellerIndex, ds.commitment, this.address)
      if (receipt === undefined || recoverDigest(digest, receipt).toLowerCase() !== n.enclave) throw new Error(`node ${n.index} sent no valid delivery receipt`)
      nodes[i] = { ...nodes[i], peerId, receipt, sentBytes: plain.length }
      await saveNodes()
      return receipt
    }
    const ackOf = (taskId: string): string =>
      signReceiptAck(account, domain, { tradeId: t.tradeId, taskId, sellerIndex: t.data.sellerIndex, commitment: ds.commitment, seller: this.address })
    await Promise.all(nodes.map(async (n, i) => {
      if (n.delivered) return
      const record = { peerId: await nodePeerId(this.ctx, n.payee) }
      const takeReceipt = receiptOf(n, i, record.peerId)
      // Attest the enclave ourselves (our own nonce): it must be the key and task DTMC holds.
      const nonce = hexlify(randomBytes(32))
      const reply = await this.ctx.attest.attest(record.peerId, { tradeId: t.tradeId, codeHash: t.data.codeHash, nonce })
      verifyQuote(reply.quote, {
        domain: networkDomainOf(this.ctx.network),
        expectedRoot: this.ctx.network.attestationRoot,
        acceptedMeasurements: this.ctx.network.measurements,
        tradeId: t.tradeId,
        codeHash: t.data.codeHash,
        nonce,
        enclaveAddress: n.enclave,
        taskId: n.taskId,
        operator: n.payee,
        enclavePublicKey: reply.enclavePublicKey
      })
      const wrapped = wrapDataKey(reply.enclavePublicKey, n.taskId, t.data.sellerIndex, {
        key, commitment: ds.commitment, commitmentSalt, size: plain.length, outputCap: BigInt(ds.policy.outputCap), ...(privacy !== undefined && { privacy })
      })
      const open = {
        tradeId: t.tradeId,
        taskId: n.taskId,
        sellerIndex: t.data.sellerIndex,
        commitment: ds.commitment,
        wrappedKey: hexlify(wrapped),
        sellerSignature: signDataKeyDelivery(account, domain, n.taskId, t.data.sellerIndex, ds.commitment, wrapped),
        size: plain.length,
        chunks
      }
      // sentBytes is this delivery's running total: the counter takes its increments.
      let counted = 0
      let receipt: string | undefined
      const status = await this.ctx.data.deliver(record.peerId, open, chunkAt(n.taskId, wrapped), {
        onProgress: (p) => {
          this.ctx.metrics.bytesDelivered.inc({ role: 'seller' }, Math.max(0, p.sentBytes - counted))
          counted = Math.max(counted, p.sentBytes)
          log.info('delivering', { tradeId: t.tradeId, node: n.index, chunks: `${p.sentChunks}/${p.totalChunks}`, bytes: p.sentBytes })
          nodes[i] = { ...nodes[i], peerId: record.peerId, sentBytes: Math.min(plain.length, p.sentChunks * chunkSize) }
          void saveNodes().catch(() => {})
        },
        // The receipt, then our acknowledgement on the same stream (docs/protocol.md "Delivery receipts").
        acknowledge: async (st) => { receipt = await takeReceipt(st); return ackOf(n.taskId) }
      })
      // Complete and already acknowledged (a delivery resumed after our restart): the receipt still checked and kept.
      if (status.complete && receipt === undefined) receipt = await takeReceipt(status)
      nodes[i] = { ...nodes[i], peerId: record.peerId, receipt, delivered: status.complete && status.acked === true, sentBytes: plain.length }
      await saveNodes()
    }))
    if (nodes.every(n => n.delivered)) {
      await this.ctx.trades.transition(t, 'executing', { note: `data delivered to ${nodes.length} enclaves (${plain.length} bytes each)` })
    }
  }

  /**
   * A private dataset's terms for one trade's enclaves (docs/enclave.md "Private mode"): the trade's secret, its
   * epsilon as DTMC holds it (read from the chain at our checks, never taken from the buyer), and the policy's clamps
   * (the ones in CISC's DatasetPrivate event, same units). With them the enclave runs the analysis only in the private
   * mode (no raw record in its call data). skipHeader is false: a header line is a record whose fields are not
   * numbers, which the private mechanisms drop like any such record. Another mode: none (an ordinary delivery).
   */
  private privacyTermsOf (ds: DatasetRecord, tradeId: string, epsilon: string | undefined): PrivacyTerms | undefined {
    if (ds.policy.mode !== 'private') return undefined
    // checkTrade refused a trade without one: a record that got here without it must not deliver records unguarded.
    if (epsilon === undefined) throw new Error(`trade ${tradeId} on private dataset ${ds.datasetId} declares no epsilon`)
    const master = deriveSecret(this.ctx.keys.ethWallet.privateKey, networkDomainOf(this.ctx.network), PRIVACY_MASTER_PURPOSE, '')
    return {
      secret: privacySecretOf(master, tradeId),
      epsilon: BigInt(epsilon),
      skipHeader: false,
      columns: (ds.policy.clamps ?? []).map(c => ({ column: c.column, decimals: c.decimals, lo: BigInt(c.lower), hi: BigInt(c.upper) }))
    }
  }

  registerMethods (rpc: RpcServer): void {
    rpc.register({
      name: 'seller_addDataset',
      summary: 'Lists a dataset file (CSV-like records) in CISC and announces its tag in the DHT.',
      params: [
        { name: 'path', type: 'path', description: 'the dataset file on this machine' },
        { name: 'tag', type: 'string', maxLength: 64, pattern: TAG_PATTERN.source, description: 'dataset tag buyers ask for: 1..64 of letters, digits, . _ -' },
        { name: 'unitPrice', type: 'wei', bits: 128, description: 'wei per byte' },
        { name: 'policy', type: 'object', schema: POLICY_SCHEMA, required: false, description: '{ mode: "allowlist" | "any" | "private", allowedCodeHashes?: bytes32[] (mode allowlist: 1..16), outputCap?: bytes (default 65536), minOutputPrice?: wei per output byte (default unitPrice), allowedBuyers?: address[] (1..16; default any buyer), maxTrades?: integer (default no maximum), expiresAt?: unix seconds (default never), epsilonBudget: micro-epsilon (mode private; 1 epsilon = 1000000), clamps: [{ column, decimals, lower, upper }] (mode private: 1..16 column bounds, integers at the column\'s decimals) }; without a policy no analysis may use the dataset' }
      ],
      result: r.object({ datasetId: r.bytes32(), size: r.integer('bytes'), commitment: r.bytes32('the data commitment buyers\' enclaves check') }),
      errors: ['Rejected', 'ChainReverted'],
      handler: async (p) => {
        const r = await this.addDataset(p)
        return { datasetId: r.datasetId, size: r.size, commitment: r.commitment }
      }
    })
    rpc.register({
      name: 'seller_datasets',
      readOnly: true,
      summary: "The seller's datasets.",
      params: [],
      result: r.array(r.object({
        datasetId: r.bytes32(),
        tag: r.string(),
        path: r.string(),
        size: r.integer('bytes'),
        commitment: r.bytes32(),
        unitPrice: r.decimal('wei per byte'),
        policy: r.object({
          mode: { enum: ['none', 'allowlist', 'any', 'private'], description: 'none: no analysis allowed (listed without a policy); private: any analysis under the privacy budget' },
          allowedCodeHashes: r.array(r.bytes32()),
          outputCap: r.decimal('bytes'),
          minOutputPrice: r.decimal('wei per output byte'),
          allowedBuyers: r.array(r.address(), 'empty: any buyer'),
          maxTrades: r.integer('0: no maximum'),
          expiresAt: r.integer('unix seconds; 0: never'),
          epsilonBudget: r.decimal('micro-epsilon (mode private)'),
          clamps: r.array(r.object({ column: r.integer('CSV column'), decimals: r.integer('digits of fraction'), lower: r.string('integer at decimals'), upper: r.string('integer at decimals') }), 'mode private')
        }, { optional: ['epsilonBudget', 'clamps'] }),
        addedAt: r.string('ISO 8601'),
        delisted: r.boolean(),
        trades: r.integer('trades accepted on the dataset'),
        saltedCommitment: r.boolean('the commitment is salted; absent: listed before, neither offered nor traded (delist it and list it again)')
      }, { optional: ['delisted', 'trades', 'saltedCommitment'] })),
      errors: [],
      handler: async () => await this.datasets()
    })
    rpc.register({
      name: 'seller_delistDataset',
      summary: 'Delists a dataset: CISC refuses new trades on it at once, and so does this seller; trades already accepted go on.',
      params: [{ name: 'datasetId', type: 'string', maxLength: 20, description: 'the datasetId seller_addDataset returned' }],
      result: r.ok(),
      errors: ['NotFound', 'Rejected', 'ChainReverted'],
      handler: async (p) => {
        await this.delistDataset(p.datasetId)
        return { ok: true }
      }
    })
  }
}
