// Runs an analysis in its own thread (enclave/runner.ts) under a budget derived from its gas cap
// (constants.ts, "Budget of one run"), so that a long run holds up neither the enclave worker, which
// keeps answering attestation, code and data requests, nor other runs beyond MAX_CONCURRENT_RUNS.
// The thread is part of the enclave: same process, measured code, it gets only the code and the
// plaintext inputs of its run, and only the enclave worker sees what it returns.
import { Worker } from 'node:worker_threads'
import {
  MAX_CONCURRENT_RUNS, MAX_CPU_MS_PER_MGAS, MAX_RUN_HEAP_MB, MIN_RUN_HEAP_MB, MIN_RUN_WALL_MS, RUN_HEAP_BASE_MB, RUN_HEAP_MB_PER_MGAS, RUN_WALL_SLACK
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
  /** Wall-clock milliseconds from the start of the run's thread. */
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

/**
 * Runs `job` in a new thread under `budget`. Resolves with the run's outcome (whatever the code did:
 * ok, revert, out of gas, forbidden, ...); rejects with RunOverBudgetError when the thread outlives
 * its time budget or outgrows its heap budget (it is terminated), RunFailedError when it dies otherwise.
 * The inputs' buffers are handed over to the thread (transferred): the caller must not use them after.
 */
export async function runInThread (job: RunJob, budget: RunBudget): Promise<RunOutcome> {
  await acquire()
  try {
    return await new Promise<RunOutcome>((resolve, reject) => {
      const worker = new Worker(new URL('./runner.ts', import.meta.url), {
        workerData: job,
        transferList: job.inputs.map(i => i.buffer as ArrayBuffer),
        resourceLimits: { maxOldGenerationSizeMb: budget.heapMb }
      })
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
    })
  } finally {
    release()
  }
}
