// The trusted node (docs/protocol.md steps 1, 3, 4, 6, 7, 8, 9, 10): registers its enclave in CISC
// and the DHT (Register), offers itself for demands it can serve (Offers), lets buyers and sellers
// attest its enclave (Attestation), checks a data delivery against DTMC (Checks) before it takes the
// buyer's code and the sellers' data into the enclave (Data delivery), runs the analysis there
// (Execution), commits to the signed result info on DTMC then reveals it once every node has committed
// (or the commit window has passed), withdraws its pay (Consensus and payment),
// and serves the encrypted result to the buyer (Result delivery).
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { hexlify } from 'ethers'
import {
  CapMismatchError, createEnclave, EnclaveBuildChangedError, EnclaveClosedError, EnclaveError, EnclaveTimeoutError, RunFailedError, RunOverBudgetError, type EnclaveHost, type ExecuteResponse, type TaskSummary
} from '../../../enclave/index.ts'
import { readKeyFile, networkDomainOf, resultCommitmentOf, resultDigestOf, COMMIT_WINDOW, ResultStatus, type TradeView } from '../../../contracts/index.ts'
import { ChainRevertError, TradeTermsChangedError, TransactionDroppedError } from '../../../contracts/index.ts'
import { RefuseRequest, ResultRequestInvalidError, resultConstants, resultMessageSigner, signOffer, type ResultMessage } from '../../../p2p/index.ts'
import type { Demand } from '../../../p2p/index.ts'
import type { Offer } from '../../../p2p/index.ts'
import type { DataOpen, DeliveryState } from '../../../p2p/index.ts'
import { enclaveKey } from '../../../p2p/index.ts'
import { SdteError } from '../../../config/index.ts'
import { componentLogger, logger } from '../../log.ts'
import { writeSecretFile } from '../../keys.ts'
import type { RpcServer } from '../../rpc/server.ts'
import { appError } from '../../rpc/errors.ts'
import * as r from '../../rpc/results.ts'
import type { TradeRecord } from '../../trades.ts'
import { explainRun } from '../../ends.ts'
import { judgedPrice, OfferedPrices } from './offered-prices.ts'
import { advanceActive, chainTime, collectPayment, scanNewTrades, tradeFromBlock, tradeGasCapOf, tradeParties, type Role, type RoleContext } from '../context.ts'

const log = logger('sdte:node')

export const PLATFORM_SECRET_FILE = 'enclave-platform-secret'

/** DTMC result status codes as metric labels: OutOfGas -> out_of_gas. */
const RESULT_STATUS_LABEL = new Map<number, string>(Object.entries(ResultStatus).map(([k, v]) => [v, k.replace(/(?<=[a-z])(?=[A-Z])/g, '_').toLowerCase()]))
/** Tasks one peer may have attested that no trade has taken up yet. */
export const MAX_PENDING_TASKS_PER_PEER = 32
/** Tasks, from all peers, that no trade has taken up yet; the enclave holds MAX_TASKS (1024) in all. */
export const MAX_PENDING_TASKS = 512
/**
 * Demands on BDBC this node remembers (every demand the demand validator accepted, gossiped or
 * solicited), to tell a quote request backed by one (its peer is the demand's buyer peer, its code
 * the demand's) from a free one; beyond it the oldest are forgotten.
 */
export const MAX_PAID_DEMANDS = 1024
/**
 * Offered prices this node keeps (OfferedPrices, level meta `node:offeredPrice:`): one per demand's terms it offered
 * for, each until the demand's expiresAt + tradeSeconds (up to MAX_DEMAND_TTL_SECONDS + MAX_TRADE_SECONDS, about a
 * week), so a stranger posting demands on BDBC would grow them without end. 4 × MAX_PAID_DEMANDS: room for every
 * demand the node remembers and the trades still running on older ones; a record is about 200 bytes, so under 1 MiB
 * in level and in the index in memory. Past it the record that expires first goes (why not refuse: OfferedPrices.record).
 */
export const MAX_OFFERED_PRICES = 4 * MAX_PAID_DEMANDS
/** How long an attested task waits for a trade on DTMC before the enclave forgets it. */
export const PENDING_TASK_TTL_MS = 10 * 60_000
/**
 * How long the enclave's thread stays up with no task and no request (createEnclave's idleStopMs): then it stops,
 * and the next quote request (or a demand this node offers for, which warms it) starts it again from the sealed
 * state. The thread is a second V8 isolate with the enclave's code, about 20 MiB of a resting node (issue 13:
 * under 120 MiB at rest); starting it again costs a few hundred ms of CPU, so trades that follow each other
 * within this keep it.
 */
export const ENCLAVE_IDLE_STOP_MS = 30_000
/**
 * Runs of one task, counting those killed at their budget (or lost with the daemon): after this many
 * the node gives the task up and submits nothing. A kill is most likely the code's doing (an honest
 * node with the same budget kills it too); one more try covers a machine that was busy at the time.
 */
export const MAX_RUN_ATTEMPTS = 2

export class NodeConfigError extends SdteError {
  override name = 'NodeConfigError'
  override code = 'ERR_NODE_CONFIG'
}

export interface NodeTradeData {
  nodeIndex: number
  taskId: string
  enclave: string
  codeHash: string
  sellers: number
  deadline: number
  resultHash?: string
  resultSize?: string
  status?: number
  /** The secret nonce of our result commitment on DTMC, until the reveal shows it. */
  commitNonce?: string
  revealed?: boolean
  reason?: string
  payment?: string
  /** Runs started for this task (MAX_RUN_ATTEMPTS at most), and why the last one ended without a result. */
  runAttempts?: number
  runError?: string
  /** Why the sealed task of a settled trade was dropped: the buyer acknowledged its result, or the retention ran out. */
  resultDropped?: 'acknowledged' | 'retention'
  /**
   * Micro-epsilon of a private trade: the trade's epsilon on DTMC (its TradePrivate event; CISC charged it to every
   * private offer), kept when one of its sellers' offers is private (CISC), so the run is a private one; absent: an
   * ordinary run (a trade with an epsilon but no private offer runs as any other). The run's `privacy.epsilon`
   * (execute, docs/enclave.md "Private mode"): like gasCap, the host reads it on chain (never from the buyer) and the
   * enclave checks it against the sellers' privacy terms.
   */
  epsilon?: string
  /** The block DTMC opened the trade in (where its log queries start). */
  openedBlock?: number
  /**
   * The trade's terms as we took it up (DtmcClient.termsDigestOf): every call we sign for it is held to them, so that
   * a trade its buyer opened again with other terms after a reorganisation gets nothing of ours under those
   * (TradeTermsChangedError; the trade ends `failed`). Absent in records older than this check.
   */
  terms?: string
  /**
   * Wei per gas this node offered for the trade's demand (offerKeyOf), when it made an offer for it: the trade is
   * judged by this price (priceFor), not by the node's price now. Absent: no offer of ours (or an older record).
   */
  offeredPricePerGas?: string
}

/** What opening the node's enclave needs: the daemon has it once its store is open. */
export type EnclaveContext = Pick<RoleContext, 'options' | 'network' | 'store' | 'keys' | 'released'>

