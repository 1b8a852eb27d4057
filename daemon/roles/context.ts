// What every role is built from: the daemon's parts (keys, store, trades, chain, p2p and the trade
// protocols), plus a few chain reads the roles share.
import { SdteError, type DaemonOptions } from '../../config/index.ts'
import type { NetworkFile } from '../../contracts/index.ts'
import { MAX_REORG_DEPTH, type ChainClient, type TradeView } from '../../contracts/index.ts'
import type { P2PHost } from '../../p2p/index.ts'
import type { OfferProtocol } from '../../p2p/index.ts'
import type { AttestProtocol } from '../../p2p/index.ts'
import type { DataProtocol } from '../../p2p/index.ts'
import type { ResultProtocol } from '../../p2p/index.ts'
import type { Demand } from '../../p2p/index.ts'
import type { Offer } from '../../p2p/index.ts'
import type { DaemonKeys } from '../keys.ts'
import type { Store } from '../store.ts'
import { TERMINAL_STATES, type TradeBook, type TradeRecord, type TradeRole } from '../trades.ts'
import type { DaemonMetrics } from '../metrics.ts'
import type { Logger } from '../log.ts'
import type { RpcServer } from '../rpc/server.ts'
import type { Log } from 'ethers'
import { DEFAULT_GAS_CAP, MAX_GAS_CAP } from '../../enclave/index.ts'
import { explainTrade } from '../ends.ts'

/**
 * The gas cap of a trade with these node terms, the buyer's and every node's: a node is paid at most nodeCap,
 * so gas beyond nodeCap / nodePrice is never paid for and never run. The buyer puts it in the code envelope and
 * on DTMC; a node whose own maxGas is below it does not offer (it would have to run with exactly this cap).
 */
export function tradeGasCapOf (nodePrice: bigint, nodeCap: bigint): bigint {
  if (nodePrice === 0n) return DEFAULT_GAS_CAP
  const cap = nodeCap / nodePrice
  return cap < MAX_GAS_CAP ? cap : MAX_GAS_CAP
}

export interface RoleContext {
  options: DaemonOptions
  keys: DaemonKeys
  store: Store
  trades: TradeBook
  /** The daemon's own metrics (bytes delivered, enclave runs); trade states are counted by `trades`. */
  metrics: DaemonMetrics
  network: NetworkFile
  chain: ChainClient
  p2p: P2PHost
  offer: OfferProtocol
  attest: AttestProtocol
  data: DataProtocol
  result: ResultProtocol
  /**
   * Asks the daemon to advance `role`'s trades now rather than at the next safety poll (trade.tickMs): a
   * stream message or a timer that may let a trade go on. Coalesced: a tick already running is followed by
   * one more. The daemon also wakes every role on each new block and a role on its own trades' state changes.
   */
  wake: (role: TradeRole) => void
  /**
   * Told the size of each data chunk the node receives, so that the transport's buffers it leaves behind are
   * collected while they are young (daemon/memory.ts receiveCollector). Absent: nothing is asked of V8.
   */
  received?: (bytes: number) => void
  /**
   * Told that work ended outside the trade book's transitions whose memory is now free (a node's idle enclave thread
   * stopped): the daemon gives it back once quiet, as after a transition (daemon/memory.ts memoryReleaser). Absent:
   * nothing is done.
   */
  released?: () => void
}

/** A role's behaviour: started after the daemon's parts, ticked to advance its trades, stopped before them. */
export interface Role {
  /** Which role it is (config/options.ts RoleName, less the relay, which runs no trades). */
  readonly name: TradeRole
  start: () => Promise<void>
  /**
   * Work of the role's start that the control API does not wait for (a node's enclave boot and CISC registration):
   * the daemon runs it once the API answers, and stops with its error if it fails, as when start() fails.
   * Until it ends well the role offers and runs nothing and is not ready. Absent: start() did it all.
   */
  boot?: () => Promise<void>
  stop: () => Promise<void>
  /** Advances every active trade one step where it can; must be idempotent. */
  tick: () => Promise<void>
  registerMethods: (rpc: RpcServer) => void
  /** Whether the role can do its work now (/ready); absent: always. */
  ready?: () => Promise<boolean>
  /** A valid demand seen on the gossip topic. */
  onDemand?: (demand: Demand, demandHash: string) => Promise<void>
  /** The buyer's side of /sdte/offer/1. */
  onOffer?: (remotePeer: string, offer: Offer) => Promise<boolean>
  /** A seller's or node's answer to a solicitation; null when it has nothing to offer. */
  onSolicit?: (remotePeer: string, demand: Demand) => Promise<Offer | null>
}

