// Runs an analysis in a thread of its own (enclave/runner.ts) under a budget derived from its gas cap
// (constants.ts, "Budget of one run"), so that a long run holds up neither the enclave worker, which
// keeps answering attestation, code and data requests, nor other runs beyond MAX_CONCURRENT_RUNS.
// The thread is part of the enclave: same process, measured code, it gets only the code and the
// plaintext inputs of its run, and only the enclave worker sees what it returns.
import { Worker } from 'node:worker_threads'
import {
  MAX_CONCURRENT_RUNS, MAX_CPU_MS_PER_MGAS, MAX_RUN_HEAP_MB, MAX_WARM_RUN_THREADS, MIN_RUN_HEAP_MB, MIN_RUN_WALL_MS, RUN_HEAP_BASE_MB, RUN_HEAP_MB_PER_MGAS,
  RUN_WALL_SLACK, WARM_RUN_THREAD_IDLE_MS
} from './constants.ts'
import { InvalidRequestError, RunFailedError, RunOverBudgetError } from './errors.ts'
import type { RunOutcome } from './evm.ts'
import type { RunBudgetPolicy, RunJob } from './messages.ts'

export const DEFAULT_RUN_BUDGET_POLICY: Readonly<RunBudgetPolicy> = {
  wallMsPerMgas: MAX_CPU_MS_PER_MGAS * RUN_WALL_SLACK,
  minWallMs: MIN_RUN_WALL_MS,
  heapBaseMb: RUN_HEAP_BASE_MB,
  heapMbPerMgas: RUN_HEAP_MB_PER_MGAS,
  maxHeapMb: MAX_RUN_HEAP_MB
}

/** The defaults with `overrides` (a node's own, or a test's) applied; refuses what is not a non-negative number. */
export function runBudgetPolicy (overrides: Partial<RunBudgetPolicy> = {}): RunBudgetPolicy {
  const policy = { ...DEFAULT_RUN_BUDGET_POLICY }
  for (const key of Object.keys(DEFAULT_RUN_BUDGET_POLICY) as Array<keyof RunBudgetPolicy>) {
    const v = overrides[key]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InvalidRequestError(`runBudget.${key} must be a non-negative number`)
    policy[key] = v
  }
  if (policy.maxHeapMb < MIN_RUN_HEAP_MB) throw new InvalidRequestError(`runBudget.maxHeapMb must be at least ${MIN_RUN_HEAP_MB}`)
  return policy
}

export interface RunBudget {
  /** Wall-clock milliseconds from the start of the run (its job handed to its thread, warm or new). */
  wallMs: number
  /** V8 old-generation heap of the run's thread, in MiB (at least MIN_RUN_HEAP_MB). */
  heapMb: number
}

/** The budget of a run with this gas cap. */
export function runBudgetOf (gasCap: bigint, policy: RunBudgetPolicy = DEFAULT_RUN_BUDGET_POLICY): RunBudget {
  const mgas = Number(gasCap) / 1e6
  return {
    wallMs: Math.ceil(policy.minWallMs + mgas * policy.wallMsPerMgas),
    heapMb: Math.max(MIN_RUN_HEAP_MB, Math.min(policy.maxHeapMb, Math.ceil(policy.heapBaseMb + mgas * policy.heapMbPerMgas)))
  }
}

// Run slots: at most MAX_CONCURRENT_RUNS threads at a time, the others wait in arrival order.
let running = 0
const waiting: Array<() => void> = []

async function acquire (): Promise<void> {
  if (running < MAX_CONCURRENT_RUNS) { running++; return }
  await new Promise<void>(resolve => waiting.push(resolve))
}

function release (): void {
  const next = waiting.shift()
  if (next !== undefined) next()
  else running--
}

// Warm run threads: started ahead of a run (the thread and the EVM's modules loaded, waiting for a job), so
// that a small run does not wait the 0.4-1 s a new isolate takes to load @ethereumjs/evm. A warm thread has
// had nothing but runner.ts's imports in it: it gets one job, and is terminated after it like a cold one, so
// no state passes from run to run. resourceLimits are fixed when a thread starts, so a warm thread serves
// only a run whose heap budget is exactly the one it was started with (a trade's budget is known from its
// code delivery on, ahead of its run: prewarmRunThread); any other run starts its own thread as before.
interface IdleThread { worker: Worker, heapMb: number, idleTimer: ReturnType<typeof setTimeout>, onEnd: () => void }
const idle: IdleThread[] = []