export class TrustedNodeRole implements Role {
  readonly name = 'node' as const
  private readonly ctx: RoleContext
  enclave!: EnclaveHost
  /** Trades whose step is running in the background (advanceActive): a run in flight holds up no tick. */
  private readonly inFlight = new Set<string>()
  private enclaveLost = false
  /** The enclave's build changed on disk since the start (EnclaveBuildChangedError): no offers, not ready, no reopen. */
  private enclaveBuildChanged = false
  private stopping = false
  /**
   * The enclave's boot, its measurement check and the CISC registration (boot()), which the daemon runs after its
   * control API opened (issue 13: admin_info answers without waiting for the enclave's thread). Until it ends well
   * the node offers nothing, runs nothing, is not ready and node_enclave answers Unavailable; if it fails, the
   * daemon stops with its error (daemon.ts bootRoles), as a failed start does. Whether it ended well:
   */
  private booted = false
  /** The boot's first step, the enclave's opening, and its last, the protocols' start: what a stop waits for (stop()). */
  private enclaveOpening: Promise<EnclaveHost> | undefined
  private serving: Promise<void> | undefined
  /**
   * Tasks attested but not (yet) in a trade on DTMC: who asked, since when, and whether a demand on
   * BDBC backs the request (`paid`, see isPaid). Bounded per peer and in all, expired.
   */
  private readonly pending = new Map<string, { peer: string, since: number, paid: boolean }>()
  /** Quote requests in flight (between their quota check and their task in `pending`), by peer and in all. */
  private readonly reserved = new Map<string, number>()
  private reservedTotal = 0
  /** Demands on BDBC (checked by the demand validator), by demand id, oldest first; at most MAX_PAID_DEMANDS. */
  private readonly paidDemands = new Map<string, { buyerPeer: string, codeHash: string, expiresAt: number }>()
  /** The prices per gas of the offers we signed, by the demand's terms; at most MAX_OFFERED_PRICES. */
  private readonly offeredPrices: OfferedPrices

  /** The enclave the daemon began to open ahead of the role's start (openEnclave), if it did. */
  private readonly enclaveAhead: Promise<EnclaveHost> | undefined

  constructor (ctx: RoleContext, enclaveAhead?: Promise<EnclaveHost>) {
    this.ctx = ctx
    this.enclaveAhead = enclaveAhead
    this.offeredPrices = new OfferedPrices(ctx.store.meta, MAX_OFFERED_PRICES)
  }

  private get address (): string { return this.ctx.keys.ethAddress.toLowerCase() }

  private static attestationKey (ctx: EnclaveContext): string {
    const o = ctx.options
    let file = o.enclave.attestationKeyFile
    if (file === null && ctx.network.devnet && o.network !== null) file = join(dirname(o.network), 'attestation-root.key')
    if (file === null) throw new NodeConfigError('the node role needs enclave.attestationKeyFile (the simulated attestation service key)')
    try {
      return readKeyFile(file)
    } catch (err) {
      throw new NodeConfigError(`cannot read the attestation key ${file}: ${(err as Error).message}`)
    }
  }

  private static platformSecret (ctx: EnclaveContext): Uint8Array {
    const path = join(ctx.options.datadir, PLATFORM_SECRET_FILE)
    if (!existsSync(path)) writeSecretFile(path, randomBytes(32))
    const secret = new Uint8Array(readFileSync(path))
    if (secret.length !== 32) throw new NodeConfigError(`${path} must hold 32 bytes`)
    return secret
  }

  /**
   * Starts the node's enclave (a worker thread that loads the EVM: the longest step of a node's start).
   * The daemon calls it as soon as the store is open, so that the worker boots while the chain client
   * and the p2p host start, and hands the promise to the role.
   */
  static async openEnclave (ctx: EnclaveContext): Promise<EnclaveHost> {
    return await createEnclave({
      attestationKey: TrustedNodeRole.attestationKey(ctx),
      domain: networkDomainOf(ctx.network),
      // The node's account, as CISC registers it and DTMC pays it: every quote names it.
      operator: ctx.keys.ethAddress,
      platformSecret: TrustedNodeRole.platformSecret(ctx),
      store: ctx.store.sealed,
      faultWrongResult: ctx.options.enclave.faultWrongResult,
      runBudget: ctx.options.enclave.runBudget,
      idleStopMs: ENCLAVE_IDLE_STOP_MS,
      // The stopped thread's memory is freed some 30 s after the trade's last step: the daemon gives it back then too.
      onIdleStop: ctx.released
    }, { logger: componentLogger })
  }

  /**
   * An enclave that timed out or died is stopped by its host (its state stays sealed): the next
   * tick starts a new one on the same store, which resumes every task.
   */
  private async reopenEnclaveIfLost (): Promise<void> {
    if (!this.enclaveLost || this.stopping) return
    this.enclaveLost = false
    await this.enclave.close().catch(() => {})
    this.enclave = await TrustedNodeRole.openEnclave(this.ctx)
    // A stop that came meanwhile closed the lost one only: this one is ours to close.
    if (this.stopping) { await this.enclave.close().catch(() => {}); return }
    log.warn('enclave restarted from its sealed state', { tasks: (await this.enclave.tasks()).length })
  }

  /**
   * What an enclave failure means for the node: a closed or unresponsive enclave is lost (the next tick opens a new
   * one on the sealed state); a changed build is not reopened (the new host would run the changed build while CISC
   * holds the measurement registered at start): the node stops offering until its operator restarts the daemon.
   */
  private noteEnclaveFailure (err: unknown): void {
    const kind = enclaveFailureOf(err)
    if (kind === 'lost') this.enclaveLost = true
    if (kind === 'build-changed' && !this.enclaveBuildChanged) {
      this.enclaveBuildChanged = true
      log.error('the enclave build changed on disk since the daemon started: this node no longer offers nor runs trades; restart the daemon', { error: err as Error })
    }
  }