export interface TradeSellerEvent { index: number, account: string, offerId: bigint, fee: bigint, commitment: string }
export interface TradeNodeEvent { index: number, payee: string, enclave: string, measurement: string, taskId: string }

/** The sellers and nodes of a trade as DTMC recorded them when it opened (TradeSeller / TradeNode events). */
export async function tradeParties (chain: ChainClient, tradeId: string, fromBlock = chain.network.deployBlock ?? 0): Promise<{ sellers: TradeSellerEvent[], nodes: TradeNodeEvent[] }> {
  const c = chain.dtmc.contract
  const [sl, nl] = await Promise.all([
    c.queryFilter(c.filters.TradeSeller(tradeId), fromBlock),
    c.queryFilter(c.filters.TradeNode(tradeId), fromBlock)
  ])
  const args = (log: Log): Record<string, any> => dtmcLogArgs(chain, log)
  const sellers = sl.map(l => args(l)).map(a => ({
    index: Number(a.index), account: String(a.seller).toLowerCase(), offerId: a.offerId as bigint, fee: a.fee as bigint, commitment: String(a.commitment).toLowerCase()
  })).sort((a, b) => a.index - b.index)
  const nodes = nl.map(l => args(l)).map(a => ({
    index: Number(a.index), payee: String(a.payee).toLowerCase(), enclave: String(a.enclave).toLowerCase(), measurement: String(a.measurement).toLowerCase(), taskId: String(a.taskId).toLowerCase()
  })).sort((a, b) => a.index - b.index)
  return { sellers, nodes }
}

/** A node a trade names (by its payee account) has no record in CISC. */
export class NodeNotRegisteredError extends SdteError {
  override code = 'ERR_NODE_NOT_REGISTERED'
}

/** The peer id CISC records for the node whose payee account is `payee`. */
export async function nodePeerId (ctx: Pick<RoleContext, 'chain'>, payee: string): Promise<string> {
  const record = await ctx.chain.cisc.node(payee)
  if (record === null) throw new NodeNotRegisteredError(`node ${payee} is not registered in CISC`)
  return record.peerId
}

/** The decoded arguments of a DTMC event log. */
export function dtmcLogArgs (chain: ChainClient, log: Log): Record<string, any> {
  const parsed = chain.dtmc.iface.parseLog(log)
  if (parsed === null) throw new Error('not a DTMC event')
  return parsed.args as unknown as Record<string, any>
}

/**
 * Wei DTMC credited to `account` for one trade (its Credited events); undefined while the chain shows no end of
 * the trade (see creditsOf).
 */
export async function creditedFor (chain: ChainClient, account: string, tradeId: string, fromBlock = chain.network.deployBlock ?? 0): Promise<bigint | undefined> {
  const credits = await creditsOf(chain, tradeId, fromBlock)
  return credits === undefined ? undefined : credits.get(account.toLowerCase()) ?? 0n
}

/**
 * Wei DTMC credited for one trade, per account (lowercase), from its Credited events (whether each was sent at once
 * or, its `sent` false, left in `balanceOf` for withdraw: both are what the account was paid); undefined when the same logs
 * hold no TradeSettled or TradeRefunded of the trade. One eth_getLogs over DTMC, so the credits and the end come from
 * one view of the chain: a reorganisation between two reads (the trade seen settled, then its credits gone with the
 * dropped blocks) would otherwise record no payment at all for a trade that settles again a block later.
 */
