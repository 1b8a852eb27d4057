// The thread one analysis runs in (enclave/runs.ts starts it, one per run, possibly ahead of the run:
// it loads the EVM, then waits for its one job). It gets the buyer's code,
// the sellers' plaintext and the caps (and, for a private run, its noise key and clamps), runs the confined EVM and posts the outcome back; it holds no
// key (the task key that signs, the seal key and the buyer's result key stay in the enclave worker)
// and talks to nothing but the enclave worker that started it. Its budget is enforced from outside:
// the enclave worker terminates it at its time budget, V8 at its heap budget.
import { parentPort } from 'node:worker_threads'
import { createConfinedEvm, runAnalysis } from './evm.ts'
import type { RunJob } from './messages.ts'

if (parentPort === null) throw new Error('enclave/runner.ts must run as a worker thread')
const port = parentPort
// One job per thread: the thread is terminated after it (no state passes to another run).
// While it waits for its job, the thread makes one confined EVM and throws it away: the first one in a thread
// costs about 0.1 s more than the next (compiling the engine's code, the one-time patch of its memory). It
// holds nothing of any run: the job comes after, and gets an EVM of its own.
const ready = createConfinedEvm().then(() => {}, () => {})
// A failure rejects unhandled, which ends the thread with an 'error' the enclave worker reports (RunFailedError).
port.once('message', async (job: RunJob) => {
  await ready
  const outcome = await runAnalysis(job.code, job.inputs, { gasCap: job.gasCap, outputCap: job.outputCap }, job.privacy)
  port.postMessage(outcome, [outcome.output.buffer as ArrayBuffer])
})