  /** Enclave refusals (bad envelope, bad chunk, wrong state) become protocol refusals with the error's name. */
  private async enclaveCall<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      this.noteEnclaveFailure(err)
      if (err instanceof EnclaveError) throw new RefuseRequest(err.name, err.message)
      throw err
    }
  }

  /** The node's options against the network, checked before the daemon makes keys or starts anything. */
  static checkOptions (options: RoleContext['options'], network: RoleContext['network']): void {
    if (options.enclave.faultWrongResult && !network.devnet) {
      throw new NodeConfigError('enclave.faultWrongResult is a test-only fault switch and is refused outside a devnet')
    }
  }

  /**
   * The options and the attestation key are checked before the control API opens; the enclave (its platform secret
   * too), the measurement and the registration follow in boot(), whose failure stops the daemon (exit 1).
   */
  async start (): Promise<void> {
    TrustedNodeRole.checkOptions(this.ctx.options, this.ctx.network)
    TrustedNodeRole.attestationKey(this.ctx)
  }

  /** The enclave, its measurement against the network's, the CISC registration, then the protocols it serves. */
  async boot (): Promise<void> {
    await this.bootSteps()
    if (this.stopping) return
    this.booted = true
    log.info('node booted: enclave started and registered in CISC', { measurement: this.enclave.measurement })
  }

  private async bootSteps (): Promise<void> {
    this.enclaveOpening = this.enclaveAhead ?? TrustedNodeRole.openEnclave(this.ctx)
    this.enclave = await this.enclaveOpening
    const m = this.enclave.measurement.toLowerCase()
    if (!this.ctx.network.measurements.includes(m)) {
      log.warn('this enclave build is not among the network\'s accepted measurements: buyers and DTMC will refuse it', { measurement: m })
    }
    if (this.stopping) return
    await this.register()
    if (this.stopping) return
    this.serving = this.serve(m)
    await this.serving
  }

  /**
   * The boot's last step: the node's protocols started and its enclave announced. Quick and local, and a stop waits
   * for it, so that nothing it starts outlives the stop (unlike the registration before it: stop()).
   */
  private async serve (m: string): Promise<void> {
    // Step 4, Attestation: a quote for a new task, then the buyer's code for it.
    await this.ctx.attest.start({
      onAttest: async (remote, req) => {
        // Quota, room and reservation happen before the first await: concurrent requests each see
        // the slots the others hold (checking, awaiting the enclave, then counting let 20 peers x 33
        // requests at once make 640 tasks against a total of 512).
        this.checkTaskQuota(remote, req.tradeId)
        const paid = this.isPaid(remote, req.codeHash)
        const victim = this.makeRoomForTask(paid)
        this.reserve(remote, +1)
        try {
          if (victim !== undefined) await this.enclave.dropTask(victim).catch(() => {})
          const r = await this.enclaveCall(async () => await this.enclave.attest({ tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce }))
          // A task attested again (the buyer's retry, a seller's own attestation) keeps who asked first and when.
          // One the tick found in the enclave meanwhile (peer '') is this peer's, and counts against its quota.
          const prev = this.pending.get(r.taskId)
          this.pending.set(r.taskId, { peer: prev !== undefined && prev.peer !== '' ? prev.peer : remote, since: prev?.since ?? Date.now(), paid: (prev?.paid ?? false) || paid })
          return { type: 'quote', quote: r.quote, enclavePublicKey: r.enclavePublicKey }
        } finally {
          this.reserve(remote, -1)
        }
      },
      onCode: async (_remote, req) => {
        await this.enclaveCall(async () => { await this.enclave.deliverCode(req.taskId, req.envelope, { salt: req.salt, signature: req.signature }) })
        // The code may be the last thing a trade's run waited for.
        this.ctx.wake('node')
      }
    })
    // Step 7, Data delivery, once the delivery passed the checks (step 6).
    await this.ctx.data.start({
      open: async (remote, req) => await this.checkDelivery(remote, req),
      receive: async (req, _from, chunks) => {
        let bytes = 0
        const received = this.ctx.received
        const counted = (async function * () {
          for await (const c of chunks) {
            bytes += c.length
            yield c
            // The chunk is with the enclave now; what the transport allocated to bring it in is garbage.
            received?.(c.length)
          }
        })()
        const status = await this.enclaveCall(async () => await this.enclave.deliverData(req.taskId, {
          sellerIndex: req.sellerIndex, commitment: req.commitment, wrappedKey: req.wrappedKey, sellerSignature: req.sellerSignature, chunks: counted
        }))
        if (status.invalid !== undefined) {
          this.ctx.wake('node') // a seller's refused data lets the run go on too (it reports "input invalid")
          throw new RefuseRequest('InvalidData', status.invalid)
        }
        this.ctx.metrics.bytesDelivered.inc({ role: 'node' }, bytes)
        log.info('data received', { tradeId: req.tradeId, seller: req.sellerIndex, bytes: status.received, complete: status.complete })
        // The receipt goes back to the seller; the enclave runs nothing until the seller acknowledges it.
        return { nextChunk: status.nextChunk, complete: status.complete, receipt: status.receipt, acked: status.acked }
      },
      // The seller acknowledges, on the same stream, the receipt it got for the delivery checked at its open (step 6,
      // against DTMC and CISC); the enclave checks the ack's signature against the account that sent the data key.
      ack: async (req, ack) => {
        const status = await this.enclaveCall(async () => await this.enclave.ackReceipt(req.taskId, req.sellerIndex, ack))
        // Kept for DTMC.claimRun: should this seller decline the trade before our commitment, its ack pays our run.
        // Only the first: the enclave checks an ack only while the receipt is unacknowledged (a later one is not checked).
        if (status.acked === true && !await this.ctx.store.meta.has(sellerAckKey(req.tradeId, req.sellerIndex))) {
          await this.ctx.store.meta.put(sellerAckKey(req.tradeId, req.sellerIndex), ack)
        }
        // The enclave runs once every seller's receipt is acknowledged: this may have been the last one.
        this.ctx.wake('node')
        return { nextChunk: status.invalid === undefined ? status.nextChunk : 0, complete: status.complete, receipt: status.receipt, acked: status.acked }
      }
    })
    await this.ctx.result.start({
      get: async (_remote, req) => await this.serveResult(req),
      ack: async (_remote, req) => { await this.takeAck(req) }
    })
    void this.ctx.p2p.provide(enclaveKey(m)).catch((err: unknown) => { log.warn('DHT announcement failed', { err: err as Error }) })
  }

  async stop (): Promise<void> {
    this.stopping = true
    // A boot in flight: its enclave, once open, is closed below (its failure is the daemon's to report). Its CISC
    // registration is not waited for: a transaction a stalled chain does not mine held a SIGTERM until the forced exit
    // (node-boot.test.ts). The step after it checks `stopping`, and the chain client closes after the roles.
    await this.enclaveOpening?.catch(() => {})
    await this.serving?.catch(() => {})
    await this.ctx.result.stop()
    await this.ctx.data.stop()
    await this.ctx.attest.stop()
    await this.enclave?.close()
  }

  /**
   * Anyone may ask for a quote, and each new (trade, code) makes a task in the enclave: a peer gets
   * at most MAX_PENDING_TASKS_PER_PEER tasks that no trade on DTMC has taken up yet.
   */
  private checkTaskQuota (remote: string, tradeId: string): void {
    let count = this.reserved.get(remote) ?? 0
    for (const p of this.pending.values()) if (p.peer === remote) count++
    if (count >= MAX_PENDING_TASKS_PER_PEER) {
      throw new RefuseRequest('TooManyTasks', `at most ${MAX_PENDING_TASKS_PER_PEER} tasks per peer await a trade (trade ${tradeId.slice(0, 10)}…)`)
    }
  }

  /** Remembers a demand the validator found on BDBC (gossiped or solicited). */
  private notePaidDemand (d: Demand): void {
    this.paidDemands.delete(d.demandId)
    this.paidDemands.set(d.demandId, { buyerPeer: d.buyerPeer, codeHash: d.codeHash.toLowerCase(), expiresAt: d.expiresAt })
    for (const id of this.paidDemands.keys()) {
      if (this.paidDemands.size <= MAX_PAID_DEMANDS) break
      this.paidDemands.delete(id)
    }
  }

  /**
   * A quote request costs its requester something when a demand it posted to BDBC (paying gas)
   * backs it: the requesting peer is the demand's buyer peer (the validator checked that the
   * buyer peer authored the demand), the code is the demand's, and the demand has not expired.
   */
  private isPaid (remote: string, codeHash: string): boolean {
    const now = Math.floor(Date.now() / 1000)
    for (const d of this.paidDemands.values()) {
      if (d.buyerPeer === remote && d.codeHash === codeHash.toLowerCase() && d.expiresAt >= now) return true
    }
    return false
  }

  /**
   * Peer ids cost nothing, so the per-peer quota alone does not protect the task table: past
   * MAX_PENDING_TASKS in all, the oldest task no trade took up makes room for the new one. Free
   * requests (no demand on BDBC behind them) only ever evict free tasks, oldest first; a paid one
   * evicts the oldest free task, or the oldest paid one when none is free. A flood from fresh peer
   * ids thus evicts only its own kind, and when the table holds only paid tasks it is refused.
   */
  private makeRoomForTask (paid: boolean): string | undefined {
    if (this.pending.size + this.reservedTotal < MAX_PENDING_TASKS) return undefined
    const oldestOf = (wantPaid: boolean): string | undefined => {
      let oldest: [string, number] | undefined
      for (const [taskId, p] of this.pending) if (p.paid === wantPaid && (oldest === undefined || p.since < oldest[1])) oldest = [taskId, p.since]
      return oldest?.[0]
    }
    const victim = oldestOf(false) ?? (paid ? oldestOf(true) : undefined)
    if (victim === undefined) throw new RefuseRequest('TooManyTasks', `${MAX_PENDING_TASKS} tasks backed by demands on BDBC await a trade or are being made; try again later`)
    this.pending.delete(victim)
    return victim
  }

  /** Counts a quote request in flight against its peer's quota and the total until its task is pending. */
  private reserve (remote: string, delta: 1 | -1): void {
    const n = (this.reserved.get(remote) ?? 0) + delta
    if (n === 0) this.reserved.delete(remote)
    else this.reserved.set(remote, n)
    this.reservedTotal += delta
  }

  /** Drops tasks that no trade took up within PENDING_TASK_TTL_MS (their quotes were never used). */
  private async expirePendingTasks (): Promise<void> {
    const trades = new Map((await this.ctx.trades.list<NodeTradeData>('node')).map(t => [t.data.taskId, t]))
    let now: number | undefined
    for (const task of await this.enclave.tasks()) {
      const trade = trades.get(task.taskId)
      if (trade !== undefined) {
        this.pending.delete(task.taskId)
        // An acknowledged result whose task could not be dropped at the time.
        if (trade.state === 'delivered') await this.forgetTask(task.taskId)
        // A settled trade whose buyer never acknowledged its result (it fetched it from another node
        // of the majority, or never came back): kept RESULT_RETENTION_SECONDS past the deadline, on
        // the chain's clock, then this node's sealed copy (code, keys, data, result) goes.
        if (trade.state === 'finalized') {
          now ??= await chainTime(this.ctx.chain)
          if (now > trade.data.deadline + resultConstants.RESULT_RETENTION_SECONDS) {
            // Under the trade's lock: an ack arriving now must not be overwritten by a stale record.
            await this.ctx.trades.locked('node', trade.tradeId, async () => {
              const fresh = await this.ctx.trades.require<NodeTradeData>('node', trade.tradeId)
              if (fresh.state === 'finalized') await this.ctx.trades.update(fresh, { resultDropped: 'retention' })
            })
            await this.forgetTask(task.taskId)
            log.info('dropped an unacknowledged result after its retention', { tradeId: trade.tradeId, deadline: trade.data.deadline })
          }
        }
        continue
      }
      const p = this.pending.get(task.taskId)
      // A task found after a restart gets a full TTL from now.
      // Nothing proves it was paid for: it counts as free.
      if (p === undefined) { this.pending.set(task.taskId, { peer: '', since: Date.now(), paid: false }); continue }
      if (Date.now() - p.since > PENDING_TASK_TTL_MS) {
        await this.enclave.dropTask(task.taskId)
        this.pending.delete(task.taskId)
        log.debug('dropped a task no trade took up', { taskId: task.taskId })
      }
    }
  }

  /**
   * A seller declined the trade while it was open (before any commitment): DTMC holds our fee for
   * DECLINE_NODE_CLAIM_WINDOW, paid on the decliner's acknowledgement of our receipt, which it sent us before our
   * enclave could run (test/attacks/decline-after-run.test.ts). Without that ack (it declined before delivering to
   * us) there is nothing to claim: the fee goes back to the buyer.
   */
  private async claimRun (t: TradeRecord<NodeTradeData>): Promise<void> {
    const claims = await this.ctx.chain.dtmc.claimsOf(t.tradeId)
    if (!claims.nodesHeld.includes(t.data.nodeIndex) || await chainTime(this.ctx.chain) > claims.nodeUntil) return
    const ack = await this.ctx.store.meta.get(sellerAckKey(t.tradeId, claims.decliner)) as string | undefined
    if (ack === undefined) return
    const { sellers } = await tradeParties(this.ctx.chain, t.tradeId, tradeFromBlock(this.ctx, t.data.openedBlock))
    try {
      await this.ctx.chain.dtmc.claimRun(t.tradeId, t.data.nodeIndex, sellers.map(x => x.commitment), ack, t.data.terms)
      log.info('run fee claimed with the declining seller\'s acknowledgement', { tradeId: t.tradeId, seller: claims.decliner })
    } catch (err) {
      if (!(err instanceof ChainRevertError)) throw err
      log.warn('run claim refused', { tradeId: t.tradeId, error: err.errorName })
    }
  }

  private async forgetSellerAcks (tradeId: string, sellers: number): Promise<void> {
    for (let i = 0; i < sellers; i++) await this.ctx.store.meta.delete(sellerAckKey(tradeId, i))
  }

  private async forgetTask (taskId: string): Promise<void> {
    await this.enclave.dropTask(taskId).catch((err: unknown) => { log.warn('could not drop a finished task', { taskId, err: err as Error }) })
  }

  private get pricePerGas (): bigint { return BigInt(this.ctx.options.trade.nodePricePerGas) }
  private get maxGas (): bigint { return BigInt(this.ctx.options.trade.nodeMaxGas) }

  /** Step 1, Register: peer id, enclave measurement and prices in CISC (again only when one changed). */
  private async register (): Promise<void> {
    const r = await this.ctx.chain.cisc.node(this.ctx.keys.ethAddress)
    if (r !== null && r.peerId === this.ctx.p2p.peerId && r.measurement.toLowerCase() === this.enclave.measurement.toLowerCase() &&
      r.pricePerGas === this.pricePerGas && r.maxGas === this.maxGas) return
    await this.ctx.chain.cisc.registerNode({ peerId: this.ctx.p2p.peerId, measurement: this.enclave.measurement, pricePerGas: this.pricePerGas, maxGas: this.maxGas })
    log.info('registered as trusted node in CISC', { measurement: this.enclave.measurement })
  }

  private offerFor (d: Demand): Offer | null {
    if (!this.booted || this.enclaveBuildChanged) return null
    if (d.nodePrice < this.pricePerGas || d.chainId !== this.ctx.network.chainId) return null
    // Every node runs with exactly the trade's gas cap: a node that would have to lower it does not offer.
    const gasCap = tradeGasCapOf(d.nodePrice, d.nodeCap)
    if (gasCap > this.maxGas) {
      log.info('not offering: the demand\'s gas cap is above our maxGas', { demandId: d.demandId, gasCap, maxGas: this.maxGas })
      return null
    }
    return signOffer({ type: 'offer', demandId: d.demandId, kind: 'node', account: this.address, measurement: this.enclave.measurement.toLowerCase() },
      { chainId: d.chainId, dtmc: d.dtmc, peerId: this.ctx.p2p.peerId }, this.ctx.keys.ethWallet.privateKey)
  }

  /**
   * Keeps the price per gas of an offer we sign, before it leaves (so no trade opened on it can come before the
   * record): the node is held to it (priceFor) even after its operator raised the price. Offered twice (before and
   * after a change), the lower price holds: the buyer may open the trade on either offer.
   */
  private async recordOffer (d: Demand): Promise<void> {
    await this.offeredPrices.record(d, this.pricePerGas, d.expiresAt + d.tradeSeconds)
  }

  /**
   * The price per gas a trade is judged by: the one we offered for it (recorded with the trade once we took it up,
   * or still kept from the offer), so that raising the price (a restart with a new nodePricePerGas) does not make
   * the node refuse a trade its buyer opened on our signed offer at the old price; our price now when it is lower
   * (a restart at a lower price serves what pays for itself at it). Only a trade we made no offer for
   * (a buyer that opened it with our quote but without our offer, on terms of its own) is judged by our price now
   * alone: nothing of ours promised it another.
   */
  private async priceFor (view: TradeView, t?: TradeRecord<NodeTradeData>): Promise<bigint> {
    const offered = t?.data.offeredPricePerGas !== undefined ? BigInt(t.data.offeredPricePerGas) : await this.offeredPrices.get(view)
    return judgedPrice(offered, this.pricePerGas)
  }

  /** Step 3, Offers: our enclave for a demand within our price. */
  async onDemand (d: Demand): Promise<void> {
    this.notePaidDemand(d)
    const offer = this.offerFor(d)
    if (offer === null) return
    // The buyer asks for a quote next if it picks this node: its enclave thread boots meanwhile, if it stopped while idle.
    this.enclave.warm()
    await this.recordOffer(d)
    try {
      const accepted = await this.ctx.offer.sendOffer(d.buyerPeer, offer)
      log.info('offered enclave', { demandId: d.demandId, accepted })
    } catch (err) {
      log.debug('offer not delivered', { demandId: d.demandId, err: err as Error })
    }
  }

  async onSolicit (_remote: string, d: Demand): Promise<Offer | null> {
    this.notePaidDemand(d)
    const offer = this.offerFor(d)
    if (offer !== null) {
      this.enclave.warm()
      await this.recordOffer(d)
    }
    return offer
  }

  /**
   * Why the trade's node fee does not pay this node's price per gas for all the gas its enclave may burn, or
   * undefined when it does. The enclave runs with exactly the trade's gasCap, and DTMC pays a node the flat
   * `min(nodePrice × gasCap, nodeCap)` (the min is DTMC's on purpose): a buyer that opens a trade itself may pair a
   * large gasCap with a tiny nodeCap, and nodePrice alone would pass it. A demand this node offers for passes:
   * its gasCap is tradeGasCapOf(nodePrice, nodeCap), so the fee is nodePrice × gasCap, and offerFor wants
   * nodePrice at least our price. `pricePerGas` is the trade's (priceFor): the one we offered it at.
   */
  private underpaid (view: TradeView, pricePerGas: bigint): string | undefined {
    const asked = view.gasCap * pricePerGas
    if (view.nodeFee >= asked) return undefined
    return `the trade pays a node ${view.nodeFee} wei for up to ${view.gasCap} gas; at ${pricePerGas} wei per gas this node asks ${asked}`
  }

  /** Step 6, Checks, the node's before any data enters the enclave: the trade is open on DTMC with this task and this seller. */
  private async checkDelivery (remote: string, req: DataOpen): Promise<DeliveryState> {
    const known = await this.ctx.trades.get<NodeTradeData>('node', req.tradeId)
    // Every read at once (on the delivery's path once per node and seller): the trade, its parties, then the seller's CISC record, and the enclave's tasks; nothing is decided
    // before all are in, and the checks below run in their order on what was read.
    const parties = tradeParties(this.ctx.chain, req.tradeId, tradeFromBlock(this.ctx, known?.data.openedBlock))
    const [view, { sellers, nodes }, tasks, record] = await Promise.all([
      this.ctx.chain.dtmc.trade(req.tradeId), parties, this.enclave.tasks(),
      parties.then(async p => {
        const s = p.sellers.find(x => x.index === req.sellerIndex)
        return s === undefined ? null : await this.ctx.chain.cisc.seller(s.account)
      })
    ])
    if (view === null || view.state !== 'open') throw new RefuseRequest('TradeNotOpen', 'no open trade with this id on DTMC')
    const price = await this.priceFor(view, known)
    if (view.nodePrice < price) throw new RefuseRequest('PriceTooLow', `the trade pays ${view.nodePrice} wei per gas, this node asks ${price}`)
    if (view.gasCap > this.maxGas) throw new RefuseRequest('GasCapTooHigh', `the trade runs with ${view.gasCap} gas, this node's maxGas is ${this.maxGas}`)
    const underpaid = this.underpaid(view, price)
    if (underpaid !== undefined) throw new RefuseRequest('FeeBelowPrice', underpaid)
    if (!nodes.some(n => n.taskId === req.taskId && n.payee === this.address)) throw new RefuseRequest('NotOurTask', 'this task is not ours in the trade')
    const seller = sellers.find(s => s.index === req.sellerIndex)
    if (seller === undefined || seller.commitment !== req.commitment) throw new RefuseRequest('WrongSeller', 'no such seller / commitment in the trade')
    if (record?.peerId !== remote) throw new RefuseRequest('WrongSeller', 'this peer is not the seller registered for that account')
    const task = tasks.find(t => t.taskId === req.taskId)
    if (task === undefined) throw new RefuseRequest('UnknownTask', 'the enclave holds no such task')
    const status = task.sellers.find(s => s.sellerIndex === req.sellerIndex)
    if (status === undefined) return { nextChunk: 0, complete: false }
    return { nextChunk: status.invalid === undefined ? status.nextChunk : 0, complete: status.complete, receipt: status.receipt, acked: status.acked }
  }

  /**
   * Step 10, Result delivery: a result request or ack is for a task of ours in a trade DTMC settled
   * on our result (a buyer cannot get a result without paying for it: a trade refunded for want of
   * a majority delivers nothing), fresh, and signed by the buyer DTMC recorded for the trade:
   * a stranger can neither fetch a result nor make the node drop it.
   */
  private async checkResultMessage (req: ResultMessage): Promise<{ t: TradeRecord<NodeTradeData>, view: TradeView }> {
    const t = await this.ctx.trades.get<NodeTradeData>('node', req.tradeId)
    if (t === undefined || t.data.taskId !== req.taskId) throw new RefuseRequest('UnknownTrade', 'no such task here')
    let signer: string
    try {
      signer = resultMessageSigner(req, { chainId: this.ctx.network.chainId, dtmc: this.ctx.network.contracts.DTMC })
    } catch (err) {
      if (err instanceof ResultRequestInvalidError) throw new RefuseRequest(err.reason === 'stale' ? 'StaleRequest' : 'BadSignature', err.message)
      throw err
    }
    const view = await this.ctx.chain.dtmc.trade(req.tradeId)
    if (view === null) throw new RefuseRequest('UnknownTrade', 'no such trade on DTMC')
    if (signer !== view.buyer.toLowerCase()) throw new RefuseRequest('NotBuyer', 'only the trade\'s buyer may fetch or acknowledge its result')
    if (t.data.resultHash === undefined) throw new RefuseRequest('NotReady', 'the task has not run yet')
    if (view.state !== 'settled' || view.final === null || !view.final.members.includes(t.data.nodeIndex)) {
      throw new RefuseRequest('NotFinal', 'the result is served once DTMC has settled the trade on it')
    }
    return { t, view }
  }

  /** Serves the encrypted result to its buyer as often as asked: serving changes nothing here. */
  private async serveResult (req: ResultMessage): Promise<Uint8Array> {
    const { t, view } = await this.checkResultMessage(req)
    if (t.data.resultDropped !== undefined) {
      throw new RefuseRequest('ResultDropped', t.data.resultDropped === 'acknowledged'
        ? 'the buyer acknowledged this result; the node dropped it'
        : `kept ${resultConstants.RESULT_RETENTION_SECONDS} s past the deadline unacknowledged, then dropped`)
    }
    // The sealed run, asked for with the trade's terms as the run was: the enclave checks a repeat as it checked the
    // first (a private run's epsilon included) before it returns the sealed result.
    const r = await this.enclaveCall(async () => await this.run(t, view))
    // A run without output has, instead, its diagnosis for the buyer (why, encrypted to it; the buyer knows which
    // it gets from the final status on DTMC).
    if (r.resultInfo.status !== ResultStatus.Ok && r.encryptedDiagnosis.length > 0) return r.encryptedDiagnosis
    if (r.encryptedResult.length === 0) throw new RefuseRequest('NoResult', `the run ended with status ${r.resultInfo.status}`)
    return r.encryptedResult
  }

  /**
   * The buyer has its result. The ack is kept apart from the trade record (in `meta`): it may come
   * before this node's tick has recorded the settlement, and that tick's write must not lose it.
   */
  private async takeAck (req: ResultMessage): Promise<void> {
    const { t } = await this.checkResultMessage(req)
    if (t.state === 'delivered') return
    await this.ctx.store.meta.put(ackKey(req.tradeId), true)
    await this.dropAcknowledged(req.tradeId)
  }

  /** A settled trade whose buyer acknowledged its result: `delivered`, and the sealed task (code, keys, data, result) goes. */
  private async dropAcknowledged (tradeId: string): Promise<void> {
    await this.ctx.trades.locked('node', tradeId, async () => {
      const t = await this.ctx.trades.require<NodeTradeData>('node', tradeId)
      if (t.state !== 'finalized' || !await this.ctx.store.meta.has(ackKey(tradeId))) return
      await this.ctx.trades.transition(t, 'delivered', { data: { resultDropped: 'acknowledged' }, note: 'the buyer acknowledged its result' })
      await this.forgetTask(t.data.taskId)
      await this.ctx.store.meta.delete(ackKey(tradeId))
    })
  }

  async tick (): Promise<void> {
    // Nothing the node can do with the enclave before its boot, nor until the daemon restarts once its build changed (logged once, when it was found).
    if (!this.booted || this.enclaveBuildChanged) return
    try {
      await this.reopenEnclaveIfLost()
      await this.discoverTrades()
      // Each trade's step in the background: a run takes up to its budget, and neither this role's
      // other trades nor the daemon's tick (the buyer and seller roles) wait for it. The housekeeping of
      // expired tasks comes after the steps have started: none of them waits for it.
      await advanceActive<NodeTradeData>(this.ctx, 'node', async t => await this.advance(t), log, this.inFlight)
      await this.expirePendingTasks()
      await this.offeredPrices.expire()
    } catch (err) {
      if (err instanceof EnclaveBuildChangedError) this.noteEnclaveFailure(err)
      throw err
    }
  }

  /** Trades DTMC opened with our enclave. */
  private async discoverTrades (): Promise<void> {
    await scanNewTrades(this.ctx, 'node', async (tradeId, openedBlock) => {
      const view = await this.ctx.chain.dtmc.trade(tradeId)
      if (view === null) return
      const tasks = new Set((await this.enclave.tasks()).map(t => t.taskId))
      const { sellers, nodes } = await tradeParties(this.ctx.chain, tradeId, tradeFromBlock(this.ctx, openedBlock))
      const mine = nodes.find(n => n.payee === this.address && tasks.has(n.taskId))
      if (mine === undefined) return
      const privateRun = view.epsilon !== 0n && (await Promise.all(sellers.map(async s => await this.ctx.chain.cisc.offer(s.offerId)))).some(o => o.privateMode)
      const terms = await this.ctx.chain.dtmc.termsDigestOf(tradeId)
      if (terms === null) return // gone again since the view: the next scan sees it if it comes back
      // Kept with the trade: the offer's own record goes when its demand's trades can no longer run.
      const offered = await this.offeredPrices.get(view)
      await this.ctx.trades.create<NodeTradeData>('node', tradeId, 'escrowed', {
        nodeIndex: mine.index, taskId: mine.taskId, enclave: mine.enclave, codeHash: view.codeHash.toLowerCase(), sellers: sellers.length, deadline: view.deadline,
        ...(privateRun && { epsilon: view.epsilon.toString() }),
        ...(openedBlock !== undefined && { openedBlock }),
        ...(offered !== undefined && { offeredPricePerGas: offered.toString() }),
        terms
      }, `chosen as node ${mine.index} of ${nodes.length}${privateRun ? `, private run of epsilon ${view.epsilon} micro` : ''}`)
    })
  }

  private async advance (t: TradeRecord<NodeTradeData>): Promise<void> {
    try {
      await this.step(t)
    } catch (err) {
      if (!(err instanceof TradeTermsChangedError)) throw err
      // Our run was for the terms we took the trade up with: nothing of it goes under others (the result sealed in
      // the enclave is dropped with the task, so it never reaches the buyer either).
      const now = await this.ctx.trades.get<NodeTradeData>('node', t.tradeId) ?? t
      log.warn('the trade was opened again with other terms than the ones we took it up with: refused', { tradeId: t.tradeId })
      await this.ctx.trades.transition(now, 'failed', { reason: 'the trade was opened again (after a reorganisation) with other terms than the ones we took it up with', note: 'refused: opened again with other terms' })
      await this.forgetTask(t.data.taskId)
      await this.forgetSellerAcks(t.tradeId, t.data.sellers)
    }
  }

  private async step (t: TradeRecord<NodeTradeData>): Promise<void> {
    let view = await this.ctx.chain.dtmc.trade(t.tradeId)
    if (view === null) {
      // A reorganisation took the trade's opening away; its buyer opens it again (same id). One that never comes back ends here.
      if (await chainTime(this.ctx.chain) > t.data.deadline) {
        await this.ctx.trades.transition(t, 'failed', { reason: 'the trade left the chain in a reorganisation and was not opened again by its deadline' })
        await this.forgetTask(t.data.taskId)
        await this.forgetSellerAcks(t.tradeId, t.data.sellers)
      }
      return
    }
    if (view.state === 'refunded') await this.claimRun(t)
    if (await collectPayment(this.ctx, t, view)) {
      await this.forgetSellerAcks(t.tradeId, t.data.sellers)
      // The task's sealed code and data are no longer needed unless the buyer still fetches our
      // result (or, when the final run produced no output, its diagnosis): there is none to fetch when
      // the trade was refunded or we were outvoted; and none to keep when the buyer has acknowledged it.
      if (view.state === 'refunded' || view.final?.members.includes(t.data.nodeIndex) !== true) await this.forgetTask(t.data.taskId)
      else await this.dropAcknowledged(t.tradeId)
      return
    }
    let now = await chainTime(this.ctx.chain)
    if (t.state === 'escrowed' || t.state === 'delivering') {
      const task = (await this.enclave.tasks()).find(x => x.taskId === t.data.taskId)
      if (task === undefined) return
      if (readyToRun(task, t.data.sellers)) {
        // On to the run in this same step: the last seller's acknowledgement (or our code) is what it waited for.
        t = await this.ctx.trades.transition(t, 'executing', { note: 'code and all data are in the enclave' })
      } else {
        if (t.state === 'escrowed' && task.sellers.length > 0) await this.ctx.trades.transition(t, 'delivering')
        return
      }
    }
    if (t.state === 'executing') {
      // This step runs in the background (advanceActive's in-flight set): a long run holds up no tick.
      const committed = view.nodes[t.data.nodeIndex]?.committed === true
      if (!committed && await this.giveUpRun(t, now, view.deadline)) return
      const submitted = await this.executeAndCommit(t, view, committed)
      if (submitted === undefined) return
      // Ours may have been the last commitment, which opens the reveals: look at once (the others see it on the
      // next block), with the chain as it is now.
      t = submitted
      view = await this.ctx.chain.dtmc.trade(t.tradeId)
      if (view === null || view.state !== 'open') return
      now = await chainTime(this.ctx.chain)
    }
    // The latest block's time lags the clock on a chain that mines only on demand: the next block is at least now.
    // Our commitment is not on DTMC any more: a reorganisation dropped it. The chain client broadcasts it again;
    // when it cannot, commit again (the run is not repeated: the enclave returns its sealed result).
    if (t.state === 'submitted' && t.data.revealed !== true && view.nodes[t.data.nodeIndex]?.committed !== true && await this.ctx.chain.resubmitDropped() === 0) {
      await this.ctx.trades.transition(t, 'executing', { note: 'our commitment left the chain in a reorganisation: committing again' })
      return
    }
    // Revealed but not on DTMC: a reorganisation dropped the reveal (the chain client broadcasts it again; this is for when it cannot).
    const revealLost = view.nodes[t.data.nodeIndex]?.committed === true && view.nodes[t.data.nodeIndex]?.submitted !== true
    if (t.state === 'submitted' && (t.data.revealed !== true || revealLost) && revealOpen(view, Math.max(now, Math.floor(Date.now() / 1000)))) {
      t = await this.reveal(t, view)
    }
    if (t.state === 'submitted' && (view.nResults === view.nodes.length || now > view.deadline)) {
      await this.finalize(t.tradeId, t.data.terms)
    }
  }

  /**
   * A task whose runs were killed MAX_RUN_ATTEMPTS times, or whose trade's deadline passed, is not
   * run again: the node's part ends (failed), without a result on DTMC, and the enclave forgets it.
   */
  private async giveUpRun (t: TradeRecord<NodeTradeData>, now: number, deadline: number): Promise<boolean> {
    const attempts = t.data.runAttempts ?? 0
    let reason: string | undefined
    if (now > deadline) reason = `the trade's deadline passed before a run finished (${attempts} run${attempts === 1 ? '' : 's'})`
    else if (attempts >= MAX_RUN_ATTEMPTS) reason = `no run finished within its budget in ${attempts} tries: ${t.data.runError ?? 'lost'}`
    if (reason === undefined) return false
    await this.ctx.trades.transition(t, 'failed', { reason, note: 'nothing submitted' })
    log.warn('gave up the task: nothing submitted', { tradeId: t.tradeId, reason })
    await this.forgetTask(t.data.taskId)
    return true
  }

  /**
   * The run with exactly the trade's caps and epsilon (the enclave refuses any other); a repeat returns the sealed
   * result. The epsilon is DTMC's (the trade's view), as CISC charged it: private sellers' data runs only with it.
   * Both caps are DTMC's too: the enclave's output cap is the smallest of the envelope's and the sellers' (each at
   * least the trade's, CISC and the seller check that), so an honest trade runs with exactly DTMC's, and a buyer's
   * envelope with another cap is refused on every node alike instead of splitting them into result groups.
   */
  private async run (t: TradeRecord<NodeTradeData>, view: TradeView): Promise<ExecuteResponse> {
    return await this.enclave.execute(t.data.taskId, {
      sellerCount: t.data.sellers, gasCap: view.gasCap, outputCap: view.outputCap, ...(t.data.epsilon !== undefined && { privacy: { epsilon: view.epsilon } })
    })
  }

  /**
   * Step 8, Execution, then step 9, the commitment: run once in the enclave, commit to the signed result on
   * DTMC once. The result itself stays off chain until every node has committed (or the commit window has
   * passed): then `reveal` shows it, and no node can have copied it. A run killed at its budget is noted
   * (trade record, log) and commits nothing; the next tick tries again, up to MAX_RUN_ATTEMPTS runs in all.
   */
  private async executeAndCommit (t: TradeRecord<NodeTradeData>, view: TradeView, alreadyCommitted: boolean): Promise<TradeRecord<NodeTradeData> | undefined> {
    if (view.gasCap > this.maxGas) {
      // checkDelivery refuses such a trade's data, so this is a trade that cannot run here: we never run with less.
      log.warn('the trade\'s gas cap is above our maxGas: not running', { tradeId: t.tradeId, gasCap: view.gasCap, maxGas: this.maxGas })
      await this.ctx.trades.transition(t, 'failed', { reason: `gas cap ${view.gasCap} above this node's maxGas ${this.maxGas}`, note: 'refused: gas cap above our maxGas' })
      return
    }
    // checkDelivery refuses such a trade's data too: the gas beyond what the fee pays for would be run for nothing.
    // (Once committed, `run` only returns the sealed result: nothing more is burned.)
    const price = alreadyCommitted ? undefined : await this.priceFor(view, t)
    const underpaid = price === undefined ? undefined : this.underpaid(view, price)
    if (underpaid !== undefined) {
      log.warn('the trade\'s node fee does not pay for its gas cap: not running', { tradeId: t.tradeId, nodeFee: view.nodeFee, gasCap: view.gasCap, pricePerGas: price })
      await this.ctx.trades.transition(t, 'failed', { reason: underpaid, note: 'refused: fee below our price' })
      return
    }
    const started = Date.now()
    if (!alreadyCommitted) {
      // Counted before it starts: a run that takes the daemon down with it counts too.
      const attempt = (t.data.runAttempts ?? 0) + 1
      t = await this.ctx.trades.transition(t, 'executing', { data: { runAttempts: attempt }, note: `run ${attempt} of at most ${MAX_RUN_ATTEMPTS} started` })
    }
    let r: ExecuteResponse
    try {
      r = await this.run(t, view)
    } catch (err) {
      if (err instanceof RunOverBudgetError || err instanceof RunFailedError) {
        this.ctx.metrics.enclaveRuns.inc({ status: err instanceof RunOverBudgetError ? 'over_budget' : 'failed' })
        this.ctx.metrics.enclaveRunSeconds.observe({}, (Date.now() - started) / 1000)
        await this.ctx.trades.transition(t, 'executing', { data: { runError: err.message }, note: `run ${t.data.runAttempts ?? 1} ended without a result: ${err.message}` })
        log.warn('run ended without a result, nothing committed', { tradeId: t.tradeId, attempt: t.data.runAttempts, error: err.message })
        return
      }
      // The buyer's code envelope holds another gas or output cap than the trade's on DTMC: no honest node runs
      // it (each would otherwise run with inputs the others may not share), and the trade ends without a majority.
      if (err instanceof CapMismatchError) {
        log.warn('the code envelope\'s caps are not the trade\'s: not running', { tradeId: t.tradeId, err })
        await this.ctx.trades.transition(t, 'failed', { reason: err.message })
        return
      }
      // A late answer to execute (EnclaveTimeoutError) stops nothing: the run goes on in its thread and
      // the next try joins it. Only a closed enclave needs a new one.
      if (err instanceof EnclaveClosedError) this.enclaveLost = true
      if (err instanceof EnclaveBuildChangedError) this.noteEnclaveFailure(err)
      throw err
    }
    log.info('analysis ran in the enclave', { tradeId: t.tradeId, status: r.resultInfo.status, reason: r.reason, ms: Date.now() - started })
    if (r.resultInfo.status !== ResultStatus.Ok) log.warn(explainRun(Number(r.resultInfo.status), view).node, { tradeId: t.tradeId, status: r.resultInfo.status })
    // A repeat (already committed) returns the sealed result of a run counted before. The gas a run used stays
    // inside the encrypted result (on the host it would be a data-dependent channel): the trade's cap is observed.
    if (!alreadyCommitted) {
      this.ctx.metrics.enclaveRuns.inc({ status: RESULT_STATUS_LABEL.get(Number(r.resultInfo.status)) ?? String(r.resultInfo.status) })
      this.ctx.metrics.enclaveRunGasCap.observe({}, Number(view.gasCap))
      this.ctx.metrics.enclaveRunSeconds.observe({}, (Date.now() - started) / 1000)
    }
    const nonce = t.data.commitNonce ?? hexlify(randomBytes(32)).toLowerCase()
    if (!alreadyCommitted) {
      // The nonce is recorded first: a restart between the two steps still reveals what it committed to.
      t = await this.ctx.trades.update(t, { commitNonce: nonce })
      const commitment = resultCommitmentOf(resultDigestOf(networkDomainOf(this.ctx.network), r.resultInfo), t.data.nodeIndex, nonce)
      try {
        await this.ctx.chain.dtmc.commitResult(t.tradeId, t.data.nodeIndex, commitment, t.data.terms).catch(async (err: unknown) => {
          // A reorganisation dropped our commitment before we saw it mined, and another transaction of ours took its
          // nonce: it can never be mined. Committed again, once here (DTMC refuses a second commitment of ours).
          if (!(err instanceof TransactionDroppedError)) throw err
          log.warn('our commitment left the chain in a reorganisation before it was confirmed: committing again', { tradeId: t.tradeId })
          await this.ctx.chain.dtmc.commitResult(t.tradeId, t.data.nodeIndex, commitment, t.data.terms)
        })
      } catch (err) {
        // DTMC settles as soon as a majority is certain, and commitments close when reveals open: a result
        // that comes after that is not needed (and not paid); the next tick sees the outcome.
        if (!(err instanceof ChainRevertError) || !['AlreadyFinalized', 'CommitPhaseClosed'].includes(err.errorName ?? '')) throw err
        log.info('commitments closed before our result', { tradeId: t.tradeId, error: err.errorName })
        t = await this.ctx.trades.update(t, { revealed: true })
      }
    }
    return await this.ctx.trades.transition(t, 'submitted', {
      data: { resultHash: r.resultInfo.resultHash, resultSize: r.resultInfo.resultSize.toString(), status: r.resultInfo.status, reason: r.reason },
      note: `result committed (status ${r.resultInfo.status})`
    })
  }

  /** Step 9, the reveal: our signed result and the nonce of its commitment, once reveals are open. */
  private async reveal (t: TradeRecord<NodeTradeData>, view: TradeView): Promise<TradeRecord<NodeTradeData>> {
    if (view.nodes[t.data.nodeIndex]?.submitted !== true && view.nodes[t.data.nodeIndex]?.committed === true && t.data.commitNonce !== undefined) {
      const r = await this.run(t, view)
      try {
        await this.ctx.chain.dtmc.submitResult(r.resultInfo, t.data.nodeIndex, r.signature, t.data.commitNonce, t.data.terms)
      } catch (err) {
        if (err instanceof ChainRevertError && err.errorName === 'RevealTooEarly') return t // the next tick tries again
        if (!(err instanceof ChainRevertError) || err.errorName !== 'AlreadyFinalized') throw err
        log.info('trade settled before our reveal', { tradeId: t.tradeId })
      }
    }
    return await this.ctx.trades.update(t, { revealed: true })
  }

  /** Step 9, Consensus: when all results are in or the deadline passed, anyone may close the trade. */
  private async finalize (tradeId: string, terms: string | undefined): Promise<void> {
    try {
      await this.ctx.chain.dtmc.finalize(tradeId, terms)
    } catch (err) {
      // Another party finalized first: that is fine, the next tick sees the outcome.
      if (!(err instanceof ChainRevertError)) throw err
      log.debug('finalize not needed', { tradeId, error: err.errorName })
    }
  }

  /**
   * /ready: the enclave answers, or its thread stopped while idle (tasks() answers without it; the next request starts
   * it). A lost one is reopened on the next tick (until then, not ready); a changed build never is (not ready until
   * the daemon restarts).
   */
  async ready (): Promise<boolean> {
    if (!this.booted || this.enclaveLost || this.enclaveBuildChanged || this.stopping) return false
    try {
      await this.enclave.tasks()
      return true
    } catch (err) {
      if (err instanceof EnclaveBuildChangedError) this.noteEnclaveFailure(err)
      return false
    }
  }

  registerMethods (rpc: RpcServer): void {
    rpc.register({
      name: 'node_enclave',
      readOnly: true,
      summary: "This node's enclave: mode, measurement, attestation root, and whether the network accepts it.",
      params: [],
      result: r.object({
        mode: r.string('simulation'),
        measurement: r.bytes32(),
        attestationRoot: r.address(),
        accepted: r.boolean('DTMC accepts this measurement'),
        tasks: r.integer('tasks the enclave holds')
      }),
      errors: ['Unavailable'],
      handler: async () => {
        if (!this.booted) throw appError('Unavailable', 'the node\'s enclave is still booting (the daemon stops with the error if its boot or CISC registration fails)')
        return {
          mode: this.enclave.mode,
          measurement: this.enclave.measurement,
          attestationRoot: this.enclave.attestationRoot,
          accepted: this.ctx.network.measurements.includes(this.enclave.measurement.toLowerCase()),
          tasks: (await this.enclave.tasks()).length
        }
      }
    })
  }
}

