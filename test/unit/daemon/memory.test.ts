// daemon/memory.ts: after trade work, one full collection once the daemon is quiet, which frees what V8
// would otherwise keep until some later allocation started one (a dropped Buffer's memory).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Logger } from '../../../config/index.ts'
import { memoryReleaser, receiveCollector } from '../../../daemon/memory.ts'

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
  const releaser = memoryReleaser(log, 50)
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

test('stop cancels a pending collection', async () => {
  const { log, lines } = recordingLogger()
  const releaser = memoryReleaser(log, 50)
  releaser.poke()
  releaser.stop()
  await sleep(200)
  assert.equal(lines, [])
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
