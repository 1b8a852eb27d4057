// The posted-demands index behind the demand validator (p2p/demand/posted.ts): demands read from
// BDBC's logs as blocks arrive answer without a chain read; anything else is read from the chain,
// so a demand never posted is never taken as posted.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createPostedDemands } from '../../../p2p/demand/index.ts'

const A = '0x' + 'aa'.repeat(20)
const B = '0x' + 'bb'.repeat(20)
const h = (n: number): string => '0x' + n.toString(16).padStart(64, '0')

/** A fake BDBC: logs by block; counts the reads. */
function fakeChain () {
  const logs = new Map<number, Array<{ buyer: string, demandHash: string }>>()
  const c = {
    logs,
    ranges: [] as Array<[number, number]>,
    singles: 0,
    fail: false,
    gate: null as Promise<void> | null,
    read: async (from: number, to: number) => {
      c.ranges.push([from, to])
      if (c.gate !== null) await c.gate
      if (c.fail) throw new Error('chain down')
      return [...logs].filter(([b]) => b >= from && b <= to).flatMap(([, l]) => l)
    },
    readOne: async (buyer: string, demandHash: string) => {
      c.singles++
      if (c.fail) throw new Error('chain down')
      return [...logs.values()].flat().some(d => d.buyer === buyer && d.demandHash === demandHash)
    }
  }
  return c
}

const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

test('a demand in a scanned block answers without a chain read; one never posted is read and refused', async () => {
  const c = fakeChain()
  const p = createPostedDemands({ fromBlock: 10, read: c.read, readOne: c.readOne })
  c.logs.set(12, [{ buyer: A, demandHash: h(1) }])
  p.onBlock(12)
  await settle()
  assert.equal(c.ranges, [[10, 12]])
  assert.is(await p.isPosted(A.toUpperCase().replace('0X', '0x'), h(1)), true, 'case of the address does not matter')
  assert.is(c.singles, 0)
  // Another buyer's demand of the same hash, or an unknown hash: read from the chain, and not posted.
  assert.is(await p.isPosted(B, h(1)), false)
  assert.is(await p.isPosted(A, h(2)), false)
  assert.is(c.singles, 2)
  // The next block is read from where the last read ended.
  c.logs.set(13, [{ buyer: B, demandHash: h(3) }])
  p.onBlock(13)
  await settle()
  assert.equal(c.ranges, [[10, 12], [13, 13]])
  assert.is(await p.isPosted(B, h(3)), true)
  assert.is(c.singles, 2)
})

test('a demand arriving while its block is read waits for that read', async () => {
  const c = fakeChain()
  let open = (): void => {}
  c.gate = new Promise(resolve => { open = resolve })
  const p = createPostedDemands({ fromBlock: 1, read: c.read, readOne: c.readOne })
  c.logs.set(5, [{ buyer: A, demandHash: h(5) }])
  p.onBlock(5)
  const answer = p.isPosted(A, h(5))
  open()
  assert.is(await answer, true)
  assert.is(c.singles, 0)
})

test('a failed read falls back to a chain read per demand and is retried at the next block', async () => {
  const c = fakeChain()
  const p = createPostedDemands({ fromBlock: 1, read: c.read, readOne: c.readOne })
  c.logs.set(2, [{ buyer: A, demandHash: h(2) }])
  c.fail = true
  p.onBlock(2)
  await settle()
  await p.isPosted(A, h(2)).then(() => assert.unreachable('the chain is down'), (err: Error) => assert.match(err.message, 'chain down'))
  c.fail = false
  assert.is(await p.isPosted(A, h(2)), true, 'read alone')
  assert.is(c.singles, 2)
  p.onBlock(3)
  await settle()
  assert.equal(c.ranges, [[1, 2], [1, 3]])
})

test('bounded: past maxKnown the oldest are forgotten and read from the chain again', async () => {
  const c = fakeChain()
  const p = createPostedDemands({ fromBlock: 1, read: c.read, readOne: c.readOne, maxKnown: 2 })
  c.logs.set(1, [1, 2, 3].map(n => ({ buyer: A, demandHash: h(n) })))
  p.onBlock(1)
  await settle()
  assert.is(p.known(), 2)
  assert.is(await p.isPosted(A, h(3)), true)
  assert.is(c.singles, 0)
  assert.is(await p.isPosted(A, h(1)), true)
  assert.is(c.singles, 1)
})

test.run()