export async function creditsOf (chain: ChainClient, tradeId: string, fromBlock = chain.network.deployBlock ?? 0): Promise<Map<string, bigint> | undefined> {
  // Only these three events (a topic list is an OR); the trade id sits in another topic in each, so it is matched below.
  const topics = ['Credited', 'TradeSettled', 'TradeRefunded'].map(name => chain.dtmc.iface.getEvent(name)!.topicHash)
  const logs = await chain.provider.getLogs({ address: chain.dtmc.address, fromBlock, toBlock: 'latest', topics: [topics] })
  const id = tradeId.toLowerCase()
  const out = new Map<string, bigint>()
  let ended = false
  for (const l of logs) {
    const parsed = chain.dtmc.iface.parseLog(l)
    if (parsed === null || String(parsed.args.tradeId).toLowerCase() !== id) continue
    if (parsed.name === 'TradeSettled' || parsed.name === 'TradeRefunded') ended = true
    if (parsed.name !== 'Credited') continue
    const k = String(parsed.args.account).toLowerCase()
    out.set(k, (out.get(k) ?? 0n) + (parsed.args.amount as bigint))
  }
  return ended ? out : undefined
}

/**
 * Blocks before a trade's opening block that its log queries still cover: a reorganisation may mine the opening
 * again in an earlier block than the one we saw (a fork is rarely deeper).
 */
export const OPENED_BLOCK_MARGIN = 64

/** Where a trade's log queries start: a little before the block it opened in when we know it, else the deploy block. */
export function tradeFromBlock (ctx: Pick<RoleContext, 'network'>, openedBlock: number | undefined): number {
  return openedBlock === undefined ? ctx.network.deployBlock : Math.max(ctx.network.deployBlock, openedBlock - OPENED_BLOCK_MARGIN)
}

/** Ids of trades in which `account` took part in `role` since `fromBlock`, the block each opened in, and the block scanned up to. */
export async function newTradesOf (chain: ChainClient, account: string, role: 'seller' | 'node', fromBlock: number): Promise<{ tradeIds: string[], openedBlocks: Map<string, number>, toBlock: number }> {
  // Only blocks as deep as the client's confirmations: a trade is acted on once its opening is that deep.
  const toBlock = await chain.confirmedBlock()
  if (toBlock < fromBlock) return { tradeIds: [], openedBlocks: new Map(), toBlock: fromBlock - 1 }
  const c = chain.dtmc.contract
  const filter = role === 'seller' ? c.filters.TradeSeller(null, account) : c.filters.TradeNode(null, account)
  const logs = await c.queryFilter(filter, fromBlock, toBlock)
  const openedBlocks = new Map(logs.map(l => [String(dtmcLogArgs(chain, l).tradeId).toLowerCase(), l.blockNumber]))
  return { tradeIds: [...openedBlocks.keys()], openedBlocks, toBlock }
}

/**
 * Calls `take` for every trade DTMC opened with us in `role` since the last scan and that we have no
 * record of yet; the scan position is kept in the store, so a restart neither misses nor repeats.
 * Each scan goes back MAX_REORG_DEPTH blocks before it: a trade whose opening a reorganisation moved into
 * a block at a height already scanned (or that was gone when `take` looked) is seen again.
 */
export async function scanNewTrades (ctx: RoleContext, role: 'seller' | 'node', take: (tradeId: string, openedBlock: number | undefined) => Promise<void>, known?: (tradeId: string, openedBlock: number | undefined) => Promise<void>): Promise<void> {
  const key = `${role}:scannedBlock`
  const scanned = ((await ctx.store.meta.get(key)) as number | undefined) ?? ctx.network.deployBlock
  const from = Math.max(ctx.network.deployBlock, scanned - MAX_REORG_DEPTH)
  const { tradeIds, openedBlocks, toBlock } = await newTradesOf(ctx.chain, ctx.keys.ethAddress, role, from)
  for (const tradeId of tradeIds) {
    // `known`: a trade we hold a record of, seen opened (again, after a reorganisation) in the scanned blocks.
    if (await ctx.trades.get(role, tradeId) === undefined) await take(tradeId, openedBlocks.get(tradeId))
    else await known?.(tradeId, openedBlocks.get(tradeId))
  }
  await ctx.store.meta.put(key, Math.max(scanned, toBlock + 1))
}

