// The buyer (PROTOCOL.md steps 2, 3, 4, 5, 9, 10, 11): posts a signed demand (gossip + BDBC),
// collects offers (pushed, and solicited from peers found in the DHT), filters them by their CISC
// records, attests the candidate enclaves and keeps the n fastest valid ones, sends them its code
// encrypted to their task keys, escrows on DTMC, finalizes, fetches and checks the result, rates.
// Its bytecode and the result are kept only encrypted (local key); its result key is derived.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { getBytes, hexlify, keccak256, randomBytes } from 'ethers'
import { verifyQuote, encryptCodeForEnclave, signCodeDelivery, decryptResult, QuoteError, DEFAULT_GAS_CAP, MAX_GAS_CAP, MAX_CODE_SIZE } from '../../enclave/index.ts'
import { networkDomainOf, tradeIdOf, type Quote } from '../../contracts/formats.ts'
import { ChainRevertError, depositOf, tagHashOf } from '../../contracts/client.ts'
import { NoTopicPeersError } from '../../p2p/errors.ts'
import { DEMAND_TOPIC, TAG_PATTERN, MAX_DEMAND_NODES, MAX_DEMAND_SELLERS, decodeDemand, demandHashOf, encodeDemand, signDemand, type Demand } from '../../p2p/demand/index.ts'
import type { Offer } from '../../p2p/offer/index.ts'
import { logger } from '../log.ts'
import { appError } from '../rpc/errors.ts'
import type { RpcServer } from '../rpc/server.ts'
import type { TradeRecord } from '../trades.ts'
import { deriveKeyPair, deriveSecret, openLocal, sealLocal } from '../local-secrets.ts'
import { chainTime, creditedFor, tradeParties, withdrawCredit, type Role, type RoleContext } from './context.ts'

const log = logger('sdte:buyer')

export const MAX_OFFERS_PER_TRADE = 64
export const MAX_SOLICITED_PEERS = 32
/** Stop collecting offers this long before the demand expires, so the choice is made in time. */
export const EXPIRY_MARGIN_SECONDS = 5
const RESULT_KEY_PURPOSE = 'buyer-result-key'
const LOCAL_KEY_PURPOSE = 'buyer-local-store'

interface SellerCandidate { peerId: string, account: string, offerId: string }
interface NodeCandidate { peerId: string, account: string, measurement: string }
interface ChosenNode { peerId: string, payee: string, quote: Quote, enclavePublicKey: string, attestMs: number }

export interface BuyerTradeData {
  /** The signed demand as gossiped (JSON text: amounts are decimal strings there). */
  demand: string
  demandHash: string
  salt: string
  codeHash: string
  /** The bytecode, AES-GCM under the buyer's local key (base64). */
  sealedCode: string
  gasCap: string
  published: boolean
  posted: boolean
  sellerOffers: SellerCandidate[]
  nodeOffers: NodeCandidate[]
  chosenSellers?: SellerCandidate[]
  chosenNodes?: ChosenNode[]
  rejected?: Array<{ peerId: string, why: string }>
  deposit?: string
  deadline?: number
  finalResultHash?: string
  finalStatus?: number
  resultSize?: string
  refund?: string
  payments?: Record<string, string>
  ratings?: Record<string, number>
  phaseMs?: Record<string, number>
}

export interface PostDemandParams {
  tag: string
  code?: string
  codePath?: string
  nodes: number
  sellers?: number
  sellerPrice: bigint
  sellerCap: bigint
  nodePrice: bigint
  nodeCap: bigint
  outputPrice: bigint
  outputCap: bigint
  deadlineSeconds: number
}

