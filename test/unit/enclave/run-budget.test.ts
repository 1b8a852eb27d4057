// How a run's budget follows from its gas cap (enclave/runs.ts runBudgetOf, docs/enclave.md "Run budget").
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  DEFAULT_RUN_BUDGET_POLICY, MAX_CPU_MS_PER_MGAS, MAX_GAS_CAP, MAX_RUN_HEAP_MB, MIN_RUN_HEAP_MB, MIN_RUN_WALL_MS, RUN_HEAP_BASE_MB,
  RUN_HEAP_MB_PER_MGAS, RUN_WALL_SLACK, runBudgetOf
} from '../../../enclave/index.ts'
import { runBudgetPolicy } from '../../../enclave/runs.ts'
import { throwsWith } from '../../helpers/enclave.ts'

test('time and heap grow with the gas cap from the named constants, the heap within its bounds', () => {
  const small = runBudgetOf(1_000_000n)
  assert.is(small.wallMs, MIN_RUN_WALL_MS + MAX_CPU_MS_PER_MGAS * RUN_WALL_SLACK)
  assert.is(small.heapMb, RUN_HEAP_BASE_MB + RUN_HEAP_MB_PER_MGAS)
  const gigagas = runBudgetOf(1_000_000_000n)
  assert.is(gigagas.wallMs, MIN_RUN_WALL_MS + 1000 * MAX_CPU_MS_PER_MGAS * RUN_WALL_SLACK)
  assert.ok(gigagas.heapMb > small.heapMb)
  assert.is(runBudgetOf(MAX_GAS_CAP * 10n).heapMb, MAX_RUN_HEAP_MB)
  assert.is(runBudgetOf(1n, { ...DEFAULT_RUN_BUDGET_POLICY, heapBaseMb: 0, heapMbPerMgas: 0 }).heapMb, MIN_RUN_HEAP_MB)
})

test('a policy is the defaults with valid overrides; a bad field is refused by name', () => {
  assert.equal(runBudgetPolicy({ minWallMs: 10 }), { ...DEFAULT_RUN_BUDGET_POLICY, minWallMs: 10 })
  for (const bad of [{ minWallMs: -1 }, { wallMsPerMgas: Number.NaN }, { heapBaseMb: '5' as unknown as number }]) {
    const err = throwsWith(() => runBudgetPolicy(bad), 'InvalidRequestError')
    assert.match(err.message, new RegExp(`runBudget\\.${Object.keys(bad)[0]}`))
  }
  throwsWith(() => runBudgetPolicy({ maxHeapMb: 1 }), 'InvalidRequestError')
})

test.run()