function forget (thread: IdleThread): void {
  const i = idle.indexOf(thread)
  if (i >= 0) idle.splice(i, 1)
  clearTimeout(thread.idleTimer)
  thread.worker.off('error', thread.onEnd)
  thread.worker.off('exit', thread.onEnd)
}

function startThread (heapMb: number): Worker {
  return new Worker(new URL('./runner.ts', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: heapMb } })
}

/**
 * Starts a run thread for `budget`'s heap ahead of the run that will need it, unless one is already
 * waiting; at most MAX_WARM_RUN_THREADS wait at a time (the longest-waiting one of another heap size
 * gives way). Ended after WARM_RUN_THREAD_IDLE_MS if no run takes it.
 */
export function prewarmRunThread (budget: RunBudget): void {
  if (idle.some(t => t.heapMb === budget.heapMb)) return
  if (idle.length >= MAX_WARM_RUN_THREADS) {
    const oldest = idle.find(t => t.heapMb !== budget.heapMb)
    if (oldest === undefined) return
    forget(oldest)
    void oldest.worker.terminate()
  }
  const worker = startThread(budget.heapMb)
  // Waiting, it must not keep the process (or the enclave worker) alive.
  worker.unref()
  const thread: IdleThread = {
    worker,
    heapMb: budget.heapMb,
    idleTimer: setTimeout(() => { forget(thread); void worker.terminate() }, WARM_RUN_THREAD_IDLE_MS).unref(),
    // A thread that dies while it waits (it failed to load) is dropped; the run that would have taken it starts its own.
    onEnd: () => { forget(thread) }
  }
  worker.on('error', thread.onEnd)
  worker.on('exit', thread.onEnd)
  idle.push(thread)
}

/** A waiting thread started with this heap limit, taken out of the pool, or a new one. */
function threadFor (heapMb: number): Worker {
  const thread = idle.find(t => t.heapMb === heapMb)
  if (thread === undefined) return startThread(heapMb)
  forget(thread)
  thread.worker.ref()
  return thread.worker
}

/**
 * Runs `job` in a thread of its own under `budget` (a warm one if one was started for its heap budget,
 * else a new one). Resolves with the run's outcome (whatever the code did:
 * ok, revert, out of gas, forbidden, ...); rejects with RunOverBudgetError when the thread outlives
 * its time budget or outgrows its heap budget (it is terminated), RunFailedError when it dies otherwise.
 * The inputs' buffers are handed over to the thread (transferred): the caller must not use them after.
 * The thread is terminated after the run, whatever its end.
 */
export async function runInThread (job: RunJob, budget: RunBudget): Promise<RunOutcome> {
  await acquire()
  try {
    return await new Promise<RunOutcome>((resolve, reject) => {
      const worker = threadFor(budget.heapMb)
      let settled = false
      const settle = (fn: () => void): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        fn()
        void worker.terminate()
      }
      const timer = setTimeout(() => {
        settle(() => reject(new RunOverBudgetError(`run killed: over its time budget of ${budget.wallMs} ms`)))
      }, budget.wallMs)
      worker.once('message', (outcome: RunOutcome) => settle(() => resolve(outcome)))
      worker.once('error', (err: Error & { code?: string }) => settle(() => reject(err.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? new RunOverBudgetError(`run killed: over its heap budget of ${budget.heapMb} MiB`)
        : new RunFailedError(`run failed: ${err.message}`))))
      worker.once('exit', (code) => settle(() => reject(new RunFailedError(`run thread exited (${code}) without an outcome`))))
      // A thread still loading gets the job when it is ready (messages wait in its port).
      worker.postMessage(job, job.inputs.map(i => i.buffer as ArrayBuffer))
    })
  } finally {
    release()
  }
}
