// Warm run threads (enclave/runs.ts prewarmRunThread, docs/enclave.md "Run budget"): a thread started ahead of
// its run still runs one job under that run's budget and is killed at it; the next run gets another thread.
// Real threads (the runner loads the EVM), no enclave worker.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getBytes } from 'ethers'
import { ResultStatus } from '../../../contracts/formats.ts'
import { prewarmRunThread, runInThread } from '../../../enclave/runs.ts'
import { rejectsWith } from '../../helpers/enclave.ts'

/** JUMPDEST; PUSH1 0; JUMP: runs until its gas is gone. */
const LOOP = getBytes('0x5b600056')
const HEAP_MB = 128
/** Long enough for a thread to load the EVM on a loaded machine; the killed run below has far less. */
const WALL_MS = 120_000

const job = (gasCap: bigint) => ({ code: LOOP, inputs: [Uint8Array.of(1, 2, 3)], gasCap, outputCap: 1024n })

test('a run on a warm thread ends as on a new one; the next run of the same budget gets a thread too', async () => {
  prewarmRunThread({ wallMs: WALL_MS, heapMb: HEAP_MB })
  const first = await runInThread(job(100_000n), { wallMs: WALL_MS, heapMb: HEAP_MB })
  assert.is(first.status, ResultStatus.OutOfGas)
  assert.is(first.gasUsed, 100_000n)
  // No warm thread left for this budget (the first was used and terminated): a new one is started.
  const second = await runInThread(job(200_000n), { wallMs: WALL_MS, heapMb: HEAP_MB })
  assert.is(second.status, ResultStatus.OutOfGas)
  assert.is(second.gasUsed, 200_000n)
})

test('a warm thread is killed at its run\'s time budget, counted from the job', async () => {
  prewarmRunThread({ wallMs: WALL_MS, heapMb: HEAP_MB })
  // Let it load so the budget below is spent in the run, not the start.
  await runInThread(job(1_000n), { wallMs: WALL_MS, heapMb: HEAP_MB + 1 })
  prewarmRunThread({ wallMs: WALL_MS, heapMb: HEAP_MB })
  const err = await rejectsWith(runInThread(job(10n ** 15n), { wallMs: 300, heapMb: HEAP_MB }), 'RunOverBudgetError')
  assert.match(err.message, /time budget of 300 ms/)
  // The enclave goes on: another run completes.
  const after = await runInThread(job(1_000n), { wallMs: WALL_MS, heapMb: HEAP_MB })
  assert.is(after.status, ResultStatus.OutOfGas)
})

test.run()
