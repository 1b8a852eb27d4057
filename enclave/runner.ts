// The thread one analysis runs in (enclave/runs.ts starts it, one per run, possibly ahead of the run:
// it loads the EVM, then waits for its one job). It gets the buyer's code,
// the sellers' plaintext and the caps (and, for a private run, its noise key and clamps), runs the confined EVM and posts the outcome back; it holds no
// key (the task key that signs, the seal key and the buyer's result key stay in the enclave worker)
// and talks to nothing but the enclave worker that started it. Its budget is enforced from outside:
// the enclave worker terminates it at its time budget, V8 at its heap budget.
import { parentPort } from 'node:worker_threads'
import { runAnalysis } from './evm.ts'
import type { RunJob } from './messages.ts'

if (parentPort === null) throw new Error('enclave/runner.ts must run as a worker thread')
const port = parentPort
// One job per thread: the thread is terminated after it (no state passes to another run).
// A failure rejects unhandled, which ends the thread with an 'error' the enclave worker reports (RunFailedError).
port.once('message', async (job: RunJob) => {
  const outcome = await runAnalysis(job.code, job.inputs, { gasCap: job.gasCap, outputCap: job.outputCap }, job.privacy)
  port.postMessage(outcome, [outcome.output.buffer as ArrayBuffer])
})
