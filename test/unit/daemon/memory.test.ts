// daemon/memory.ts: after trade work, one full collection once the daemon is quiet, which frees what V8
// would otherwise keep until some later allocation started one (a dropped Buffer's memory), then glibc's
// malloc_trim, which gives the system the free pages glibc would otherwise keep.
import { readFileSync } from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Logger } from '../../../config/index.ts'
import { allocatorTrim, memoryReleaser, receiveCollector, type AllocatorTrim } from '../../../daemon/memory.ts'

function recordingLogger (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  const log: Logger = {
    error: () => {}, warn: () => {}, info: () => {}, trace: () => {},
    debug: (msg) => { lines.push(msg) },
    enabled: () => true,
    namespace: 'test'
  }
  return { log, lines }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Polls `cond` every 10 ms, for at most `ms`. */
async function eventually (cond: () => boolean, ms = 10_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) if (cond()) return true
  return cond()
}

test('a run of pokes makes one collection once they stop, and it frees a dropped buffer', async () => {
  const { log, lines } = recordingLogger()
  const releaser = memoryReleaser(log, 50, null)
  try {
    let buffer: Buffer | null = Buffer.alloc(8 * 2 ** 20, 1)
    const ref = new WeakRef(buffer)
    buffer = null
    for (let i = 0; i < 5; i++) { releaser.poke(); await sleep(5) }
    assert.ok(await eventually(() => lines.length > 0), 'no collection after the pokes stopped')
    assert.is(ref.deref(), undefined, 'the dropped buffer is still there after the collection')
    await sleep(200)
    assert.equal(lines, ['garbage collected after trade work'])
  } finally {
    releaser.stop()
  }
})

test('stop cancels a pending collection, and a pending trim', async () => {
  const { log, lines } = recordingLogger()
  let trims = 0
  const trim = async (): Promise<AllocatorTrim> => () => { trims++; return true }
  const releaser = memoryReleaser(log, 50, trim, 50)
  releaser.poke()
  releaser.stop()
  releaser.poke()
  await sleep(200)
  assert.equal(lines, [], 'a poke before or after stop collected')
  const second = memoryReleaser(log, 10, trim, 100)
  second.poke()
  assert.ok(await eventually(() => lines.length > 0), 'no collection')
  second.stop()
  await sleep(250)
  assert.is(trims, 0, 'trimmed after stop')
})

test('after its collection the releaser trims the allocator once, after the delay, not before', async () => {
  const { log, lines } = recordingLogger()
  const trimmedAfter: string[][] = []
  const trim = async (): Promise<AllocatorTrim> => () => { trimmedAfter.push([...lines]); return true }
  const releaser = memoryReleaser(log, 20, trim, 100)
  try {
    for (let i = 0; i < 3; i++) { releaser.poke(); await sleep(5) }
    assert.ok(await eventually(() => lines.length > 0), 'no collection')
    assert.is(trimmedAfter.length, 0, 'trimmed at the collection, before the delay')
    assert.ok(await eventually(() => trimmedAfter.length > 0), 'no trim after the collection')
    await sleep(200)
    assert.equal(trimmedAfter, [['garbage collected after trade work']], 'one trim, after the one collection')
    assert.equal(lines, ['garbage collected after trade work', 'gave the allocator\'s free pages back'])
  } finally {
    releaser.stop()
  }
})

/** This process's anonymous resident memory (heaps, not mapped files), MiB. */
const anonMiB = (): number => Number(/RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024

test('the releaser gives the system back the free pages of a heap that small live allocations pin', async () => {
  if (process.platform !== 'linux' || await allocatorTrim() === null) {
    // Said, not skipped silently: the trim is glibc's, and only there does this test mean anything.
    console.log('  (not run: no glibc malloc_trim on this system; the daemon then only collects)')
    return
  }
  const { log, lines } = recordingLogger()
  // 60 MiB in 60 kB buffers (under glibc's 128 KiB mmap threshold: from its heap, as a node's transport buffers
  // are), with a small buffer kept after every 16th: freed, the big ones leave holes glibc does not return itself.
  let big: Buffer[] | null = []
  const kept: Buffer[] = []
  for (let i = 0; i < 1024; i++) {
    big.push(Buffer.allocUnsafeSlow(60_000).fill(1))
    if (i % 16 === 0) kept.push(Buffer.allocUnsafeSlow(64).fill(2))
  }
  const held = anonMiB()
  big = null
  const releaser = memoryReleaser(log, 10, allocatorTrim, 100)
  try {
    releaser.poke()
    assert.ok(await eventually(() => lines.length === 2), `the releaser did not collect and trim: ${lines.join('; ')}`)
    const after = anonMiB()
    assert.ok(held - after >= 40, `after the trim the process still holds ${after.toFixed(1)} MiB of the ${held.toFixed(1)} MiB it held with the buffers`)
    assert.is(kept.length, 64)
  } finally {
    releaser.stop()
  }
})

test('the receive collector frees dropped young buffers once every so many bytes, not before', async () => {
  const collect = receiveCollector(1024)
  const held: { buffers: Buffer[] | null } = { buffers: Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 1)) }
  await sleep(10)
  const before = process.memoryUsage().arrayBuffers
  held.buffers = null
  // Synchronous from here to the reading: nothing else allocates, so nothing else starts a collection.
  collect(1023)
  assert.is(process.memoryUsage().arrayBuffers, before, 'collected before the byte count was reached')
  collect(1)
  assert.ok(await eventually(() => before - process.memoryUsage().arrayBuffers >= 3 * 2 ** 20), 'the 4 MiB of dropped buffers are still held')
})

test.run()