/** Trades (of an in-flight set) whose step was asked for again while it ran: it runs once more when done. */
const stepAgain = new WeakMap<Set<string>, Set<string>>()

/**
 * One step for each active trade of a role; a step that fails is logged and tried again next tick.
 * With `inFlight`, each step runs in the background and a trade whose step is still running is
 * skipped: a role whose steps take seconds (the buyer's offer window, attestation) does not hold up
 * its other trades, nor the daemon's tick, behind one of them. A tick that finds a step in flight (an
 * event came meanwhile: a block, a state change) has it run once more as soon as it ends, with the
 * record as it is then, instead of leaving the trade to the next safety poll.
 */
export async function advanceActive<D> (ctx: RoleContext, role: TradeRole, advance: (t: TradeRecord<D>) => Promise<void>, log: Logger, inFlight?: Set<string>): Promise<void> {
  const step = async (t: TradeRecord<D>): Promise<void> => {
    try {
      await advance(t)
    } catch (err) {
      log.warn('trade step failed (will retry)', { tradeId: t.tradeId, state: t.state, err: err as Error })
    }
  }
  if (inFlight === undefined) {
    for (const t of await ctx.trades.active<D>(role)) await step(t)
    return
  }
  let again = stepAgain.get(inFlight)
  if (again === undefined) stepAgain.set(inFlight, again = new Set())
  const pending = again
  const background = (t: TradeRecord<D>): void => {
    inFlight.add(t.tradeId)
    void step(t).finally(async () => {
      if (!pending.delete(t.tradeId)) { inFlight.delete(t.tradeId); return }
      const fresh = await ctx.trades.get<D>(role, t.tradeId).catch(() => undefined)
      if (fresh !== undefined && !TERMINAL_STATES[fresh.role].includes(fresh.state)) background(fresh)
      else inFlight.delete(t.tradeId)
    })
  }
  for (const t of await ctx.trades.active<D>(role)) {
    if (inFlight.has(t.tradeId)) pending.add(t.tradeId)
    else background(t)
  }
}

/** Seconds since the epoch of the chain's latest block (deadlines are judged by the chain's clock). */
export async function chainTime (chain: ChainClient): Promise<number> {
  const block = await chain.provider.getBlock('latest')
  return block?.timestamp ?? Math.floor(Date.now() / 1000)
}

/**
 * Step 9, Consensus and payment, the payment of a seller or a node: once DTMC has settled or refunded the trade, withdraw
 * what DTMC credited us and record it (the role's end of the trade). Returns false while it is open.
 */
export async function collectPayment<D extends { payment?: string, openedBlock?: number }> (ctx: RoleContext, t: TradeRecord<D>, view: TradeView): Promise<boolean> {
  const state = view.state
  if (state === 'open') return false
  const credited = await creditedFor(ctx.chain, ctx.keys.ethAddress, t.tradeId, tradeFromBlock(ctx, t.data.openedBlock))
  // The end we saw was undone by a reorganisation meanwhile: look again once the chain shows it.
  if (credited === undefined) return false
  await withdrawCredit(ctx)
  // A trade that ended without the buyer's output: why, in this role's words (daemon/ends.ts).
  const ended = explainTrade([], view)
  const role = t.role === 'seller' ? 'seller' : 'node'
  await ctx.trades.transition<D>(t, state === 'settled' ? 'finalized' : 'refunded', {
    data: { payment: credited.toString() } as Partial<D>,
    note: `${state}: paid ${credited} wei`,
    ...(ended !== null && { reason: ended[role] })
  })
  return true
}

/** Wei credited to us on DTMC; withdrawn when there is any. Returns the amount withdrawn. */
export async function withdrawCredit (ctx: RoleContext): Promise<bigint> {
  const credit = await ctx.chain.dtmc.creditOf(ctx.keys.ethAddress)
  if (credit === 0n) return 0n
  const { amount } = await ctx.chain.dtmc.withdraw()
  return amount
}