/** Bytecode from hex, or from a file: a compiled artifact (deployedBytecode) or plain hex. */
export function loadCode (p: { code?: string, codePath?: string }): Uint8Array {
  let hex: string
  if (p.code !== undefined) {
    hex = p.code
  } else if (p.codePath !== undefined) {
    let text: string
    try {
      text = readFileSync(resolve(p.codePath), 'utf8').trim()
    } catch (err) {
      throw appError('Rejected', `cannot read ${p.codePath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { param: 'codePath' })
    }
    if (text.startsWith('{')) {
      let artifact: { deployedBytecode?: unknown }
      try { artifact = JSON.parse(text) } catch { throw appError('Rejected', `${p.codePath} is not JSON`, { param: 'codePath' }) }
      if (typeof artifact.deployedBytecode !== 'string') throw appError('Rejected', `${p.codePath} has no deployedBytecode`, { param: 'codePath' })
      hex = artifact.deployedBytecode
    } else {
      hex = text
    }
  } else {
    throw appError('Rejected', 'give code (hex bytecode) or codePath (a compiled artifact)', { param: 'code' })
  }
  if (!/^0x([0-9a-fA-F]{2})+$/.test(hex)) throw appError('Rejected', 'code must be 0x-prefixed hex bytecode', { param: 'code' })
  const code = getBytes(hex)
  if (code.length > MAX_CODE_SIZE) throw appError('Rejected', `code of ${code.length} bytes over the enclave's ${MAX_CODE_SIZE}`, { param: 'code' })
  return code
}

/** The demand of a trade record, decoded and checked again. */
function demandOf (t: TradeRecord<BuyerTradeData>): Demand {
  return decodeDemand(new TextEncoder().encode(t.data.demand)).demand
}

export class BuyerRole implements Role {
  readonly name = 'buyer' as const
  private readonly ctx: RoleContext
  private readonly busy = new Set<string>()
  /** When a trade that lacked offers is looked at again. */
  private readonly retryChoiceAt = new Map<string, number>()
  /** Nonces of every quote this buyer accepted: a replayed quote is refused. */
  private readonly seenNonces = new Set<string>()

  constructor (ctx: RoleContext) {
    this.ctx = ctx
  }

  private get localKey (): Uint8Array { return deriveSecret(this.ctx.keys.ethWallet.privateKey, networkDomainOf(this.ctx.network), LOCAL_KEY_PURPOSE, 'v1') }
  private resultKey (tradeId: string): { privateKey: Uint8Array, publicKey: Uint8Array } {
    return deriveKeyPair(this.ctx.keys.ethWallet.privateKey, networkDomainOf(this.ctx.network), RESULT_KEY_PURPOSE, tradeId)
  }

  async start (): Promise<void> {}
  async stop (): Promise<void> {}

  /** buyer_postDemand: step 2. Persists the trade, then gossips the demand and records its hash in BDBC. */
  async postDemand (p: PostDemandParams): Promise<{ demandId: string, tradeId: string, codeHash: string, deposit: string }> {
    if (!TAG_PATTERN.test(p.tag)) throw appError('Rejected', 'tag must be 1..64 of letters, digits, . _ -', { param: 'tag' })
    const code = loadCode(p)
    const codeHash = keccak256(code).toLowerCase()
    const sellers = p.sellers ?? 1
    const now = await chainTime(this.ctx.chain)
    const offerSeconds = Math.ceil(this.ctx.options.trade.offerWindowMs / 1000)
    const demand = signDemand({
      chainId: this.ctx.network.chainId,
      dtmc: this.ctx.network.contracts.DTMC.toLowerCase(),
      buyerPeer: this.ctx.p2p.peerId,
      tag: p.tag,
      codeHash,
      nodes: p.nodes,
      sellers,
      sellerPrice: p.sellerPrice,
      sellerCap: p.sellerCap,
      nodePrice: p.nodePrice,
      nodeCap: p.nodeCap,
      outputPrice: p.outputPrice,
      outputCap: p.outputCap,
      expiresAt: Math.max(now, Math.floor(Date.now() / 1000)) + Math.max(60, 4 * offerSeconds),
      tradeSeconds: p.deadlineSeconds
    }, { address: this.ctx.keys.ethAddress, privateKey: this.ctx.keys.ethWallet.privateKey })
    const { signature: _sig, ...unsigned } = demand
    const demandHash = demandHashOf(unsigned)
    const salt = hexlify(randomBytes(32)).toLowerCase()
    const tradeId = tradeIdOf(this.ctx.keys.ethAddress, salt)
    // Every node is paid at most nodeCap: gas beyond nodeCap / nodePrice is never paid for, so never run.
    const gasCap = p.nodePrice === 0n ? DEFAULT_GAS_CAP : [MAX_GAS_CAP, p.nodeCap / p.nodePrice].reduce((a, b) => a < b ? a : b)
    const sealedCode = Buffer.from(sealLocal(this.localKey, code, `code/${tradeId}`)).toString('base64')
    let t = await this.ctx.trades.create<BuyerTradeData>('buyer', tradeId, 'demanded', {
      demand: new TextDecoder().decode(encodeDemand(demand)), demandHash, salt, codeHash, sealedCode, gasCap: gasCap.toString(), published: false, posted: false, sellerOffers: [], nodeOffers: []
    }, `demand ${demand.demandId} for tag ${p.tag}, ${p.nodes} nodes`)
    t = await this.publish(t)
    return { demandId: demand.demandId, tradeId, codeHash, deposit: depositOf({ sellers, nodes: p.nodes, sellerCap: p.sellerCap, nodeCap: p.nodeCap, outputPrice: p.outputPrice, outputCap: p.outputCap }).toString() }
  }

  private async publish (t: TradeRecord<BuyerTradeData>): Promise<TradeRecord<BuyerTradeData>> {
    if (!t.data.published) {
      try {
        const { recipients } = await this.ctx.p2p.publish(DEMAND_TOPIC, new TextEncoder().encode(t.data.demand))
        log.info('demand gossiped', { demandId: demandOf(t).demandId, recipients })
      } catch (err) {
        // Nobody subscribed yet: the DHT solicitation below still reaches sellers and nodes.
        if (!(err instanceof NoTopicPeersError)) throw err
        log.warn('no peer on the demand topic yet; relying on the DHT', { demandId: demandOf(t).demandId })
      }
      t = await this.ctx.trades.update(t, { published: true })
    }
    if (!t.data.posted) {
      await this.ctx.chain.bdbc.postDemand(t.data.demandHash)
      t = await this.ctx.trades.update(t, { posted: true })
    }
    return t
  }

  private async tradeOfDemand (demandId: string): Promise<TradeRecord<BuyerTradeData> | undefined> {
    return (await this.ctx.trades.active<BuyerTradeData>('buyer')).find(t => demandOf(t).demandId === demandId)
  }

  /** Step 3: an offer for one of our demands, while we still collect them. */
  async onOffer (remotePeer: string, offer: Offer): Promise<boolean> {
    const found = await this.tradeOfDemand(offer.demandId)
    if (found === undefined) return false
    return await this.ctx.trades.locked('buyer', found.tradeId, async () => await this.recordOffer(remotePeer, offer, found.tradeId))
  }

  private async recordOffer (remotePeer: string, offer: Offer, tradeId: string): Promise<boolean> {
    const t = await this.ctx.trades.require<BuyerTradeData>('buyer', tradeId)
    if (t.state !== 'demanded') return false
    if (t.data.sellerOffers.length + t.data.nodeOffers.length >= MAX_OFFERS_PER_TRADE) return false
    if (offer.kind === 'seller' && offer.offerId !== undefined) {
      if (t.data.sellerOffers.some(o => o.offerId === offer.offerId!.toString())) return true
      await this.ctx.trades.update(t, { sellerOffers: [...t.data.sellerOffers, { peerId: remotePeer, account: offer.account, offerId: offer.offerId.toString() }] })
    } else if (offer.kind === 'node' && offer.measurement !== undefined) {
      if (t.data.nodeOffers.some(o => o.peerId === remotePeer)) return true
      await this.ctx.trades.update(t, { nodeOffers: [...t.data.nodeOffers, { peerId: remotePeer, account: offer.account, measurement: offer.measurement }] })
    } else {
      return false
    }
    log.info('offer received', { demandId: offer.demandId, kind: offer.kind, from: remotePeer })
    return true
  }

  async tick (): Promise<void> {
    for (const t of await this.ctx.trades.active<BuyerTradeData>('buyer')) {
      if (this.busy.has(t.tradeId)) continue
      this.busy.add(t.tradeId)
      this.advanceLocked(t).catch((err: unknown) => {
        log.warn('trade step failed (will retry)', { tradeId: t.tradeId, state: t.state, err: err as Error })
      }).finally(() => this.busy.delete(t.tradeId))
    }
  }

  private async advance (t: TradeRecord<BuyerTradeData>): Promise<void> {
    switch (t.state) {
      case 'demanded':
        if (!t.data.published || !t.data.posted) t = await this.publish(t)
        if (Date.now() - Date.parse(t.createdAt) < this.ctx.options.trade.offerWindowMs) return
        if (Date.now() < (this.retryChoiceAt.get(t.tradeId) ?? 0)) return
        await this.choose(t)
        return
      case 'attesting':
        await this.attestAndEscrow(t)
        return
      default:
        await this.watch(t)
    }
  }

  private async advanceLocked (t: TradeRecord<BuyerTradeData>): Promise<void> {
    await this.ctx.trades.locked('buyer', t.tradeId, async () => {
      const fresh = await this.ctx.trades.require<BuyerTradeData>('buyer', t.tradeId)
      if (fresh.state === t.state) await this.advance(fresh)
    })
  }

  /** Step 3, end of the offer window: DHT solicitation, then the CISC filter. */
  private async choose (t0: TradeRecord<BuyerTradeData>): Promise<void> {
    let t = t0
    const d = demandOf(t)
    const started = Date.now()
    // Peers that provide the tag or an accepted enclave, but have not offered: ask them.
    const keys = [`sdte:dataset:${d.tag}`, ...this.ctx.network.measurements.map(m => `sdte:node:${m}`)]
    const offered = new Set([...t.data.sellerOffers, ...t.data.nodeOffers].map(o => o.peerId))
    const found = (await Promise.all(keys.map(async k => await this.ctx.p2p.findProviders(k, { limit: MAX_SOLICITED_PEERS, timeoutMs: 3000 }).catch(() => []))))
      .flat().filter(p => !offered.has(p.peerId) && p.peerId !== this.ctx.p2p.peerId)
    const unique = [...new Map(found.map(p => [p.peerId, p])).values()].slice(0, MAX_SOLICITED_PEERS)
    const solicited = await Promise.all(unique.map(async p => {
      try {
        const offer = await this.ctx.offer.solicit(p.peerId, d, { signal: AbortSignal.timeout(5000) })
        return offer.demandId === d.demandId ? { peerId: p.peerId, offer } : null
      } catch (err) {
        log.debug('solicitation unanswered', { peer: p.peerId, err: err as Error })
        return null
      }
    }))
    // We hold this trade's lock (advanceLocked): record one by one, not through onOffer.
    for (const s of solicited) if (s !== null) await this.recordOffer(s.peerId, s.offer, t.tradeId)
    t = await this.ctx.trades.require<BuyerTradeData>('buyer', t.tradeId)

    const rejected: Array<{ peerId: string, why: string }> = []
    const sellers: Array<SellerCandidate & { score: number, price: bigint }> = []
    for (const o of t.data.sellerOffers) {
      const why = await this.checkSeller(o, d)
      if (typeof why === 'string') rejected.push({ peerId: o.peerId, why })
      else sellers.push({ ...o, ...why })
    }
    // Best rated first, then cheapest.
    sellers.sort((a, b) => b.score - a.score || (a.price < b.price ? -1 : a.price > b.price ? 1 : 0))
    const nodes: NodeCandidate[] = []
    for (const o of t.data.nodeOffers) {
      const why = await this.checkNode(o, d)
      if (why === null) nodes.push(o)
      else rejected.push({ peerId: o.peerId, why })
    }
    const chosenSellers = sellers.slice(0, d.sellers).map(({ peerId, account, offerId }) => ({ peerId, account, offerId }))
    const phaseMs = { discovery: Date.now() - Date.parse(t.createdAt) }
    if (chosenSellers.length === 0 || nodes.length < d.nodes) {
      // Not enough yet: keep collecting (and soliciting) until the demand expires.
      if (Date.now() / 1000 < d.expiresAt - EXPIRY_MARGIN_SECONDS) {
        this.retryChoiceAt.set(t.tradeId, Date.now() + this.ctx.options.trade.offerWindowMs)
        log.info('not enough offers yet; still collecting', { tradeId: t.tradeId, sellers: chosenSellers.length, nodes: nodes.length, needed: d.nodes })
        return
      }
      await this.ctx.trades.transition(t, 'failed', {
        data: { rejected, phaseMs },
        reason: `not enough offers: ${chosenSellers.length} usable sellers, ${nodes.length} usable nodes of ${d.nodes} needed`
      })
      return
    }
    log.info('candidates chosen', { tradeId: t.tradeId, sellers: chosenSellers.length, nodes: nodes.length, ms: Date.now() - started })
    await this.ctx.trades.transition(t, 'attesting', {
      data: { chosenSellers, nodeOffers: nodes, rejected, phaseMs },
      note: `${chosenSellers.length} sellers, ${nodes.length} candidate nodes`
    })
  }

  /** A seller offer passes when CISC backs it: the offer, its terms, and the peer id of its seller. */
  private async checkSeller (o: SellerCandidate, d: Demand): Promise<string | { score: number, price: bigint }> {
    try {
      const offer = await this.ctx.chain.cisc.offer(BigInt(o.offerId))
      if (!offer.active) return 'offer inactive'
      if (offer.tag !== d.tag) return 'offer is for another tag'
      if (offer.seller.toLowerCase() !== o.account) return 'offer belongs to another seller'
      if (offer.unitPrice > d.sellerPrice) return 'unit price above the demand'
      if (offer.outputCap < d.outputCap) return 'output cap of the offer below the demand'
      if (!await this.ctx.chain.cisc.isCodeAllowed(BigInt(o.offerId), d.codeHash)) return 'code not allowed by the seller'
      const seller = await this.ctx.chain.cisc.seller(o.account)
      if (seller === null || seller.peerId !== o.peerId) return 'peer id is not the one registered for the seller'
      return { score: seller.ratingCount === 0 ? 3 : seller.ratingSum / seller.ratingCount, price: offer.unitPrice }
    } catch (err) {
      return `CISC lookup failed: ${(err as Error).message}`
    }
  }

  private async checkNode (o: NodeCandidate, d: Demand): Promise<string | null> {
    const node = await this.ctx.chain.cisc.node(o.account)
    if (node === null) return 'not a registered node'
    if (node.peerId !== o.peerId) return 'peer id is not the one registered for the node'
    if (!this.ctx.network.measurements.includes(node.measurement.toLowerCase())) return 'enclave measurement not accepted by the network'
    if (node.pricePerGas > d.nodePrice) return 'price per gas above the demand'
    return null
  }

  /** Steps 4 and 5: attest every candidate, keep the n fastest valid, deliver the code, escrow. */
  private async attestAndEscrow (t0: TradeRecord<BuyerTradeData>): Promise<void> {
    let t = t0
    const d = demandOf(t)
    // A restart after openTrade was sent: the chain has the trade; take the chosen parties from it.
    if (await this.ctx.chain.dtmc.trade(t.tradeId) !== null) {
      await this.ctx.trades.transition(t, 'escrowed', { note: 'escrow found on chain after a restart' })
      return
    }
    const started = Date.now()
    const attested = await Promise.all(t.data.nodeOffers.map(async (o): Promise<ChosenNode | { peerId: string, why: string }> => {
      const nonce = hexlify(randomBytes(32)).toLowerCase()
      const t1 = performance.now()
      try {
        const reply = await this.ctx.attest.attest(o.peerId, { tradeId: t.tradeId, codeHash: d.codeHash, nonce }, { signal: AbortSignal.timeout(this.ctx.options.trade.attestTimeoutMs) })
        const quote = verifyQuote(reply.quote, {
          domain: networkDomainOf(this.ctx.network),
          expectedRoot: this.ctx.network.attestationRoot,
          acceptedMeasurements: this.ctx.network.measurements,
          tradeId: t.tradeId,
          codeHash: d.codeHash,
          nonce,
          seenNonces: this.seenNonces
        })
        return { peerId: o.peerId, payee: o.account, quote, enclavePublicKey: reply.enclavePublicKey, attestMs: Math.round(performance.now() - t1) }
      } catch (err) {
        return { peerId: o.peerId, why: err instanceof QuoteError ? `${err.name}: ${err.message}` : `attestation failed: ${(err as Error).message}` }
      }
    }))
    const valid = attested.filter((a): a is ChosenNode => 'quote' in a).sort((a, b) => a.attestMs - b.attestMs)
    const refused = attested.filter((a): a is { peerId: string, why: string } => 'why' in a)
    for (const r of refused) log.warn('enclave refused', { tradeId: t.tradeId, peer: r.peerId, why: r.why })
    if (valid.length < d.nodes) {
      await this.ctx.trades.transition(t, 'failed', {
        data: { rejected: [...(t.data.rejected ?? []), ...refused] },
        reason: `only ${valid.length} of ${d.nodes} enclaves attested`
      })
      return
    }
    const chosen = valid.slice(0, d.nodes)
    const code = openLocal(this.localKey, new Uint8Array(Buffer.from(t.data.sealedCode, 'base64')), `code/${t.tradeId}`)
    const resultPublicKey = this.resultKey(t.tradeId).publicKey
    await Promise.all(chosen.map(async n => {
      const envelope = encryptCodeForEnclave(n.enclavePublicKey, n.quote.taskId, { code, resultPublicKey, gasCap: BigInt(t.data.gasCap), outputCap: d.outputCap })
      const signature = signCodeDelivery(this.ctx.keys.ethWallet.privateKey, networkDomainOf(this.ctx.network), n.quote.taskId, envelope)
      await this.ctx.attest.sendCode(n.peerId, { taskId: n.quote.taskId, envelope: hexlify(envelope), salt: t.data.salt, signature })
    }))
    const attestMs = Date.now() - started
    t = await this.ctx.trades.update(t, { chosenNodes: chosen, rejected: [...(t.data.rejected ?? []), ...refused], phaseMs: { ...t.data.phaseMs, attestation: attestMs } })

    const escrowStarted = Date.now()
    const deadline = (await chainTime(this.ctx.chain)) + d.tradeSeconds
    const { deposit } = await this.ctx.chain.dtmc.openTrade({
      salt: t.data.salt,
      tagHash: tagHashOf(d.tag),
      codeHash: d.codeHash,
      deadline,
      sellerCap: d.sellerCap,
      nodePrice: d.nodePrice,
      nodeCap: d.nodeCap,
      outputPrice: d.outputPrice,
      outputCap: d.outputCap,
      offerIds: (t.data.chosenSellers ?? []).map(s => BigInt(s.offerId)),
      nodes: chosen.map(n => ({ payee: n.payee, quote: n.quote }))
    })
    log.info('escrowed', { tradeId: t.tradeId, deposit, nodes: chosen.length })
    await this.ctx.trades.transition(t, 'escrowed', {
      data: { deposit: deposit.toString(), deadline, phaseMs: { ...t.data.phaseMs, escrow: Date.now() - escrowStarted } },
      note: `deposit ${deposit} wei; nodes chosen in ${chosen.map(n => `${n.attestMs} ms`).join(', ')}`
    })
  }

  /** Steps 9 and 10: follow the trade on DTMC, finalize when due, then fetch and check the result. */
  private async watch (t: TradeRecord<BuyerTradeData>): Promise<void> {
    const view = await this.ctx.chain.dtmc.trade(t.tradeId)
    if (view === null) return
    if (view.state === 'open') {
      if (view.nResults > 0 && t.state === 'escrowed') {
        t = await this.ctx.trades.transition(t, 'executing', { data: { phaseMs: { ...t.data.phaseMs, execution: Date.now() - Date.parse(t.updatedAt) } }, note: 'first result submitted' })
      }
      if (view.nResults === view.nodes.length && t.state !== 'submitted') {
        t = await this.ctx.trades.transition(t, 'submitted', { note: `all ${view.nResults} results in` })
      }
      // DTMC settles by itself on the submission after a majority (or the last one). We finalize when no
      // majority can come any more, or after the deadline; with a majority but a silent node we leave the
      // others until the deadline (bounded by MAX_TRADE_DURATION) so that a slow honest node is still paid.
      const lead = Math.max(0, ...view.groups.map(g => g.count))
      const noMajority = (lead + view.nodes.length - view.nResults) * 2 <= view.nodes.length
      if (view.nResults === view.nodes.length || noMajority || await chainTime(this.ctx.chain) > view.deadline) {
        try {
          await this.ctx.chain.dtmc.finalize(t.tradeId)
        } catch (err) {
          if (!(err instanceof ChainRevertError)) throw err
        }
      }
      return
    }
    if (t.state !== 'finalized') {
      const refund = await creditedFor(this.ctx.chain, this.ctx.keys.ethAddress, t.tradeId, this.ctx.network.deployBlock)
      await withdrawCredit(this.ctx)
      const payments = await this.payments(t.tradeId)
      if (view.state === 'refunded') {
        await this.ctx.trades.transition(t, 'refunded', { data: { refund: refund.toString(), payments }, reason: `no majority by the deadline (${view.nResults} results)` })
        return
      }
      t = await this.ctx.trades.transition(t, 'finalized', {
        data: { refund: refund.toString(), payments, finalResultHash: view.final!.resultHash.toLowerCase(), finalStatus: view.final!.status, resultSize: view.final!.resultSize.toString() },
        note: `majority of ${view.final!.count}/${view.nodes.length}: status ${view.final!.status}, ${view.final!.resultSize} bytes; refund ${refund} wei`
      })
    }
    if (view.final!.status !== 0) {
      await this.ctx.trades.transition(t, 'failed', { reason: `the analysis ended with status ${view.final!.status} (no output delivered)` })
      return
    }
    const fetchStarted = Date.now()
    const { nodes } = await tradeParties(this.ctx.chain, t.tradeId, this.ctx.network.deployBlock)
    for (const i of view.final!.members) {
      const node = nodes.find(n => n.index === i)
      if (node === undefined) continue
      try {
        // The node's peer id as CISC has it (our record may predate a restart in the middle of escrow).
        const peerId = t.data.chosenNodes?.find(c => c.quote.taskId === node.taskId)?.peerId ?? (await this.ctx.chain.cisc.node(node.payee))?.peerId
        if (peerId === undefined) throw new Error(`node ${node.payee} is not registered in CISC`)
        const envelope = await this.ctx.result.fetch(peerId, { tradeId: t.tradeId, taskId: node.taskId })
        decryptResult(envelope, this.resultKey(t.tradeId).privateKey, { taskId: node.taskId, resultHash: view.final!.resultHash })
        await this.ctx.store.results.put(t.tradeId, sealLocal(this.localKey, envelope, `result/${t.tradeId}/${node.taskId}`))
        await this.ctx.trades.transition(t, 'delivered', {
          data: { phaseMs: { ...t.data.phaseMs, result: Date.now() - fetchStarted } },
          note: `result fetched from node ${i} and checked against the final hash`
        })
        return
      } catch (err) {
        log.warn('result fetch failed; trying another node of the majority', { tradeId: t.tradeId, node: i, err: err as Error })
      }
    }
  }

  /** Wei credited per account by DTMC for this trade. */
  private async payments (tradeId: string): Promise<Record<string, string>> {
    const c = this.ctx.chain.dtmc.contract
    const logs = await c.queryFilter(c.filters.Credited(null, tradeId), this.ctx.network.deployBlock)
    const out: Record<string, bigint> = {}
    for (const l of logs) {
      const a = this.ctx.chain.dtmc.iface.parseLog(l)!.args
      const k = String(a.account).toLowerCase()
      out[k] = (out[k] ?? 0n) + (a.amount as bigint)
    }
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.toString()]))
  }

  /** buyer_result: the plaintext result, decrypted here, checked against DTMC's final hash. */
  async result (tradeId: string): Promise<{ result: string, resultHash: string, verified: boolean }> {
    const t = await this.ctx.trades.get<BuyerTradeData>('buyer', tradeId)
    if (t === undefined) throw appError('NotFound', `no buyer trade ${tradeId}`)
    const sealed = await this.ctx.store.results.get(t.tradeId)
    if (sealed === undefined) throw appError('Unavailable', `no result yet (trade is ${t.state})`)
    const view = await this.ctx.chain.dtmc.trade(t.tradeId)
    const { nodes } = await tradeParties(this.ctx.chain, t.tradeId, this.ctx.network.deployBlock)
    for (const n of nodes) {
      let envelope: Uint8Array
      try { envelope = openLocal(this.localKey, sealed, `result/${t.tradeId}/${n.taskId}`) } catch { continue }
      const finalHash = view?.final?.resultHash.toLowerCase() ?? t.data.finalResultHash ?? '0x'
      const plain = decryptResult(envelope, this.resultKey(t.tradeId).privateKey, { taskId: n.taskId, resultHash: finalHash })
      const resultHash = keccak256(plain).toLowerCase()
      return { result: hexlify(plain), resultHash, verified: resultHash === finalHash }
    }
    throw appError('Unavailable', 'the stored result does not open with this daemon\'s key')
  }

  /** buyer_rate: step 11. */
  async rate (tradeId: string, seller: string, score: number, comment: string): Promise<{ txHash: string }> {
    const t = await this.ctx.trades.get<BuyerTradeData>('buyer', tradeId)
    if (t === undefined) throw appError('NotFound', `no buyer trade ${tradeId}`)
    const { sellers } = await tradeParties(this.ctx.chain, t.tradeId, this.ctx.network.deployBlock)
    const s = sellers.find(x => x.account === seller.toLowerCase())
    if (s === undefined) throw appError('Rejected', `${seller} is not a seller of this trade`, { param: 'seller' })
    let receipt
    try {
      receipt = await this.ctx.chain.dtmc.rate(t.tradeId, s.index, score, comment)
    } catch (err) {
      if (err instanceof ChainRevertError) throw appError('ChainReverted', `DTMC refused the rating: ${err.errorName}`, { error: err.errorName })
      throw err
    }
    const ratings = { ...t.data.ratings, [s.account]: score }
    await this.ctx.trades.transition(t, Object.keys(ratings).length === sellers.length ? 'rated' : t.state, { data: { ratings }, note: `rated seller ${s.index}: ${score}` })
    return { txHash: receipt.hash }
  }

  registerMethods (rpc: RpcServer): void {
    rpc.register({
      name: 'buyer_postDemand',
      summary: 'Posts a demand: gossip on /sdte/bdbc/1 and its hash in BDBC; the trade then runs on its own (see trade_get).',
      params: [
        { name: 'tag', type: 'string', maxLength: 64, description: 'dataset tag' },
        { name: 'code', type: 'hex', required: false, description: 'runtime bytecode of the analysis contract' },
        { name: 'codePath', type: 'path', required: false, description: 'or a compiled artifact (JSON with deployedBytecode) or a hex file' },
        { name: 'nodes', type: 'integer', min: 1, max: MAX_DEMAND_NODES, description: 'how many enclaves run the task' },
        { name: 'sellers', type: 'integer', min: 1, max: MAX_DEMAND_SELLERS, required: false, description: 'how many sellers (default 1)' },
        { name: 'sellerPrice', type: 'wei', description: 'most wei per byte of data' },
        { name: 'sellerCap', type: 'wei', description: 'most wei paid to one seller for its data' },
        { name: 'nodePrice', type: 'wei', description: 'wei per unit of enclave gas' },
        { name: 'nodeCap', type: 'wei', description: 'most wei paid to one node' },
        { name: 'outputPrice', type: 'wei', description: 'wei per output byte, paid to the sellers' },
        { name: 'outputCap', type: 'wei', description: 'most output bytes' },
        { name: 'deadlineSeconds', type: 'integer', min: 60, max: 7 * 24 * 3600, description: 'from escrow to the deadline' }
      ],
      result: '{ demandId, tradeId, codeHash, deposit }',
      handler: async (p: PostDemandParams) => {
        if ((p.code === undefined) === (p.codePath === undefined)) throw appError('Rejected', 'give exactly one of code and codePath', { param: 'code' })
        return await this.postDemand(p)
      }
    })
    rpc.register({
      name: 'buyer_result',
      summary: 'The decrypted result of a delivered trade, checked against the final hash on DTMC.',
      params: [{ name: 'tradeId', type: 'bytes32', description: 'the trade' }],
      result: '{ result (hex), resultHash, verified }',
      handler: async (p: { tradeId: string }) => await this.result(p.tradeId)
    })
    rpc.register({
      name: 'buyer_rate',
      summary: 'Rates a seller of a settled trade (once), recorded in CISC with the result info.',
      params: [
        { name: 'tradeId', type: 'bytes32', description: 'the trade' },
        { name: 'seller', type: 'address', description: "the seller's account" },
        { name: 'score', type: 'integer', min: 1, max: 5, description: '1..5' },
        { name: 'comment', type: 'string', maxLength: 256, required: false, description: 'a short comment' }
      ],
      result: '{ txHash }',
      handler: async (p: { tradeId: string, seller: string, score: number, comment?: string }) => await this.rate(p.tradeId, p.seller, p.score, p.comment ?? '')
    })
  }
}
