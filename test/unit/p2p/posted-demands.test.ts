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
      return [...logs].filter(([b]) => b >= from && b <= to).flatMap(([b, l]) => l.map(d => ({ ...d, blockNumber: b })))
    },
    readOne: async (buyer: string, demandHash: string) => {
      c.singles++
      if (c.fail) throw new Error('chain down')
      return [...logs].find(([, l]) => l.some(d => d.buyer === buyer && d.demandHash === demandHash))?.[0] ?? null
    }
  }
  return c
}

const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

test('a demand in a scanned block answers without a chain read; one never posted is read and refused', async () => {
  const c = fakeChain()
  const p = createPostedDemands({ fromBlock: 10, reorgDepth: 0, read: c.read, readOne: c.readOne })
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
  const p = createPostedDemands({ fromBlock: 1, reorgDepth: 0, read: c.read, readOne: c.readOne })
  c.logs.set(5, [{ buyer: A, demandHash: h(5) }])
  p.onBlock(5)
  const answer = p.isPosted(A, h(5))
  open()
  assert.is(await answer, true)
  assert.is(c.singles, 0)
})

test('a failed read falls back to a chain read per demand and is retried at the next block', async () => {
  const c = fakeChain()
  const p = createPostedDemands({ fromBlock: 1, reorgDepth: 0, read: c.read, readOne: c.readOne })
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
  const p = createPostedDemands({ fromBlock: 1, reorgDepth: 0, read: c.read, readOne: c.readOne, maxKnown: 2 })
  c.logs.set(1, [1, 2, 3].map(n => ({ buyer: A, demandHash: h(n) })))
  p.onBlock(1)
  await settle()
  assert.is(p.known(), 2)
  assert.is(await p.isPosted(A, h(3)), true)
  assert.is(c.singles, 0)
  assert.is(await p.isPosted(A, h(1)), true)
  assert.is(c.singles, 1)
})

test('reorgDepth: each scan reads the last blocks again; a demand they no longer hold is forgotten, one moved to another block kept', async () => {
  const c = fakeChain()
  const p = createPostedDemands({ fromBlock: 1, reorgDepth: 2, read: c.read, readOne: c.readOne })
  c.logs.set(4, [{ buyer: A, demandHash: h(4) }])
  c.logs.set(5, [{ buyer: A, demandHash: h(5) }, { buyer: B, demandHash: h(6) }])
  p.onBlock(5)
  await settle()
  assert.is(p.known(), 3)
  // A reorganisation replaces block 5: h(5) is gone, h(6) is mined again in block 6.
  c.logs.delete(5)
  c.logs.set(6, [{ buyer: B, demandHash: h(6) }])
  p.onBlock(6)
  await settle()
  assert.equal(c.ranges, [[1, 5], [4, 6]], 'the last 2 blocks read again')
  assert.is(p.known(), 2)
  assert.is(await p.isPosted(A, h(4)), true)
  assert.is(await p.isPosted(B, h(6)), true)
  assert.is(c.singles, 0)
  assert.is(await p.isPosted(A, h(5)), false, 'read from the chain, which no longer holds it')
  assert.is(c.singles, 1)
  // One known from a chain read alone is forgotten as well when its block goes (and kept until a scan reads that block).
  c.logs.set(9, [{ buyer: A, demandHash: h(7) }])
  assert.is(await p.isPosted(A, h(7)), true)
  p.onBlock(7)
  await settle()
  assert.equal(c.ranges.at(-1), [5, 7])
  assert.is(await p.isPosted(A, h(7)), true)
  assert.is(c.singles, 2, 'known from the chain read: the scan up to block 7 did not forget it')
  c.logs.delete(9)
  p.onBlock(10)
  await settle()
  assert.equal(c.ranges.at(-1), [6, 10])
  assert.is(await p.isPosted(A, h(7)), false)
})

test.run()
