// The chain client the daemon uses: typed ethers v6 wrappers over CISC, BDBC and DTMC, built from the
// committed artifacts (contracts/artifacts).
//
//   const chain = await ChainClient.connect({ network, signer: privateKey })
//   await chain.cisc.registerSeller(peerId)
//   const { tradeId } = await chain.dtmc.openTrade({ ... })
//
// Every send waits for its receipt. A revert, before sending (gas estimation) or after mining, becomes a
// ChainRevertError with the contract's custom error name in `.errorName` and its arguments in `.args`.
// Sends from one client are serialised through one queue with a local nonce counter, re-read from the
// chain after any failed send, so concurrent calls never collide on nonces.
import { SdteError, noMetrics, type Counter, type MetricsRegistry, type TradeRole } from '../config/index.ts'
import {
  Contract, Interface, JsonRpcProvider, Network, Wallet, ZeroAddress, ZeroHash, getAddress, id, isError, toBeHex, type Log, type Provider, type Signer,
  type TransactionReceipt, type TransactionRequest, type TransactionResponse
} from 'ethers'
import { tradeIdOf, type Quote, type ResultInfo } from './formats.ts'
import type { ContractAddresses, NetworkFile } from './network.ts'
import { headsUrlOf, subscribeHeads, PUSHED_HEADS_POLL_MS, type HeadSubscription, type HeadsState } from './heads.ts'
// The committed artifacts, imported as JSON: the client never loads the compiler.
import CISC_ARTIFACT from './artifacts/CISC.json' with { type: 'json' }
import BDBC_ARTIFACT from './artifacts/BDBC.json' with { type: 'json' }
import DTMC_ARTIFACT from './artifacts/DTMC.json' with { type: 'json' }

export type ContractName = keyof ContractAddresses

/** ABI and creation bytecode of the three contracts, from contracts/artifacts. */
export const ARTIFACTS: Record<ContractName, { abi: any[], bytecode: string }> = {
  CISC: CISC_ARTIFACT,
  BDBC: BDBC_ARTIFACT,
  DTMC: DTMC_ARTIFACT
}

const ABIS: Record<ContractName, Interface> = {
  CISC: new Interface(ARTIFACTS.CISC.abi),
  BDBC: new Interface(ARTIFACTS.BDBC.abi),
  DTMC: new Interface(ARTIFACTS.DTMC.abi)
}

/**
 * Polls for a transaction's receipt (ethers' own wait() leaves block pollers that reject once the
 * provider is destroyed). Resolves with the receipt whatever its status; throws after `timeoutMs`.
 */
