// The trades this daemon takes part in, one record per (role, trade), kept in the store's `trades`
// repository. Every step is written here before the daemon acts on it, with a timeline entry, so
// that a daemon killed at any point restarts from the last recorded state (the roles' step
// functions are idempotent and check the chain before repeating a transaction).
import { SdteError, type TradeRole } from '../config/index.ts'
import type { Repository } from './store.ts'
import type { Counter, Histogram, Logger } from '../config/index.ts'

/** What the trade book counts: every state change, and how long each state lasted (daemon/metrics.ts). */
export interface TradeMetrics {
  tradeTransitions: Counter
  tradePhaseSeconds: Histogram
}

/** Trade states, in order (docs/api.md, "Trade states"), then the two ends that are not success. */
export const TRADE_STATES = ['demanded', 'attesting', 'escrowed', 'delivering', 'executing', 'submitted', 'finalized', 'delivered', 'rated', 'refunded', 'failed'] as const
export type TradeState = typeof TRADE_STATES[number]
export type { TradeRole }
/** Where each role's part of a trade ends: nothing more for its daemon to do on its own. */
export const TERMINAL_STATES: Record<TradeRole, readonly TradeState[]> = {
  buyer: ['delivered', 'rated', 'refunded', 'failed'],
  seller: ['finalized', 'refunded', 'failed'],
  node: ['finalized', 'delivered', 'refunded', 'failed']
}

export interface TimelineEntry {
  state: TradeState
  /** ISO time. */
  at: string
  note?: string
}

export interface TradeRecord<D = Record<string, unknown>> {
  role: TradeRole
  tradeId: string
  state: TradeState
  /** Why the trade was refunded or failed. */
  reason?: string
  createdAt: string
  updatedAt: string
  timeline: TimelineEntry[]
  /** Role-specific data: terms, parties, hashes, payments. Never a secret. */
  data: D
}

export class TradeNotFoundError extends SdteError {
  override name = 'TradeNotFoundError'
  override code = 'ERR_TRADE_NOT_FOUND'
}

const keyOf = (role: TradeRole, tradeId: string): string => `${role}/${tradeId.toLowerCase()}`

/** Caps the timeline so a long-lived trade cannot grow its record without bound. */
export const MAX_TIMELINE_ENTRIES = 200

export class TradeBook {
  private readonly repo: Repository<unknown>
  /** Per-trade chains of pending read-modify-write sections. */
  private readonly locks = new Map<string, Promise<unknown>>()
  /** Listeners for state changes (progress output, tests). */
  private readonly listeners = new Set<(t: TradeRecord) => void>()

  private readonly metrics: TradeMetrics | undefined
  private readonly log: Logger | undefined

  /**
   * States change only here, so the trade metrics are counted here rather than in each role, and each
   * role's end with its reason (daemon/ends.ts words) is logged here.
   */
  constructor (repo: Repository<unknown>, metrics?: TradeMetrics, log?: Logger) {
    this.repo = repo
    this.metrics = metrics
    this.log = log
  }

  onChange (fn: (t: TradeRecord) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  async get<D> (role: TradeRole, tradeId: string): Promise<TradeRecord<D> | undefined> {
    return await this.repo.get(keyOf(role, tradeId)) as TradeRecord<D> | undefined
  }

  async require<D> (role: TradeRole, tradeId: string): Promise<TradeRecord<D>> {
    const t = await this.get<D>(role, tradeId)
    if (t === undefined) throw new TradeNotFoundError(`no ${role} trade ${tradeId}`)
    return t
  }

  /**
   * Runs `fn` alone for this trade: concurrent handlers (offers arriving together, a tick) that read,
   * change and write the record would otherwise lose each other's updates.
   */
  async locked<T> (role: TradeRole, tradeId: string, fn: () => Promise<T>): Promise<T> {
    const key = keyOf(role, tradeId)
    const previous = this.locks.get(key) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const tail = run.catch(() => {})
    this.locks.set(key, tail)
    try {
      return await run
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key)
    }
  }

  /** Creates a trade in its first state; returns the existing record if it is already there. */
  async create<D> (role: TradeRole, tradeId: string, state: TradeState, data: D, note?: string): Promise<TradeRecord<D>> {
    const existing = await this.get<D>(role, tradeId)
    if (existing !== undefined) return existing
    const now = new Date().toISOString()
    const record: TradeRecord<D> = {
      role,
      tradeId: tradeId.toLowerCase(),
      state,
      createdAt: now,
      updatedAt: now,
      timeline: [{ state, at: now, ...(note !== undefined && { note }) }],
      data
    }
    await this.save(record)
    this.metrics?.tradeTransitions.inc({ role, state })
    return record
  }

  /** Records a new state (and data changes) before the caller acts on it. */
  async transition<D> (record: TradeRecord<D>, state: TradeState, opts: { note?: string, reason?: string, data?: Partial<D> } = {}): Promise<TradeRecord<D>> {
    const now = new Date().toISOString()
    const next: TradeRecord<D> = {
      ...record,
      state,
      updatedAt: now,
      data: { ...record.data, ...opts.data },
      timeline: [...record.timeline, { state, at: now, ...(opts.note !== undefined && { note: opts.note }) }].slice(-MAX_TIMELINE_ENTRIES),
      ...(opts.reason !== undefined && { reason: opts.reason })
    }
    await this.save(next)
    if (opts.reason !== undefined && state !== record.state && TERMINAL_STATES[record.role].includes(state)) {
      const fields = { role: record.role, tradeId: record.tradeId, state, reason: opts.reason }
      if (state === 'failed' || state === 'refunded') this.log?.warn(`trade ended: ${opts.reason}`, fields)
      else this.log?.info(`trade ended: ${opts.reason}`, fields)
    }
    if (this.metrics !== undefined && state !== record.state) {
      this.metrics.tradeTransitions.inc({ role: record.role, state })
      // The phase is the state left; it began at the timeline's last entry (a state re-entered, such as
      // `executing` on each run attempt, adds an entry without a change of state).
      let i = record.timeline.length - 1
      while (i > 0 && record.timeline[i - 1].state === record.state) i--
      const seconds = (Date.parse(now) - Date.parse(record.timeline[i]?.at ?? now)) / 1000
      if (Number.isFinite(seconds) && seconds >= 0) this.metrics.tradePhaseSeconds.observe({ role: record.role, phase: record.state }, seconds)
    }
    return next
  }

  /** Updates data without a change of state (e.g. a progress counter). */
  async update<D> (record: TradeRecord<D>, data: Partial<D>): Promise<TradeRecord<D>> {
    const next = { ...record, updatedAt: new Date().toISOString(), data: { ...record.data, ...data } }
    await this.save(next)
    return next
  }

  private async save<D> (record: TradeRecord<D>): Promise<void> {
    await this.repo.put(keyOf(record.role, record.tradeId), record)
    for (const fn of this.listeners) fn(record as TradeRecord)
  }

  /** Trades, newest first, optionally of one role. */
  async list<D = Record<string, unknown>> (role?: TradeRole): Promise<Array<TradeRecord<D>>> {
    const all = (await this.repo.list(role === undefined ? {} : { prefix: `${role}/` })).map(([, v]) => v as TradeRecord<D>)
    return all.sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  }

  /** Trades not in a terminal state: what a restarted daemon must resume. */
  async active<D = Record<string, unknown>> (role?: TradeRole): Promise<Array<TradeRecord<D>>> {
    return (await this.list<D>(role)).filter(t => !TERMINAL_STATES[t.role].includes(t.state))
  }
}