/** Where a buyer's ack waits (in `meta`) for this node to record the trade's settlement. */
function ackKey (tradeId: string): string {
  return `node:resultAck:${tradeId.toLowerCase()}`
}

/** Where a seller's acknowledgement of our enclave's delivery receipt waits (in `meta`) for a claimRun. */
function sellerAckKey (tradeId: string, sellerIndex: number): string {
  return `node:sellerAck:${tradeId.toLowerCase()}:${sellerIndex}`
}

/** Whether DTMC accepts reveals: every node has committed, or COMMIT_WINDOW has passed since the first commitment. */
function revealOpen (view: TradeView, now: number): boolean {
  return view.nCommits === view.nodes.length || (view.nCommits > 0 && now >= view.commitStart + COMMIT_WINDOW)
}

/**
 * Code in, and every seller's data either complete with its receipt acknowledged, or refused because the
 * seller's own signed bytes failed (the run then reports "input invalid", blaming that seller).
 */
/**
 * How the node takes an enclave failure: 'lost' (closed or unresponsive: open a new enclave on the sealed state),
 * 'build-changed' (never reopen: the node's registered measurement is the old build's), else undefined (a refusal).
 */
export function enclaveFailureOf (err: unknown): 'lost' | 'build-changed' | undefined {
  if (err instanceof EnclaveBuildChangedError) return 'build-changed'
  if (err instanceof EnclaveClosedError || err instanceof EnclaveTimeoutError) return 'lost'
  return undefined
}

function readyToRun (task: TaskSummary, sellers: number): boolean {
  if (!task.hasCode) return false
  for (let i = 0; i < sellers; i++) {
    const s = task.sellers.find(s => s.sellerIndex === i)
    if (s === undefined || !((s.complete && s.acked) || s.invalid !== undefined)) return false
  }
  return true
}