export async function waitForReceipt (provider: Provider, hash: string, timeoutMs = 120_000, pollMs = 1000): Promise<TransactionReceipt> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const receipt = await provider.getTransactionReceipt(hash)
    if (receipt !== null) return receipt
    if (Date.now() > until) throw new ReceiptTimeoutError(`no receipt for ${hash} within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
}

/** Every custom error of the three contracts (DTMC bubbles CISC's up), plus Error(string) and Panic(uint256). */
const ERRORS = new Interface([
  ...new Map(Object.values(ABIS).flatMap(i => i.fragments.filter(f => f.type === 'error').map(f => [f.format('sighash'), f]))).values()
])

/** A transaction or call that reverted: `errorName` is the custom error ("NotBuyer"), `args` its arguments. */
export class ChainRevertError extends SdteError {
  override name = 'ChainRevertError'
  override code = 'ERR_CHAIN_REVERTED'
  readonly errorName: string
  readonly args: unknown[]
  readonly contract: string
  readonly method: string
  readonly data?: string
  readonly txHash?: string

  constructor (contract: string, method: string, errorName: string, args: unknown[], data?: string, txHash?: string) {
    super(`${contract}.${method} reverted: ${errorName}(${args.map(a => String(a)).join(', ')})`)
    this.contract = contract
    this.method = method
    this.errorName = errorName
    this.args = args
    this.data = data
    this.txHash = txHash
  }
}

/** The chain is not the one the network file names, or a contract is missing. */
export class ChainConfigError extends SdteError {
  override name = 'ChainConfigError'
  override code = 'ERR_CHAIN_CONFIG'
}

/** The chain's JSON-RPC endpoint did not answer (refused, reset, timed out, or an HTTP error). */
export class ChainUnavailableError extends SdteError {
  override code = 'ERR_CHAIN_UNAVAILABLE'
}

/** A transaction's receipt did not appear within the time allowed. */
export class ReceiptTimeoutError extends SdteError {
  override code = 'ERR_RECEIPT_TIMEOUT'
}

/**
 * Our transaction left the chain in a reorganisation and cannot come back: its nonce was taken by another
 * transaction of the account (a restart lost the signed one, or another client of the account sent at that
 * nonce). Nothing of it is on the chain: the caller decides whether to send it again (a new transaction).
 */
export class TransactionDroppedError extends SdteError {
  override code = 'ERR_TX_DROPPED'
}

/**
 * A trade was opened again (a reorganisation dropped its opening, and its buyer opened the same id) with other terms
 * than the ones the caller accepted (`DtmcClient.termsDigestOf`): nothing is signed for it under the new ones.
 */
export class TradeTermsChangedError extends SdteError {
  override code = 'ERR_TRADE_TERMS_CHANGED'
  readonly tradeId: string

  constructor (tradeId: string, message = `trade ${tradeId} was opened again with other terms than the ones accepted: nothing is signed under them`) {
    super(message)
    this.tradeId = tradeId
  }
}

/** A write on a client built without a signer (a read-only ChainClient). */
export class NoSignerError extends SdteError {
  override code = 'ERR_NO_SIGNER'
}

/** Connection-level failures (ethers' codes, or Node's system errors) become ChainUnavailableError. */
function unavailable (err: unknown, what: string): unknown {
  const connection = isError(err, 'NETWORK_ERROR') || isError(err, 'SERVER_ERROR') || isError(err, 'TIMEOUT') ||
    (err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string')
  return connection ? new ChainUnavailableError(`${what}: cannot reach the chain: ${(err as Error).message}`, { cause: err }) : err
}

function plain (v: unknown): unknown {
  if (v !== null && typeof v === 'object' && typeof (v as any).toArray === 'function') return (v as any).toArray().map(plain)
  return v
}

/** Decodes revert data into (name, args); undefined when it is not one of ours. */
export function decodeRevert (data: string | undefined): { errorName: string, args: unknown[] } | undefined {
  if (data === undefined || data === '0x' || data.length < 10) return undefined
  try {
    const parsed = ERRORS.parseError(data)
    if (parsed !== null) return { errorName: parsed.name, args: plain(parsed.args) as unknown[] }
  } catch {}
  return undefined
}

function revertData (err: unknown): string | undefined {
  const e = err as any
  for (const d of [e?.data, e?.info?.error?.data, e?.error?.data, e?.info?.error?.data?.data]) {
    if (typeof d === 'string' && d.startsWith('0x')) return d
  }
  return undefined
}

function makeCallException (): Error {
  return Object.assign(new Error('reverted'), { code: 'CALL_EXCEPTION' })
}

function toRevertError (err: unknown, contract: string, method: string, txHash?: string): Error {
  if (!isError(err, 'CALL_EXCEPTION')) return unavailable(err, `${contract}.${method}`) as Error
  const data = revertData(err)
  const decoded = decodeRevert(data)
  if (decoded !== undefined) return new ChainRevertError(contract, method, decoded.errorName, decoded.args, data, txHash)
  return new ChainRevertError(contract, method, 'Reverted', [], data, txHash)
}

/** 25% over a gas estimate. */
function withMargin (gas: bigint): bigint {
  return gas + gas / 4n
}

/**
 * Gas reserved over the estimate for each payout a DTMC call may send: the most one payout can cost, whatever its
 * payee does. DTMC sends with the 2,300-gas stipend: a cold account (2,600) and a value transfer (9,000), then either
 * a new account (25,000: a payee with no code and nothing on it) or a refusal (the whole stipend burnt, 2,300, and
 * the amount credited to a fresh `balanceOf` slot, 22,100), and the `Credited` event (about 2,000): about 38,500,
 * rounded up. The estimate cannot be trusted to have seen what the mined call pays: a payee tells the estimate from
 * the mined call (eth_estimateGas of a call without fees runs at gas price 0) and refuses only in the latter, and a reveal estimated before
 * another one is mined first in the same block becomes the settling one, every payout unseen. A 25 % margin alone
 * ran such settling calls out of gas, every time (test/attacks/payee-refuses-when-mined.test.ts); the reserve also
 * covers the settlement's own writes (the buyer's +1, and a group's unpaid nodes). Unused gas is not paid.
 */
export const PAYOUT_GAS = 40_000n

/**
 * How many payouts DTMC's `method` may send for a trade with `facts` (each gets PAYOUT_GAS): a settlement pays
 * every seller, the final group's nodes and the buyer's rest, a refund the buyer; a claim pays its seller, a run claim
 * its node, a release the buyer, a decline the buyer. Other calls pay nobody.
 */
function payoutsOf (method: string, facts: TradeFacts): number {
  if (method === 'submitResult' || method === 'finalize') return facts.sellers.length + facts.nodes.length + 1
  if (method === 'claimDelivery' || method === 'claimRun' || method === 'releaseUnclaimed' || method === 'declineTrade') return 1
  return 0
}


/**
 * How long (ms) the provider holds a JSON-RPC request to batch it with others: 0, the requests made in the same turn
 * of the event loop (a Promise.all of reads) still go as one batch, and a lone request goes at once. ethers' default
 * (10 ms) made every request wait 10 ms, and a trade's steps make dozens of reads and sends one after the other.
 */
export const RPC_BATCH_STALL_MS = 0

/** Blocks deep a transaction of ours must be before `send` returns it, unless told: 1, as soon as it is mined (the daemon passes its trade.confirmations). */
export const DEFAULT_SEND_CONFIRMATIONS = 1
/**
 * The deepest reorganisation the client (and the roles' event scans) are built to survive: a transaction of
 * ours is watched until it is this many blocks deep, and broadcast again if a reorganisation dropped it.
 */
export const MAX_REORG_DEPTH = 12
/** How often the client looks whether a reorganisation dropped a transaction of ours (ms). */
export const REORG_CHECK_INTERVAL_MS = 1000
/** Most transactions watched at once; past it the oldest stops being watched. */
export const MAX_WATCHED_TRANSACTIONS = 256

/**
 * Our transactions signed again in another's place (TxQueue.broadcastAgain): old hash -> new, the most recent
 * MAX_WATCHED_TRANSACTIONS. A reorganisation back and forth can sign the very bytes of an earlier one again (the same
 * hash): the newest stands for itself, so that no chain of replacements leads back to where it started.
 */
export class ReplacedTransactions {
  private readonly next = new Map<string, string>()

  record (old: string, replacement: string): void {
    this.next.delete(replacement)
    if (replacement !== old) this.next.set(old, replacement)
    if (this.next.size > MAX_WATCHED_TRANSACTIONS) this.next.delete(this.next.keys().next().value!)
  }

  /** The transaction that stands for `hash` now: itself, or the last of its replacements. */
  current (hash: string): string {
    // Bounded whatever the map holds: a hash seen twice ends the walk.
    const seen = new Set<string>([hash])
    for (let next = this.next.get(hash); next !== undefined && !seen.has(next); next = this.next.get(hash)) {
      seen.add(next)
      hash = next
    }
    return hash
  }
}

/** A transaction of ours, signed, kept until it is MAX_REORG_DEPTH deep so that it can be broadcast again. */
interface SentTransaction {
  hash: string
  nonce: number
  raw: string
  /** What was signed (to, data, value): signed again with `rebuild`'s calldata. */
  tx: TransactionRequest
  /**
   * The calldata as it would be sent now: a call that carries a trade's Facts reads them again (a reorganisation
   * may have opened the trade again with other terms, and the Facts signed before would revert, FactsMismatch).
   */
  rebuild?: () => Promise<string>
  /** Gas added over the estimate's margin when it is signed again (TxQueue.broadcast). */
  reserveGas: bigint
}

/**
 * Serialises sends of one account: one nonce counter, re-read from the chain after a failure. It signs the
 * transactions itself and keeps each one signed until it is MAX_REORG_DEPTH blocks deep: a reorganisation that
 * drops it (the competing chain's blocks never had it, and no node has it pending any more) is repaired by
 * broadcasting the very same transaction again (same nonce: it cannot take effect twice).
 */
class TxQueue {
  private tail: Promise<unknown> = Promise.resolve()
  private nonce: number | undefined
  private readonly signer: Signer
  private readonly provider: Provider
  private readonly sent: SentTransaction[] = []
  /** Hash of a transaction of ours → the one signed again in its place (other calldata, same nonce). */
  private readonly replaced = new ReplacedTransactions()
  /** Hashes of ours given up: dropped by a reorganisation, their nonce taken since (they can never be mined). */
  private readonly givenUp = new Set<string>()
  /**
   * Hashes of ours withdrawn, by their trade: dropped by a reorganisation, their trade opened again with terms other
   * than the ones accepted, so an empty transfer took their nonce instead (TxQueue.broadcastAgain).
   */
  private readonly withdrawn = new Map<string, string>()
  private readonly onResubmit: (hash: string) => void
  /** What the last look saw: the head's hash, whether every watched transaction was mined, and the sends so far. */
  private lastHead: string | null = null
  private allMined = false
  private sends = 0
  private sendsAtLastLook = 0

  constructor (signer: Signer, provider: Provider, onResubmit: (hash: string) => void = () => {}) {
    this.signer = signer
    this.provider = provider
    this.onResubmit = onResubmit
  }

  private enqueue<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn)
    this.tail = run.catch(() => {})
    return run
  }

  /**
   * Signs and broadcasts `tx` in turn; resolves once the node accepted it (not mined yet). `rebuild` gives its
   * calldata as it would be now, for a broadcast again after a reorganisation (see SentTransaction); `reserveGas`
   * is added to the gas limit over the estimate's margin (what the estimate may not see: PAYOUT_GAS per payout).
   */
  broadcast (tx: TransactionRequest, rebuild?: () => Promise<string>, reserveGas = 0n): Promise<TransactionResponse> {
    return this.enqueue(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          if (this.nonce === undefined) this.nonce = await this.signer.getNonce('pending')
          // A margin over the estimate: what a call costs can depend on the transactions mined before it
          // in the same block (e.g. which result group leads). Unused gas is not paid.
          const gasLimit = tx.gasLimit ?? withMargin(await this.signer.estimateGas(tx)) + reserveGas
          // Signed here rather than by signer.sendTransaction (which does the same three steps) to keep the
          // signed bytes for a broadcast after a reorganisation.
          const populated = await this.signer.populateTransaction({ ...tx, gasLimit, nonce: this.nonce })
          const raw = await this.signer.signTransaction(populated)
          const response = await this.provider.broadcastTransaction(raw)
          this.sent.push({ hash: response.hash, nonce: this.nonce, raw, tx, reserveGas, ...(rebuild !== undefined && { rebuild }) })
          this.sends++
          if (this.sent.length > MAX_WATCHED_TRANSACTIONS) this.sent.shift()
          this.nonce++
          return response
        } catch (err) {
          this.nonce = undefined
          // Someone else used this account's nonce: re-read it once and try again.
          if (attempt === 0 && (isError(err, 'NONCE_EXPIRED') || isError(err, 'REPLACEMENT_UNDERPRICED'))) continue
          throw err
        }
      }
    })
  }

  /**
   * Our transactions a reorganisation dropped (no receipt and not pending) are broadcast again, oldest nonce
   * first; those MAX_REORG_DEPTH deep stop being watched. One whose nonce another transaction took since
   * (a restart, another client of the account) is given up: the roles' own checks see what it did not do.
   * Returns how many were broadcast again.
   */
  resubmitDropped (): Promise<number> {
    if (this.sent.length === 0) return Promise.resolve(0)
    return this.enqueue(async () => {
      // One read when nothing changed: the same head as at the last look, when every watched one was mined.
      const latest = await this.provider.getBlock('latest')
      if (latest === null) return 0
      if (latest.hash === this.lastHead && this.allMined && this.sends === this.sendsAtLastLook) return 0
      const head = latest.number
      let resubmitted = 0
      let allMined = true
      for (const s of [...this.sent].sort((a, b) => a.nonce - b.nonce)) {
        const receipt = await this.provider.getTransactionReceipt(s.hash)
        if (receipt !== null) {
          if (receipt.blockNumber <= head - MAX_REORG_DEPTH) this.forget(s)
          continue
        }
        allMined = false
        if (await this.provider.getTransaction(s.hash) !== null) continue // still pending
        try {
          if (await this.broadcastAgain(s) === 'withdrawn') continue
          resubmitted++
          this.onResubmit(s.hash)
        } catch (err) {
          if (!isError(err, 'NONCE_EXPIRED') && !isError(err, 'REPLACEMENT_UNDERPRICED')) throw err
          this.forget(s)
          // Told to whoever waits for its receipt (Bound.confirmed), which would otherwise wait for its receipt timeout.
          this.givenUp.add(s.hash)
          if (this.givenUp.size > MAX_WATCHED_TRANSACTIONS) this.givenUp.delete(this.givenUp.values().next().value!)
          this.nonce = undefined
        }
      }
      this.lastHead = latest.hash
      this.allMined = allMined
      this.sendsAtLastLook = this.sends
      return resubmitted
    })
  }

  /**
   * Broadcasts a dropped transaction again: the same signed bytes, unless its calldata would differ now (a call
   * with a trade's Facts, the trade opened again with other terms); then signed again with the calldata of now
   * at the same nonce (so that it still takes effect at most once), as `send` itself retries on FactsMismatch.
   * When that cannot be (the call would revert now), the old one is broadcast: it takes its nonce, so that
   * our later transactions are not held up behind a gap.
   */
  private async broadcastAgain (s: SentTransaction): Promise<'withdrawn' | undefined> {
    let data: string | undefined
    try {
      data = await s.rebuild?.()
    } catch (err) {
      // Its trade was opened again with terms the caller did not accept. Broadcast as it was, it could still be mined
      // when the Facts did not change (another epsilon, gas cap or output cap only): an empty transfer to ourselves
      // takes its nonce instead, so that it never is and our later transactions are not held up behind a gap.
      if (err instanceof TradeTermsChangedError) {
        await this.withdraw(s, err.tradeId)
        return 'withdrawn'
      }
    }
    if (data !== undefined && data !== s.tx.data) {
      const tx = { ...s.tx, data }
      const gasLimit = await this.signer.estimateGas(tx).then(g => withMargin(g) + s.reserveGas, () => null)
      if (gasLimit !== null) {
        const raw = await this.signer.signTransaction(await this.signer.populateTransaction({ ...tx, gasLimit, nonce: s.nonce }))
        const response = await this.provider.broadcastTransaction(raw)
        this.replaced.record(s.hash, response.hash)
        Object.assign(s, { hash: response.hash, raw, tx })
        return
      }
    }
    await this.provider.broadcastTransaction(s.raw)
  }

  /** An empty transfer to ourselves at `s`'s nonce, so that `s` can never be mined; whoever waits for it is told. */
  private async withdraw (s: SentTransaction, tradeId: string): Promise<void> {
    const tx: TransactionRequest = { to: await this.signer.getAddress(), value: 0n, gasLimit: 21_000n }
    const raw = await this.signer.signTransaction(await this.signer.populateTransaction({ ...tx, nonce: s.nonce }))
    const response = await this.provider.broadcastTransaction(raw)
    this.forget(s)
    // Watched as any of ours: another reorganisation that drops it too gets it broadcast again (no gap at its nonce).
    this.sent.push({ hash: response.hash, nonce: s.nonce, raw, tx, reserveGas: 0n })
    if (this.sent.length > MAX_WATCHED_TRANSACTIONS) this.sent.shift()
    this.withdrawn.set(s.hash, tradeId)
    if (this.withdrawn.size > MAX_WATCHED_TRANSACTIONS) this.withdrawn.delete(this.withdrawn.keys().next().value!)
  }

  /** The trade of our transaction `hash` if it was withdrawn: its trade opened again with terms not accepted. */
  withdrawnFor (hash: string): string | undefined {
    return this.withdrawn.get(hash)
  }

  /** The transaction that stands for our transaction `hash` now: itself, or the one signed again in its place. */
  currentHash (hash: string): string {
    return this.replaced.current(hash)
  }

  /** Whether our transaction `hash` was given up: a reorganisation dropped it and its nonce was taken since. */
  wasGivenUp (hash: string): boolean {
    return this.givenUp.has(hash)
  }

  private forget (s: SentTransaction): void {
    const i = this.sent.indexOf(s)
    if (i >= 0) this.sent.splice(i, 1)
  }
}

interface SendContext {
  provider: JsonRpcProvider
  signer?: Signer
  queue?: TxQueue
  receiptTimeoutMs: number
  /** Blocks deep a transaction must be before `send` returns it (1: mined). */
  confirmations: number
  metrics: ChainMetrics
  /** Where log queries start unless told otherwise: the network's deploy block (nothing of ours is older). */
  fromBlock: number
}

/** What the client counts (docs/guide.md, "Metrics"): transactions by outcome, the gas they used, errors. */
interface ChainMetrics {
  /** outcome: mined, reverted (mined, failed), rejected (refused before it was sent: a revert in estimation, a node error). */
  transactions: Counter
  gasUsed: Counter
  /** Failed calls and sends, by the error's name. */
  errors: Counter
  /** Transactions of ours broadcast again after a reorganisation dropped them. */
  resubmitted: Counter
}

function chainMetrics (registry: MetricsRegistry): ChainMetrics {
  return {
    transactions: registry.counter('sdte_chain_transactions_total', 'Transactions sent, by contract, method and outcome (mined, reverted, rejected)', ['contract', 'method', 'outcome']),
    gasUsed: registry.counter('sdte_chain_gas_used_total', 'Gas used by mined transactions (reverted ones too), by contract and method', ['contract', 'method']),
    errors: registry.counter('sdte_chain_errors_total', 'Failed chain calls and transactions, by contract, method and error name', ['contract', 'method', 'error']),
    resubmitted: registry.counter('sdte_chain_resubmitted_total', 'Transactions broadcast again after a chain reorganisation dropped them', [])
  }
}

/** Common base: one contract, its calls and its sends. */
class Bound {
  readonly address: string
  readonly contract: Contract
  readonly iface: Interface
  protected readonly name: ContractName
  protected readonly ctx: SendContext

  constructor (name: ContractName, address: string, ctx: SendContext) {
    this.name = name
    this.address = getAddress(address)
    this.iface = ABIS[name]
    this.ctx = ctx
    this.contract = new Contract(this.address, this.iface, ctx.provider)
  }

  /** A read-only call; reverts become ChainRevertError. */
  protected async call<T = any> (method: string, ...args: unknown[]): Promise<T> {
    try {
      return await this.contract.getFunction(method).staticCall(...args) as T
    } catch (err) {
      throw this.counted(method, toRevertError(err, this.name, method))
    }
  }

  private counted (method: string, err: Error): Error {
    // A revert by its custom error (NothingToWithdraw); ethers' own errors are all named Error, their
    // code (NETWORK_ERROR, TIMEOUT, ...) tells them apart.
    const code = (err as { code?: unknown }).code
    const error = err instanceof ChainRevertError ? err.errorName : err.name === 'Error' && typeof code === 'string' ? code : err.name
    this.ctx.metrics.errors.inc({ contract: this.name, method, error })
    return err
  }

  /**
   * Sends a transaction and waits for its receipt; reverts become ChainRevertError. `rebuild`: its calldata as
   * it would be now, for a broadcast again after a reorganisation (a call that carries a trade's Facts).
   * `reserveGas`: see TxQueue.broadcast.
   */
  protected async send (method: string, args: unknown[], value?: bigint, rebuild?: () => Promise<string>, reserveGas = 0n): Promise<TransactionReceipt> {
    const { signer, queue } = this.ctx
    if (signer === undefined || queue === undefined) throw new NoSignerError(`${this.name}.${method}: this client has no signer`)
    const tx: TransactionRequest = {
      to: this.address,
      data: this.iface.encodeFunctionData(method, args),
      value: value ?? 0n
    }
    let response: TransactionResponse
    try {
      response = await queue.broadcast(tx, rebuild, reserveGas) // gas estimation inside catches most reverts before sending
    } catch (err) {
      this.ctx.metrics.transactions.inc({ contract: this.name, method, outcome: 'rejected' })
      throw this.counted(method, toRevertError(err, this.name, method))
    }
    let receipt: TransactionReceipt
    try {
      receipt = await this.confirmed(response.hash)
      if (receipt.hash !== response.hash) tx.data = (await this.ctx.provider.getTransaction(receipt.hash))?.data ?? tx.data
    } catch (err) {
      throw this.counted(method, err as Error)
    }
    this.ctx.metrics.transactions.inc({ contract: this.name, method, outcome: receipt.status === 1 ? 'mined' : 'reverted' })
    this.ctx.metrics.gasUsed.inc({ contract: this.name, method }, Number(receipt.gasUsed))
    if (receipt.status !== 1) {
      // Mined but reverted: replay it on the state before its block to learn why (exact when it was the
      // block's only transaction of this account; otherwise also try the state after the block).
      const replay = async (blockTag: number): Promise<unknown> =>
        await this.ctx.provider.call({ ...tx, from: response.from, blockTag }).then(() => undefined, (e: unknown) => e)
      const why = (await replay(receipt.blockNumber - 1)) ?? (await replay(receipt.blockNumber))
      throw this.counted(method, toRevertError(why ?? makeCallException(), this.name, method, response.hash))
    }
    return receipt
  }

  /**
   * The receipt of our transaction `hash` once it is `confirmations` blocks deep and still in the chain: one that
   * a reorganisation dropped meanwhile is broadcast again (the same signed transaction) and waited for again.
   * One that cannot be broadcast again (TxQueue gave it up: its nonce was taken) throws TransactionDroppedError
   * at once: its receipt will never come, and the caller's repair should not wait for the receipt timeout.
   */
  private async confirmed (hash: string): Promise<TransactionReceipt> {
    const { provider, confirmations, receiptTimeoutMs, queue } = this.ctx
    const until = Date.now() + receiptTimeoutMs
    const poll = provider.pollingInterval
    for (;;) {
      hash = queue?.currentHash(hash) ?? hash // signed again in its place with the Facts of now (TxQueue.broadcastAgain)
      // Read before the receipt: given up and still without a receipt means it is not mined and never will be
      // (given up only once its nonce was taken; one mined just before, refused as "nonce too low", has its receipt).
      const givenUp = queue?.wasGivenUp(hash) === true
      const withdrawnFor = queue?.withdrawnFor(hash)
      const receipt = await provider.getTransactionReceipt(hash)
      if (receipt === null) {
        if (withdrawnFor !== undefined) throw new TradeTermsChangedError(withdrawnFor, `${hash} left the chain in a reorganisation, and its trade ${withdrawnFor} was opened again with other terms than the ones accepted: withdrawn, not signed again`)
        if (givenUp) throw new TransactionDroppedError(`${hash} left the chain in a reorganisation and its nonce was taken by another transaction: it cannot be mined`)
        if (Date.now() > until) throw new ReceiptTimeoutError(`no receipt for ${hash} within ${receiptTimeoutMs} ms`)
        await new Promise(resolve => setTimeout(resolve, poll))
        continue
      }
      if (confirmations <= 1) return receipt
      while (await provider.getBlockNumber() < receipt.blockNumber + confirmations - 1) {
        if (Date.now() > until) throw new ReceiptTimeoutError(`${hash} not ${confirmations} blocks deep within ${receiptTimeoutMs} ms`)
        await new Promise(resolve => setTimeout(resolve, poll))
      }
      const again = await provider.getTransactionReceipt(hash)
      if (again !== null && again.blockHash === receipt.blockHash) return again
      await queue?.resubmitDropped()
    }
  }

  /** The decoded events of this contract in a receipt. */
  eventsIn (receipt: TransactionReceipt, eventName?: string): ChainEvent[] {
    return decodeLogs(receipt.logs, { [this.address]: this.name })
      .filter(e => eventName === undefined || e.name === eventName)
  }
}

// ---- CISC ----

export interface SellerRecord {
  address: string
  peerId: string
  registeredAt: number
  ratingCount: number
  ratingSum: number
}

export interface NodeRecord {
  address: string
  peerId: string
  measurement: string
  pricePerGas: bigint
  maxGas: bigint
  registeredAt: number
}

/** CISC.EPSILON_UNIT: epsilon is counted in integer micro-epsilon on chain, in demands and in the enclave. */
export const EPSILON_UNIT = 1_000_000n
/** CISC.MAX_CLAMPS: most clamped columns a private offer declares. */
export const MAX_CLAMPS = 16

/**
 * A private offer's bound on one CSV column (CISC.Clamp): each record's value, read at `decimals` digits of
 * fraction as the enclave's CSV parser reads it, is clamped into [lower, upper] before a private mechanism sees it.
 */
export interface Clamp {
  column: number
  decimals: number
  lower: bigint
  upper: bigint
}

/** A dataset's terms in CISC. Deny by default: no code runs unless listed here, `anyCode` or `privateMode` is chosen. */
export interface DatasetPolicy {
  /** Code hashes allowed to run on the data (at most 16); must be empty with `anyCode`. */
  allowedCodeHashes: string[]
  /** The seller's explicit choice: any code may run on the data. */
  anyCode: boolean
  /** Largest output (bytes) a trade on the offer may set. */
  outputCap: bigint
  /** Least wei per output byte a trade on the offer pays this seller (DTMC refuses a trade below it). */
  minOutputPrice: bigint
  /** The buyers that may open a trade on the offer (at most 16); absent or empty: any buyer. */
  allowedBuyers?: string[]
  /** The most trades the offer joins; absent or 0: no maximum. */
  maxTrades?: number
  /** Unix seconds from which no trade opens on the offer; absent or 0: never. */
  expiresAt?: number
  /** Any analysis, through the enclave's private mechanisms only, under `epsilonBudget` (needs `clamps`). */
  privateMode?: boolean
  /** privateMode: the epsilon all trades on the offer may spend together, in micro-epsilon (EPSILON_UNIT); else 0. */
  epsilonBudget?: bigint
  /** privateMode: 1..MAX_CLAMPS column bounds (only in the DatasetPrivate event); else none. */
  clamps?: Clamp[]
}

export interface OfferRecord {
  offerId: bigint
  seller: string
  tag: string
  size: bigint
  unitPrice: bigint
  commitment: string
  outputCap: bigint
  minOutputPrice: bigint
  active: boolean
  anyCode: boolean
  /** How many buyers the offer names; 0: open to any buyer. */
  buyerCount: number
  /** 0: no maximum. */
  maxTrades: number
  /** Trades opened on the offer, counted when maxTrades is set. */
  trades: number
  /** 0: never. */
  expiresAt: number
  privateMode: boolean
  /** Micro-epsilon; 0 unless privateMode. */
  epsilonBudget: bigint
  /** Micro-epsilon charged by the trades opened on the offer so far, less what DTMC gave back (trades whose data no enclave received). */
  epsilonSpent: bigint
  /** Filled from the DatasetListed event by `offersByTag`; the contract keeps only a lookup. */
  allowedCodeHashes?: string[]
}

export interface Feedback {
  tradeId: string
  resultHash: string
  resultSize: bigint
  score: number
  status: number
  ratedAt: number
  comment: string
}

/** Most ratings `CiscClient.feedback` returns at once. */
export const MAX_FEEDBACK_PAGE = 100

export class CiscClient extends Bound {
  constructor (address: string, ctx: SendContext) { super('CISC', address, ctx) }

  async registerSeller (peerId: string): Promise<TransactionReceipt> {
    return await this.send('registerSeller', [peerId])
  }

  async registerNode (p: { peerId: string, measurement: string, pricePerGas: bigint, maxGas: bigint }): Promise<TransactionReceipt> {
    return await this.send('registerNode', [p.peerId, p.measurement, p.pricePerGas, p.maxGas])
  }

  /** Lists a dataset; returns the new offer id. */
  async listDataset (p: { tag: string, size: bigint, unitPrice: bigint, commitment: string, policy: DatasetPolicy }): Promise<{ offerId: bigint, receipt: TransactionReceipt }> {
    const receipt = await this.send('listDataset', [p.tag, p.size, p.unitPrice, p.commitment, [
      p.policy.allowedCodeHashes, p.policy.anyCode, p.policy.outputCap, p.policy.minOutputPrice, p.policy.allowedBuyers ?? [], p.policy.maxTrades ?? 0, p.policy.expiresAt ?? 0,
      p.policy.privateMode ?? false, p.policy.epsilonBudget ?? 0n, (p.policy.clamps ?? []).map(c => [c.column, c.decimals, c.lower, c.upper])
    ]])
    const [event] = this.eventsIn(receipt, 'DatasetListed')
    return { offerId: event.args.offerId as bigint, receipt }
  }

  async delistDataset (offerId: bigint): Promise<TransactionReceipt> {
    return await this.send('delistDataset', [offerId])
  }

  /** The seller's record, or null when it never registered. */
  async seller (address: string): Promise<SellerRecord | null> {
    const s = await this.call('seller', address)
    if (s.registeredAt === 0n) return null
    return { address: getAddress(address), peerId: s.peerId, registeredAt: Number(s.registeredAt), ratingCount: Number(s.ratingCount), ratingSum: Number(s.ratingSum) }
  }

  /** The node's record, or null when it never registered. */
  async node (address: string): Promise<NodeRecord | null> {
    const n = await this.call('node', address)
    if (n.registeredAt === 0n) return null
    return { address: getAddress(address), peerId: n.peerId, measurement: n.measurement, pricePerGas: n.pricePerGas, maxGas: n.maxGas, registeredAt: Number(n.registeredAt) }
  }

  async offer (offerId: bigint): Promise<OfferRecord> {
    const o = await this.call('offer', offerId)
    return { offerId, seller: o.seller, tag: o.tag, size: o.size, unitPrice: o.unitPrice, commitment: o.commitment, outputCap: o.outputCap, minOutputPrice: o.minOutputPrice, active: o.active,
      anyCode: o.anyCode, buyerCount: Number(o.buyerCount), maxTrades: Number(o.maxTrades), trades: Number(o.trades), expiresAt: Number(o.expiresAt),
      privateMode: o.privateMode, epsilonBudget: o.epsilonBudget, epsilonSpent: o.epsilonSpent
    }
  }

  /** What is left of a private offer's epsilon budget (micro-epsilon); 0n for any other offer. */
  async remainingBudget (offerId: bigint): Promise<bigint> {
    return await this.call('remainingBudget', offerId)
  }

  /** A private offer's clamps, from its DatasetPrivate event (CISC does not store them); [] for any other offer. */
  async clampsOf (offerId: bigint, fromBlock = this.ctx.fromBlock): Promise<Clamp[]> {
    const [log] = await this.contract.queryFilter(this.contract.filters.DatasetPrivate(offerId), fromBlock)
    if (log === undefined) return []
    const e = this.iface.parseLog(log)!
    return (e.args.clamps as any[]).map(c => ({ column: Number(c.column), decimals: Number(c.decimals), lower: c.lower as bigint, upper: c.upper as bigint }))
  }

  async offerCount (): Promise<bigint> {
    return await this.call('offerCount')
  }

  async isCodeAllowed (offerId: bigint, codeHash: string): Promise<boolean> {
    return await this.call('isCodeAllowed', offerId, codeHash)
  }

  async isBuyerAllowed (offerId: bigint, buyer: string): Promise<boolean> {
    return await this.call('isBuyerAllowed', offerId, buyer)
  }

  /** Offers ever listed under `tag` (active or not), with their allowed code hashes, oldest first. */
  async offersByTag (tag: string, fromBlock = this.ctx.fromBlock): Promise<OfferRecord[]> {
    const filter = this.contract.filters.DatasetListed(null, null, tagHashOf(tag))
    const logs = await this.contract.queryFilter(filter, fromBlock)
    const out: OfferRecord[] = []
    for (const log of logs) {
      const e = this.iface.parseLog(log)!
      const offer = await this.offer(e.args.offerId as bigint)
      out.push({ ...offer, allowedCodeHashes: plain(e.args.allowedCodeHashes) as string[] })
    }
    return out
  }

  /** Every rating of `seller`, oldest first, from the FeedbackRecorded log (CISC keeps only the count and sum). */
  private async feedbackLogs (seller: string, fromBlock: number): Promise<Log[]> {
    return await this.contract.queryFilter(this.contract.filters.FeedbackRecorded(seller), fromBlock) as Log[]
  }

  async feedbackCount (seller: string, fromBlock = this.ctx.fromBlock): Promise<number> {
    return (await this.feedbackLogs(seller, fromBlock)).length
  }

  /** A page of a seller's feedback (at most MAX_FEEDBACK_PAGE), oldest first; ratedAt is its block's timestamp. */
  async feedback (seller: string, offset = 0, limit = MAX_FEEDBACK_PAGE, fromBlock = this.ctx.fromBlock): Promise<Feedback[]> {
    const logs = (await this.feedbackLogs(seller, fromBlock)).slice(offset, offset + Math.min(limit, MAX_FEEDBACK_PAGE))
    const out: Feedback[] = []
    for (const log of logs) {
      const e = this.iface.parseLog(log)!
      const block = await this.ctx.provider.getBlock(log.blockNumber)
      out.push({
        tradeId: e.args.tradeId, resultHash: e.args.resultHash, resultSize: e.args.resultSize, score: Number(e.args.score),
        status: Number(e.args.status), ratedAt: block?.timestamp ?? 0, comment: e.args.comment
      })
    }
    return out
  }
}

/** The indexed topic of a dataset tag in DatasetListed: keccak256 of its UTF-8 bytes. */
export function tagHashOf (tag: string): string {
  return id(tag)
}

// ---- BDBC ----

export interface DemandRecord { buyer: string, demandHash: string, blockNumber: number, txHash: string }

export class BdbcClient extends Bound {
  constructor (address: string, ctx: SendContext) { super('BDBC', address, ctx) }

  /** Puts a gossiped demand's hash on the record, with the sender as its buyer. */
  async postDemand (demandHash: string): Promise<TransactionReceipt> {
    return await this.send('postDemand', [demandHash])
  }

  /** Demands on the record, optionally of one buyer or one hash, optionally up to a block (inclusive). */
  async demands (q: { buyer?: string, demandHash?: string, fromBlock?: number, toBlock?: number } = {}): Promise<DemandRecord[]> {
    const logs = await this.contract.queryFilter(this.contract.filters.DemandPosted(q.buyer ?? null, q.demandHash ?? null), q.fromBlock ?? this.ctx.fromBlock, q.toBlock)
    return logs.map(log => {
      const e = this.iface.parseLog(log)!
      return { buyer: e.args.buyer, demandHash: e.args.demandHash, blockNumber: log.blockNumber, txHash: log.transactionHash }
    })
  }
}

// ---- DTMC ----

export const TradeState = { None: 0, Open: 1, Settled: 2, Refunded: 3 } as const
export type TradeStateName = 'open' | 'settled' | 'refunded'
const STATE_NAMES: Record<number, TradeStateName> = { 1: 'open', 2: 'settled', 3: 'refunded' }

/** The constants DTMC bounds every trade with. */
export const MAX_SELLERS = 8
export const MAX_NODES = 9
/** DTMC.MAX_TRADE_DURATION: the latest deadline a trade may set, in seconds after the block that opens it. */
export const MAX_TRADE_DURATION = 7 * 24 * 3600
/** DTMC.CLAIM_WINDOW: how long after a refund (or an "input invalid" settlement) sellers may claim their data fee with a receipt. */
export const CLAIM_WINDOW = 3 * 24 * 3600
/** DTMC.DECLINE_NODE_CLAIM_WINDOW: how long after an open trade's decline its nodes may claim their fee (claimRun). */
export const DECLINE_NODE_CLAIM_WINDOW = 3600
/** DTMC.COMMIT_WINDOW: seconds after a trade's first result commitment before reveals open without every node's. */
export const COMMIT_WINDOW = 10 * 60

export interface TradeTerms {
  salt: string
  /** keccak256 of the demand's dataset tag (tagHashOf): every offer of the trade must be listed under it. */
  tagHash: string
  codeHash: string
  /** unix seconds, at most MAX_TRADE_DURATION after the opening block; results are accepted up to and including it */
  deadline: number | bigint
  sellerCap: bigint
  nodePrice: bigint
  nodeCap: bigint
  outputPrice: bigint
  outputCap: bigint
  /** The enclave gas every node runs the analysis with, exactly (the code envelope holds the same); a node is paid min(nodePrice × gasCap, nodeCap). */
  gasCap: bigint
  /** Micro-epsilon charged to every private offer of the trade (CISC refuses 0 there); absent or 0n: none. */
  epsilon?: bigint
}

export interface OpenTradeParams extends TradeTerms {
  offerIds: bigint[]
  nodes: Array<{ payee: string, quote: Quote }>
  /** The value to send; default (and the only one DTMC accepts): depositOf the terms. */
  deposit?: bigint
}

/**
 * The exact deposit openTrade requires: sellers × (sellerCap + outputPrice × outputCap) + nodes × nodeCap
 * (the output price is paid to every seller, not shared).
 */
export function depositOf (p: { sellers: number, nodes: number, sellerCap: bigint, nodeCap: bigint, outputPrice: bigint, outputCap: bigint }): bigint {
  return BigInt(p.sellers) * (p.sellerCap + p.outputPrice * p.outputCap) + BigInt(p.nodes) * p.nodeCap
}

export interface ResultGroup {
  key: string
  resultHash: string
  resultSize: bigint
  status: number
  count: number
  /** indices of the nodes that reported this result */
  members: number[]
}

export interface TradeView {
  tradeId: string
  buyer: string
  state: TradeStateName
  deadline: number
  nResults: number
  codeHash: string
  inputHash: string
  /** From the trade's TradeOpened event (DTMC stores only the hash of buyer, codeHash, inputHash, nodeFee, outputPrice and deposit). */
  nodePrice: bigint
  nodeCap: bigint
  /** What each node of the final group is paid: min(nodePrice × gasCap, nodeCap). */
  nodeFee: bigint
  outputPrice: bigint
  outputCap: bigint
  gasCap: bigint
  /** Micro-epsilon the trade declared, from its TradePrivate event (DTMC does not store it); 0n: none. */
  epsilon: bigint
  /** Result commitments so far, and when the first came (unix seconds; 0 before). */
  nCommits: number
  commitStart: number
  deposit: bigint
  sellers: Array<{ account: string, fee: bigint, rated: boolean }>
  nodes: Array<{ payee: string, enclave: string, committed: boolean, submitted: boolean, group: number | null }>
  groups: ResultGroup[]
  /** The final result when settled. */
  final: ResultGroup | null
}

/** Most trades whose opening terms (read once from their TradeOpened event) a DtmcClient keeps; the oldest goes first. */
export const NODE_TERMS_CACHE_SIZE = 1024

/**
 * DTMC's `Facts` of a trade: fixed at opening, stored on chain only as their keccak256, passed back in calldata by
 * submitResult, finalize, claimDelivery, releaseUnclaimed and rate (DTMC checks them against the hash).
 */
export interface TradeFacts {
  buyer: string
  outputPrice: bigint
  nodeFee: bigint
  deposit: bigint
  codeHash: string
  inputHash: string
  /** In the trade's node order (from its TradeNode events). */
  nodes: Array<{ payee: string, enclave: string }>
  /** In the trade's seller order, with each data fee (from its TradeSeller events). */
  sellers: Array<{ account: string, fee: bigint }>
}

/** The Facts as DTMC's ABI takes them. */
export function factsTupleOf (f: TradeFacts): unknown[] {
  return [f.buyer, f.outputPrice, f.nodeFee, f.deposit, f.codeHash, f.inputHash, f.nodes.map(n => [n.payee, n.enclave]), f.sellers.map(x => [x.account, x.fee])]
}

const NO_FACTS: TradeFacts = { buyer: ZeroAddress, outputPrice: 0n, nodeFee: 0n, deposit: 0n, codeHash: ZeroHash, inputHash: ZeroHash, nodes: [], sellers: [] }

/** What a trade's TradeOpened and TradePrivate events say and DTMC does not store (they never change). */
interface OpeningTerms {
  facts: TradeFacts
  nodePrice: bigint
  nodeCap: bigint
  gasCap: bigint
  epsilon: bigint
  outputCap: bigint
}

/**
 * What a node or a seller accepted of a trade, as one word: every term of its opening that what it is paid, what its
 * run does or what CISC charges depends on (the Facts: buyer, prices, fees, deposit, code, input, nodes, sellers; and
 * nodePrice, nodeCap, gasCap, epsilon, outputCap). Not the deadline: a buyer that opens its vanished trade again with
 * the same terms (buyer/escrow.ts reopenVanishedEscrow) gives it a new one, and nobody is paid by it.
 */
function termsDigest (o: OpeningTerms): string {
  const terms = [factsTupleOf(o.facts), o.nodePrice, o.nodeCap, o.gasCap, o.epsilon, o.outputCap]
  return id(JSON.stringify(terms, (_, v: unknown) => typeof v === 'bigint' ? v.toString() : typeof v === 'string' ? v.toLowerCase() : v))
}

export class DtmcClient extends Bound {
  /** tradeId → what its TradeOpened and TradePrivate events say (DTMC keeps only the hash of the Facts). */
  private readonly opening = new Map<string, OpeningTerms>()

  constructor (address: string, ctx: SendContext) { super('DTMC', address, ctx) }

  /** A trade's Facts and node terms from its TradeOpened event, and its epsilon from its TradePrivate event, if any (both indexed by tradeId). */
  private async openingOf (tradeId: string): Promise<OpeningTerms> {
    const terms = await this.openingOrNull(tradeId)
    if (terms === null) throw new ChainUnavailableError(`DTMC: no TradeOpened event for trade ${tradeId} (a node without logs?)`)
    return terms
  }

  private async openingOrNull (tradeId: string): Promise<OpeningTerms | null> {
    tradeId = tradeId.toLowerCase()
    const cached = this.opening.get(tradeId)
    if (cached !== undefined) return cached
    // One query for the four kinds (a topic list), and only the logs of the transaction that opened the trade: the
    // Facts come from one opening at one block, never from two that a reorganisation between reads would mix.
    const kinds = ['TradeOpened', 'TradePrivate', 'TradeNode', 'TradeSeller'].map(e => this.iface.getEvent(e)!.topicHash)
    const logs = await this.ctx.provider.getLogs({ address: this.address, topics: [kinds, tradeId], fromBlock: this.ctx.fromBlock, toBlock: 'latest' })
    const log = logs.findLast(l => l.topics[0] === kinds[0])
    if (log === undefined) return null
    const ofOpening = logs.filter(l => l.transactionHash === log.transactionHash && l.blockHash === log.blockHash)
    const privateLog = ofOpening.find(l => l.topics[0] === kinds[1])
    const nodeLogs = ofOpening.filter(l => l.topics[0] === kinds[2])
    const sellerLogs = ofOpening.filter(l => l.topics[0] === kinds[3])
    const nodes: TradeFacts['nodes'] = []
    for (const l of nodeLogs) {
      const n = this.iface.parseLog(l)!.args
      nodes[Number(n.index)] = { payee: n.payee as string, enclave: n.enclave as string }
    }
    const sellers: TradeFacts['sellers'] = []
    for (const l of sellerLogs) {
      const x = this.iface.parseLog(l)!.args
      sellers[Number(x.index)] = { account: x.seller as string, fee: x.fee as bigint }
    }
    const a = this.iface.parseLog(log)!.args
    const epsilon = privateLog === undefined ? 0n : this.iface.parseLog(privateLog)!.args.epsilon as bigint
    const nodePrice = a.nodePrice as bigint
    const nodeCap = a.nodeCap as bigint
    const gasCap = a.gasCap as bigint
    const nodeFee = nodePrice * gasCap > nodeCap ? nodeCap : nodePrice * gasCap
    const facts = { buyer: a.buyer as string, outputPrice: a.outputPrice as bigint, nodeFee, deposit: a.deposit as bigint, codeHash: a.codeHash as string, inputHash: a.inputHash as string, nodes, sellers }
    const terms = { facts, nodePrice, nodeCap, gasCap, epsilon, outputCap: a.outputCap as bigint }
    if (this.opening.size >= NODE_TERMS_CACHE_SIZE) this.opening.delete(this.opening.keys().next().value!)
    this.opening.set(tradeId, terms)
    return terms
  }

  /** The trade's Facts, as DTMC's calls take them. */
  async factsOf (tradeId: string): Promise<TradeFacts> {
    return (await this.openingOf(tradeId)).facts
  }

  /**
   * The digest of the trade's terms as it is open now (see termsDigest), or null when it is not: what a node or a
   * seller records when it takes the trade up, and passes back as `accepted` to the calls it signs for it. Read from
   * the chain, not the cache: a reorganisation may have opened the trade again with other terms since.
   */
  async termsDigestOf (tradeId: string): Promise<string | null> {
    this.opening.delete(tradeId.toLowerCase())
    const terms = await this.openingOrNull(tradeId)
    return terms === null ? null : termsDigest(terms)
  }

  /**
   * Sends `method` with the trade's Facts appended to `args`, with PAYOUT_GAS reserved per payout it may send.
   * On FactsMismatch (a reorganisation mined the trade's opening again with other terms after we cached them) it
   * reads them again from the chain and retries once. With `accepted` (termsDigestOf when the caller took the trade
   * up) it signs only under those terms, at the first send, the retry and a broadcast again after a reorganisation:
   * a trade opened again with others throws TradeTermsChangedError (and its dropped transaction is withdrawn).
   */
  private async sendWithFacts (tradeId: string, method: string, args: unknown[], accepted?: string): Promise<TransactionReceipt> {
    // No TradeOpened event: zero Facts, so that DTMC reports why (UnknownTrade; FactsMismatch when only our logs lack it).
    const factsNow = async (): Promise<TradeFacts> => {
      // Read anew when the caller holds us to terms: cached, a trade opened again with the same Facts but another
      // gas cap, output cap or epsilon would pass (DTMC does not hash those) and be signed for.
      if (accepted !== undefined) this.opening.delete(tradeId.toLowerCase())
      const opening = await this.openingOrNull(tradeId)
      if (opening !== null && accepted !== undefined && termsDigest(opening) !== accepted) throw new TradeTermsChangedError(tradeId.toLowerCase())
      return opening?.facts ?? NO_FACTS
    }
    // For a broadcast again after a reorganisation: the Facts read again, the trade may have been opened again.
    const rebuild = async (): Promise<string> => {
      this.opening.delete(tradeId.toLowerCase())
      return this.iface.encodeFunctionData(method, [...args, factsTupleOf(await factsNow())])
    }
    const sendOnce = async (): Promise<TransactionReceipt> => {
      const facts = await factsNow()
      return await this.send(method, [...args, factsTupleOf(facts)], undefined, rebuild, BigInt(payoutsOf(method, facts)) * PAYOUT_GAS)
    }
    try {
      return await sendOnce()
    } catch (err) {
      if (!(err instanceof ChainRevertError && err.errorName === 'FactsMismatch')) throw err
      this.opening.delete(tradeId.toLowerCase())
      return await sendOnce()
    }
  }

  /** Opens a trade with exactly the deposit its caps require. The trade id is derived from the sender and salt. */
  async openTrade (p: OpenTradeParams): Promise<{ tradeId: string, deposit: bigint, receipt: TransactionReceipt }> {
    const deposit = p.deposit ?? depositOf({ ...p, sellers: p.offerIds.length, nodes: p.nodes.length })
    const terms = [p.salt, p.tagHash, p.codeHash, p.deadline, p.sellerCap, p.nodePrice, p.nodeCap, p.outputPrice, p.outputCap, p.gasCap, p.epsilon ?? 0n]
    const nodes = p.nodes.map(n => [n.payee, [n.quote.measurement, n.quote.enclaveAddress, n.quote.taskId, n.quote.nonce, n.quote.signature]])
    const receipt = await this.send('openTrade', [terms, p.offerIds, nodes], deposit)
    const [opened] = this.eventsIn(receipt, 'TradeOpened')
    return { tradeId: (opened.args.tradeId as string).toLowerCase(), deposit, receipt }
  }

  /** The id openTrade will give a trade of `buyer` with `salt`. */
  tradeIdOf (buyer: string, salt: string): string {
    return tradeIdOf(buyer, salt)
  }

  /** Node `nodeIndex` commits to its result: resultCommitmentOf(resultDigest, nodeIndex, nonce). Only its payee may. */
  async commitResult (tradeId: string, nodeIndex: number, commitment: string, accepted?: string): Promise<TransactionReceipt> {
    return await this.sendWithFacts(tradeId, 'commitResult', [tradeId, nodeIndex, commitment], accepted)
  }

  /** Reveals node `nodeIndex`'s ResultInfo with its enclave's signature and its commitment's nonce (anyone may relay it). */
  async submitResult (info: ResultInfo, nodeIndex: number, signature: string, nonce: string, accepted?: string): Promise<TransactionReceipt> {
    const tuple = [info.tradeId, info.taskId, info.inputHash, info.resultHash, info.resultSize, info.status]
    // Another node's reveal mined before ours can make ours the one that settles: PAYOUT_GAS per payee covers it.
    return await this.sendWithFacts(info.tradeId, 'submitResult', [tuple, nodeIndex, signature, nonce], accepted)
  }

  /** Settles (strict majority) or refunds a trade whose outcome is certain or whose deadline has passed. */
  async finalize (tradeId: string, accepted?: string): Promise<{ outcome: 'settled' | 'refunded', receipt: TransactionReceipt }> {
    const receipt = await this.sendWithFacts(tradeId, 'finalize', [tradeId], accepted)
    return { outcome: this.eventsIn(receipt, 'TradeSettled').length > 0 ? 'settled' : 'refunded', receipt }
  }

  /**
   * Claims seller `sellerIndex`'s held data fee with node `nodeIndex`'s delivery receipt (receiptDigestOf, signed by
   * that node's enclave). `commitments` are all the trade's sellers' commitments in trade order. Anyone may relay it.
   */
  async claimDelivery (tradeId: string, sellerIndex: number, nodeIndex: number, commitments: string[], receipt: string, accepted?: string): Promise<TransactionReceipt> {
    return await this.sendWithFacts(tradeId, 'claimDelivery', [tradeId, sellerIndex, nodeIndex, commitments, receipt], accepted)
  }

  /**
   * Node `nodeIndex` of a trade a seller declined while open claims its held node fee with the decliner's
   * acknowledgement of that node's delivery receipt (`ack`, the seller's signature over receiptAckDigestOf).
   * `commitments` are all the trade's sellers' commitments in trade order. Anyone may relay it.
   */
  async claimRun (tradeId: string, nodeIndex: number, commitments: string[], ack: string, accepted?: string): Promise<TransactionReceipt> {
    return await this.sendWithFacts(tradeId, 'claimRun', [tradeId, nodeIndex, commitments, ack], accepted)
  }

  /** After the claim window: the data fees nobody claimed go to the buyer (the node fees a decline held, after theirs). */
  async releaseUnclaimed (tradeId: string): Promise<TransactionReceipt> {
    return await this.sendWithFacts(tradeId, 'releaseUnclaimed', [tradeId])
  }

  /**
   * Seller `sellerIndex` (this client's account) declines the trade before its data went in: an open trade no node
   * committed to is refunded at once (the other sellers' data fees held for claims), a held fee of ours goes to the
   * buyer, and what the trade reserved on our offer in CISC comes back now. Refused once our fee was claimed.
   * `refused` (termsDigestOf the terms the seller refused) holds the decline to them: a trade opened again with other
   * terms after a reorganisation throws TradeTermsChangedError instead of being declined on a refusal of others.
   */
  async declineTrade (tradeId: string, sellerIndex: number, refused?: string): Promise<TransactionReceipt> {
    return await this.sendWithFacts(tradeId, 'declineTrade', [tradeId, sellerIndex], refused)
  }

  /**
   * The claim window of a refunded (or "input invalid") trade and the sellers whose data fee is still held; after an
   * open trade's decline also the nodes' run-claim window, the nodes whose fee is still held and the decliner's index.
   */
  async claimsOf (tradeId: string): Promise<{ until: number, held: number[], nodeUntil: number, nodesHeld: number[], decliner: number }> {
    const c = await this.call('claims', tradeId)
    return { until: Number(c.until), held: bits(Number(c.held)), nodeUntil: Number(c.nodeUntil), nodesHeld: bits(Number(c.nodesHeld)), decliner: Number(c.decliner) }
  }

  /** Withdraws everything credited to this client's account. */
  async withdraw (): Promise<{ amount: bigint, receipt: TransactionReceipt }> {
    const receipt = await this.send('withdraw', [])
    const [event] = this.eventsIn(receipt, 'Withdrawn')
    return { amount: event.args.amount as bigint, receipt }
  }

  /** The buyer rates seller `sellerIndex` of a settled trade (score 1..5), once. */
  async rate (tradeId: string, sellerIndex: number, score: number, comment = ''): Promise<TransactionReceipt> {
    return await this.sendWithFacts(tradeId, 'rate', [tradeId, sellerIndex, score, comment])
  }

  /** Wei credited to `address` and not yet withdrawn. */
  async creditOf (address: string): Promise<bigint> {
    return await this.call('balanceOf', address)
  }

  /** A trade, or null when there is none with this id. */
  async trade (tradeId: string): Promise<TradeView | null> {
    let v: any
    try {
      v = await this.call('trade', tradeId)
    } catch (err) {
      if (err instanceof ChainRevertError && err.errorName === 'UnknownTrade') {
        // Gone (a reorganisation dropped its opening): if its buyer opens it again, read its terms anew.
        this.opening.delete(tradeId.toLowerCase())
        return null
      }
      throw err
    }
    const groups: ResultGroup[] = (v.groups as any[]).map(g => ({
      key: g.key,
      resultHash: g.resultHash,
      resultSize: g.resultSize,
      status: Number(g.status),
      count: Number(g.count),
      members: bits(Number(g.members))
    }))
    const state = STATE_NAMES[Number(v.state)]
    const ratedMask = Number(v.ratedMask)
    const { facts, nodePrice, nodeCap, gasCap, epsilon } = await this.openingOf(tradeId)
    return {
      tradeId: tradeId.toLowerCase(),
      buyer: facts.buyer,
      state,
      deadline: Number(v.deadline),
      nResults: Number(v.nResults),
      codeHash: facts.codeHash,
      inputHash: facts.inputHash,
      nodePrice,
      nodeCap,
      nodeFee: facts.nodeFee,
      outputPrice: facts.outputPrice,
      outputCap: v.outputCap,
      gasCap,
      epsilon,
      nCommits: Number(v.nCommits),
      commitStart: Number(v.commitStart),
      deposit: facts.deposit,
      sellers: facts.sellers.map((s, i) => ({ account: s.account, fee: s.fee, rated: (ratedMask & (1 << i)) !== 0 })),
      nodes: (v.nodes as any[]).map((n, i) => ({ payee: facts.nodes[i].payee, enclave: facts.nodes[i].enclave, committed: n.committed, submitted: n.submitted, group: n.submitted ? Number(n.group) : null })),
      groups,
      final: state === 'settled' ? groups[Number(v.leader)] : null
    }
  }

  /** Ids of trades in which `account` is the buyer, a seller or a node's payee, oldest first. */
  async tradesOf (account: string, role: TradeRole, fromBlock = this.ctx.fromBlock): Promise<string[]> {
    const f = this.contract.filters
    const filter = role === 'buyer' ? f.TradeOpened(null, account) : role === 'seller' ? f.TradeSeller(null, account) : f.TradeNode(null, account)
    const logs = await this.contract.queryFilter(filter, fromBlock)
    return [...new Set(logs.map(l => (this.iface.parseLog(l)!.args.tradeId as string).toLowerCase()))]
  }

  async attestationRoot (): Promise<string> { return await this.call('attestationRoot') }
  async admin (): Promise<string> { return await this.call('admin') }
  async isMeasurementAccepted (measurement: string): Promise<boolean> { return await this.call('acceptedMeasurement', measurement) }

  async setAttestationRoot (root: string): Promise<TransactionReceipt> { return await this.send('setAttestationRoot', [root]) }
  async setMeasurement (measurement: string, accepted: boolean): Promise<TransactionReceipt> { return await this.send('setMeasurement', [measurement, accepted]) }
  async transferAdmin (next: string): Promise<TransactionReceipt> { return await this.send('transferAdmin', [next]) }
  async acceptAdmin (): Promise<TransactionReceipt> { return await this.send('acceptAdmin', []) }
}

function bits (mask: number): number[] {
  const out: number[] = []
  for (let i = 0; mask >> i !== 0; i++) if ((mask >> i) & 1) out.push(i)
  return out
}

// ---- events ----

export interface ChainEvent {
  contract: ContractName
  name: string
  /** arguments by name (bigint for integers, checksummed addresses, 0x hex for bytes) */
  args: Record<string, unknown>
  blockNumber: number
  txHash: string
  logIndex: number
}

/** Decodes logs of the given contracts (address -> name); other logs are skipped. */
export function decodeLogs (logs: readonly Log[], contracts: Record<string, ContractName>): ChainEvent[] {
  const byAddress = new Map(Object.entries(contracts).map(([a, n]) => [getAddress(a), n]))
  const out: ChainEvent[] = []
  for (const log of logs) {
    const name = byAddress.get(getAddress(log.address))
    if (name === undefined) continue
    const parsed = ABIS[name].parseLog(log)
    if (parsed === null) continue
    const args: Record<string, unknown> = {}
    parsed.fragment.inputs.forEach((input, i) => { args[input.name] = plain(parsed.args[i]) })
    out.push({ contract: name, name: parsed.name, args, blockNumber: log.blockNumber, txHash: log.transactionHash, logIndex: log.index })
  }
  return out
}

// ---- the client ----

export interface ChainClientOptions {
  network: Pick<NetworkFile, 'chainId' | 'contracts'> & Partial<NetworkFile>
  /** Defaults to network.rpcUrl. */
  rpcUrl?: string
  /** A private key or an ethers Signer; absent: a read-only client. */
  signer?: string | Signer
  /**
   * How often to poll for blocks and receipts (default 100 ms on a devnet, 1 s elsewhere). For blocks only while
   * no heads come pushed: while they do, every PUSHED_HEADS_POLL_MS (or this, if slower).
   */
  pollingIntervalMs?: number
  /** How long to wait for a receipt (default 120 s). */
  receiptTimeoutMs?: number
  /**
   * Blocks deep a transaction of ours must be before a send returns (default DEFAULT_SEND_CONFIRMATIONS, 1: mined).
   * Whatever it is, a transaction a reorganisation drops later is broadcast again (see TxQueue).
   */
  confirmations?: number
  /** How often to look for our transactions a reorganisation dropped (default REORG_CHECK_INTERVAL_MS; 0: never). */
  reorgCheckMs?: number
  /** Skip the chain id and contract code checks (default false). */
  skipChecks?: boolean
  /** Take the new heads the node pushes over a WebSocket at the RPC address (heads.ts), besides polling (default true). */
  pushedHeads?: boolean
  /** Where the client counts its transactions, gas and errors (handed in, like a logger). Default: noMetrics. */
  metrics?: MetricsRegistry
}

export class ChainClient {
  readonly provider: JsonRpcProvider
  readonly signer?: Signer
  readonly cisc: CiscClient
  readonly bdbc: BdbcClient
  readonly dtmc: DtmcClient
  readonly network: ChainClientOptions['network']
  /** Blocks deep a transaction of ours is when a send returns it; the roles read events as deep. */
  readonly confirmations: number
  private readonly queue: TxQueue | undefined
  private readonly reorgTimer: ReturnType<typeof setInterval> | undefined
  /** Where the node pushes new heads (null: nowhere), the subscription while a listener wants blocks, and those listeners. */
  private readonly headsUrl: string | null
  private heads: HeadSubscription | undefined
  private readonly headListeners = new Set<(blockNumber: number) => void>()
  /** Whether that subscription is up now (the block poll is slow then), and the one listener on ethers' block poll. */
  private headsUp = false
  private readonly polled = (n: number): void => { for (const l of [...this.headListeners]) l(n) }
  /** The latest change to ethers' block poll (subscribe, unsubscribe, restart), each made after the one before. */
  private blockPoll: Promise<void> = Promise.resolve()
  /** Set by close(): from then on nothing of the block watch starts (onBlock is a no-op). */
  private closed = false

  private constructor (opts: ChainClientOptions, provider: JsonRpcProvider, signer?: Signer) {
    this.provider = provider
    this.signer = signer
    this.network = opts.network
    const metrics = chainMetrics(opts.metrics ?? noMetrics)
    this.queue = signer !== undefined ? new TxQueue(signer, provider, () => { metrics.resubmitted.inc() }) : undefined
    this.confirmations = opts.confirmations ?? DEFAULT_SEND_CONFIRMATIONS
    const rpcUrl = opts.rpcUrl ?? opts.network.rpcUrl
    this.headsUrl = opts.pushedHeads === false || rpcUrl === undefined ? null : headsUrlOf(rpcUrl)
    const ctx: SendContext = {
      provider,
      signer,
      queue: this.queue,
      receiptTimeoutMs: opts.receiptTimeoutMs ?? 120_000,
      confirmations: this.confirmations,
      metrics,
      fromBlock: opts.network.deployBlock ?? 0
    }
    const every = opts.reorgCheckMs ?? REORG_CHECK_INTERVAL_MS
    if (this.queue !== undefined && every > 0) {
      const queue = this.queue
      // Errors (the chain briefly unreachable) are left for the next look.
      this.reorgTimer = setInterval(() => { queue.resubmitDropped().catch(() => {}) }, every)
      this.reorgTimer.unref()
    }
    this.cisc = new CiscClient(opts.network.contracts.CISC, ctx)
    this.bdbc = new BdbcClient(opts.network.contracts.BDBC, ctx)
    this.dtmc = new DtmcClient(opts.network.contracts.DTMC, ctx)
  }

  /** Connects to the network's chain; checks that its chain id and contracts are the network file's. */
  static async connect (opts: ChainClientOptions): Promise<ChainClient> {
    const rpcUrl = opts.rpcUrl ?? opts.network.rpcUrl
    if (rpcUrl === undefined) throw new ChainConfigError('no rpcUrl given and none in the network file')
    const provider = new JsonRpcProvider(rpcUrl, Network.from(opts.network.chainId), { staticNetwork: true, cacheTimeout: -1, batchStallTime: RPC_BATCH_STALL_MS })
    provider.pollingInterval = opts.pollingIntervalMs ?? (opts.network.devnet === true ? 100 : 1000)
    let signer: Signer | undefined
    if (typeof opts.signer === 'string') signer = new Wallet(opts.signer, provider)
    else if (opts.signer !== undefined) signer = opts.signer.provider === provider ? opts.signer : opts.signer.connect(provider)
    const client = new ChainClient(opts, provider, signer)
    if (opts.skipChecks !== true) {
      try {
        const chainId = Number(await provider.send('eth_chainId', []))
        if (chainId !== opts.network.chainId) throw new ChainConfigError(`${rpcUrl} is chain ${chainId}, the network file says ${opts.network.chainId}`)
        for (const [name, address] of Object.entries(opts.network.contracts)) {
          if (await provider.getCode(address) === '0x') throw new ChainConfigError(`no ${name} contract at ${address} on chain ${chainId} (${rpcUrl})`)
        }
      } catch (err) {
        provider.destroy()
        if (err instanceof ChainConfigError) throw err
        throw new ChainConfigError(`cannot reach ${rpcUrl}: ${(err as Error).message}`)
      }
    }
    return client
  }

  /** This client's account. */
  async address (): Promise<string> {
    if (this.signer === undefined) throw new NoSignerError('this client has no signer')
    return getAddress(await this.signer.getAddress())
  }

  /** Ether balance (wei) of `address`, default this client's account. */
  async balance (address?: string): Promise<bigint> {
    const who = address ?? await this.address()
    try {
      return await this.provider.getBalance(who)
    } catch (err) {
      throw unavailable(err, 'balance')
    }
  }

  async blockNumber (): Promise<number> {
    return await this.provider.getBlockNumber()
  }

  /**
   * Calls `listener` with the number of each new block as it is seen, each number once and rising; returns the
   * unsubscribe function. Two sources, whichever sees a block first: the heads the chain node pushes over a
   * WebSocket (heads.ts: at once when mined; opened again after a drop), and ethers polling eth_blockNumber
   * over HTTP: every `pollingIntervalMs` (100 ms on a devnet) while the socket is down or the node has none,
   * every PUSHED_HEADS_POLL_MS while it is up (the safety net for a push that stalls). A listener that throws
   * is logged by nobody: catch inside. After close() it is a no-op (no socket, no poll; the unsubscribe does
   * nothing): a role may still be subscribing while the daemon shuts down, and a throw there would only turn
   * a shutdown into a crash.
   */
  onBlock (listener: (blockNumber: number) => void): () => void {
    if (this.closed) return () => {}
    let last = -1
    const fn = (n: number): void => {
      if (n <= last) return
      last = n
      listener(n)
    }
    if (this.headListeners.size === 0) this.changeBlockPoll(async () => { await this.pollBlocks() })
    this.headListeners.add(fn)
    if (this.heads === undefined && this.headsUrl !== null) {
      this.heads = subscribeHeads(this.headsUrl, this.polled, { onState: (s) => { this.onHeadsState(s) } })
    }
    return () => {
      if (!this.headListeners.delete(fn) || this.headListeners.size > 0) return
      this.heads?.stop()
      this.heads = undefined
      this.headsUp = false
      this.changeBlockPoll(async () => { await this.provider.off('block', this.polled) })
    }
  }

  /**
   * Runs `change` to ethers' block poll after the changes before it, then sets the poll's pace to the heads'
   * state. ethers (6.x) starts one PollingBlockSubscriber for all of a provider's 'block' listeners; its
   * `pollingInterval` (the Subscriber interface's, which ethers' own provider.pollingInterval setter sets on
   * every subscriber that has one) is read when the next poll is scheduled. Only that subscriber is changed:
   * provider.pollingInterval, which the receipts are polled at (SendContext.confirmed), stays.
   */
  private changeBlockPoll (change: () => Promise<void>): void {
    this.blockPoll = this.blockPoll.then(change).then(() => {
      const fast = this.provider.pollingInterval
      const ms = this.headsUp ? Math.max(PUSHED_HEADS_POLL_MS, fast) : fast
      this.provider._forEachSubscriber((sub) => { if (typeof sub.pollingInterval === 'number') sub.pollingInterval = ms })
    }).catch(() => {}) // off/on on a destroyed provider (closed meanwhile): nothing left to poll
  }

  /**
   * Starts ethers' block poll, unless the client was closed meanwhile (ethers would start it on a destroyed
   * provider, failing forever: a live timer, the process never exits). ethers' on() awaits before it starts
   * the poller, so close() may come in those microtasks: close() pauses the provider, which makes on() stop
   * the poller it starts (see close()), and the poller ethers kept is dropped here.
   */
  private async pollBlocks (): Promise<void> {
    if (this.closed) return
    await this.provider.on('block', this.polled)
    if (this.closed) await this.provider.removeAllListeners()
  }

  private onHeadsState (state: HeadsState): void {
    if (this.heads === undefined) return
    this.headsUp = state === 'up'
    if (this.headsUp) {
      this.changeBlockPoll(async () => {})
      return
    }
    // Down: the slow poll may be PUSHED_HEADS_POLL_MS from its next call. ethers' subscriber cannot be told
    // to poll now (its start() after stop() would run a second chain of polls beside the first), so a new
    // one takes its place: off and on again; it starts at the fast pace. It first reads the block number
    // only to start from, so the head is read once here too, in case blocks came since the last push.
    this.changeBlockPoll(async () => {
      await this.provider.off('block', this.polled)
      if (this.headListeners.size === 0) return
      await this.pollBlocks()
      this.provider.getBlockNumber().then(this.polled, () => {})
    })
  }

  /** The decoded events of all three contracts in a block range (default: from the deploy block). */
  async events (fromBlock?: number, toBlock?: number | 'latest'): Promise<ChainEvent[]> {
    const contracts = this.network.contracts
    const logs = await this.provider.getLogs({
      address: [contracts.CISC, contracts.BDBC, contracts.DTMC],
      fromBlock: toBeHex(fromBlock ?? this.network.deployBlock ?? 0),
      toBlock: toBlock === undefined || toBlock === 'latest' ? 'latest' : toBeHex(toBlock)
    })
    return decodeLogs(logs, { [contracts.CISC]: 'CISC', [contracts.BDBC]: 'BDBC', [contracts.DTMC]: 'DTMC' })
  }

  /** Broadcasts again our transactions a reorganisation dropped (also done every reorgCheckMs); returns how many. */
  async resubmitDropped (): Promise<number> {
    return await (this.queue?.resubmitDropped() ?? Promise.resolve(0))
  }

  /** The newest block `confirmations` deep: what the roles scan events up to. */
  async confirmedBlock (): Promise<number> {
    return (await this.blockNumber()) - (this.confirmations - 1)
  }

  /**
   * Stops everything: the heads socket, the block poll, the reorganisation checks; then nothing of them starts
   * again (onBlock is a no-op). Paused before it is destroyed: ethers' destroy() stops only the pollers it
   * holds now, and an on() under way (pollBlocks) may start one it no longer holds; on a paused provider that
   * poller is paused (stopped) at once, and no timer it sets runs (ethers keeps the timers of a paused provider
   * unscheduled).
   */
  close (): void {
    this.closed = true
    clearInterval(this.reorgTimer)
    this.heads?.stop()
    this.heads = undefined
    this.headsUp = false
    this.headListeners.clear()
    this.provider.pause()
    this.provider.destroy()
  }
}
