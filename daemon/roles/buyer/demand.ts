// Step 2, Demand (docs/protocol.md): the buyer signs a demand, records the trade, gossips the demand
// on /sdte/bdbc/1 and posts its hash to BDBC.
import { hexlify, keccak256, randomBytes } from 'ethers'
import { tradeIdOf } from '../../../contracts/index.ts'
import { depositOf } from '../../../contracts/index.ts'
import { NoTopicPeersError } from '../../../p2p/index.ts'
import { DEMAND_TOPIC, TAG_PATTERN, demandHashOf, encodeDemand, signDemand } from '../../../p2p/index.ts'
import { appError } from '../../rpc/errors.ts'
import { sealLocal } from '../../local-secrets.ts'
import { chainTime, tradeGasCapOf, type RoleContext } from '../context.ts'
import { loadCode } from './code.ts'
import { DEMAND_TTL_OFFER_WINDOWS, MIN_DEMAND_TTL_SECONDS } from './constants.ts'
import { log } from './log.ts'
import { localKey } from './secrets.ts'
import { demandOf, type BuyerTrade, type BuyerTradeData } from './trade.ts'

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
  /** Micro-epsilon the trade is charged on each private dataset (absent: 0, no private dataset will take it). */
  epsilon?: bigint
}

/** buyer_postDemand: persists the trade, then publishes the demand (publishDemand). */
export async function postDemand (ctx: RoleContext, p: PostDemandParams): Promise<{ demandId: string, tradeId: string, codeHash: string, deposit: string }> {
  if (!TAG_PATTERN.test(p.tag)) throw appError('Rejected', 'tag must be 1..64 of letters, digits, . _ -', { param: 'tag' })
  const code = loadCode(p)
  const codeHash = keccak256(code).toLowerCase()
  const sellers = p.sellers ?? 1
  const now = await chainTime(ctx.chain)
  const offerSeconds = Math.ceil(ctx.options.trade.offerWindowMs / 1000)
  const demand = signDemand({
    chainId: ctx.network.chainId,
    dtmc: ctx.network.contracts.DTMC.toLowerCase(),
    buyerPeer: ctx.p2p.peerId,
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
    expiresAt: Math.max(now, Math.floor(Date.now() / 1000)) + Math.max(MIN_DEMAND_TTL_SECONDS, DEMAND_TTL_OFFER_WINDOWS * offerSeconds),
    tradeSeconds: p.deadlineSeconds,
    epsilon: p.epsilon ?? 0n
  }, { address: ctx.keys.ethAddress, privateKey: ctx.keys.ethWallet.privateKey })
  const { signature: _sig, ...unsigned } = demand
  const demandHash = demandHashOf(unsigned)
  const salt = hexlify(randomBytes(32)).toLowerCase()
  const tradeId = tradeIdOf(ctx.keys.ethAddress, salt)
  const gasCap = tradeGasCapOf(p.nodePrice, p.nodeCap)
  const sealedCode = Buffer.from(sealLocal(localKey(ctx), code, `code/${tradeId}`)).toString('base64')
  const t = await ctx.trades.create<BuyerTradeData>('buyer', tradeId, 'demanded', {
    demand: new TextDecoder().decode(encodeDemand(demand)), demandHash, salt, codeHash, sealedCode, gasCap: gasCap.toString(), published: false, posted: false, sellerOffers: [], nodeOffers: []
  }, `demand ${demand.demandId} for tag ${p.tag}, ${p.nodes} nodes`)
  // Under the trade's lock, like every other writer: offers recorded meanwhile (offers.ts) wait
  // instead of being overwritten by this function's copy of the record.
  await ctx.trades.locked('buyer', tradeId, async () => await publishDemand(ctx, await ctx.trades.require<BuyerTradeData>('buyer', t.tradeId)))
  return { demandId: demand.demandId, tradeId, codeHash, deposit: depositOf({ sellers, nodes: p.nodes, sellerCap: p.sellerCap, nodeCap: p.nodeCap, outputPrice: p.outputPrice, outputCap: p.outputCap }).toString() }
}

/**
 * Posts the demand's hash to BDBC, then gossips the demand, each once (a restart resumes where it
 * stopped). In this order: sellers and nodes answer only demands they find on BDBC (the demand
 * validator). The caller holds the trade's lock.
 */
export async function publishDemand (ctx: RoleContext, t: BuyerTrade): Promise<BuyerTrade> {
  if (!t.data.posted) {
    await ctx.chain.bdbc.postDemand(t.data.demandHash)
    t = await ctx.trades.update(t, { posted: true })
  }
  if (!t.data.published) {
    try {
      const { recipients } = await ctx.p2p.publish(DEMAND_TOPIC, new TextEncoder().encode(t.data.demand))
      log.info('demand gossiped', { demandId: demandOf(t).demandId, recipients })
    } catch (err) {
      // Nobody subscribed yet: the DHT solicitation (offers.ts) still reaches sellers and nodes.
      if (!(err instanceof NoTopicPeersError)) throw err
      log.warn('no peer on the demand topic yet; relying on the DHT', { demandId: demandOf(t).demandId })
    }
    t = await ctx.trades.update(t, { published: true })
  }
  return t
}
