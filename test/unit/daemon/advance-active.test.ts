// advanceActive (daemon/roles/context.ts) with an in-flight set: a tick that finds a trade's step still running
// (an event came meanwhile) has the step run once more when it ends, on the record as it is then; without such a
// tick it runs once; a trade that ended meanwhile is not stepped again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { advanceActive, type RoleContext } from '../../../daemon/roles/context.ts'
import type { TradeRecord } from '../../../daemon/trades.ts'
import { logger } from '../../../daemon/log.ts'

const log = logger('test:advance-active')

function record (state: string, version: number): TradeRecord<{ version: number }> {
  const at = new Date().toISOString()
  return { role: 'node', tradeId: '0x01', state: state as TradeRecord['state'], createdAt: at, updatedAt: at, timeline: [{ state: state as TradeRecord['state'], at }], data: { version } }
}

/** A trade book of one trade whose record the test replaces. */
function fakeContext (current: { t: TradeRecord<{ version: number }> }): RoleContext {
  const trades = {
    active: async () => ['finalized', 'delivered', 'refunded', 'failed'].includes(current.t.state) ? [] : [current.t],
    get: async () => current.t
  }
  return { trades } as unknown as RoleContext
}

/** A step that waits until released, recording the version of each record it was given. */
function gatedStep (): { step: (t: TradeRecord<{ version: number }>) => Promise<void>, seen: number[], release: () => void, started: () => Promise<void> } {
  const seen: number[] = []
  let release = (): void => {}
  let onStart = (): void => {}
  return {
    seen,
    step: async (t) => {
      seen.push(t.data.version)
      onStart()
      await new Promise<void>(resolve => { release = resolve })
    },
    release: () => { release() },
    started: async () => await new Promise<void>(resolve => { onStart = resolve })
  }
}

const settle = async (): Promise<void> => { for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve)) }

test('a tick during a running step makes it run once more, on the fresh record', async () => {
  const current = { t: record('escrowed', 1) }
  const ctx = fakeContext(current)
  const inFlight = new Set<string>()
  const g = gatedStep()
  let started = g.started()
  await advanceActive(ctx, 'node', g.step, log, inFlight)
  await started
  // Two events while it runs: one more run, not two.
  await advanceActive(ctx, 'node', g.step, log, inFlight)
  await advanceActive(ctx, 'node', g.step, log, inFlight)
  current.t = record('executing', 2)
  started = g.started()
  g.release()
  await started
  assert.equal(g.seen, [1, 2])
  g.release()
  await settle()
  assert.equal(g.seen, [1, 2], 'no third run without another tick')
  assert.is(inFlight.size, 0)
})

test('a trade that ended while its step ran is not stepped again', async () => {
  const current = { t: record('submitted', 1) }
  const ctx = fakeContext(current)
  const inFlight = new Set<string>()
  const g = gatedStep()
  const started = g.started()
  await advanceActive(ctx, 'node', g.step, log, inFlight)
  await started
  await advanceActive(ctx, 'node', g.step, log, inFlight)
  current.t = record('finalized', 2)
  g.release()
  await settle()
  assert.equal(g.seen, [1])
  assert.is(inFlight.size, 0)
})

test.run()
