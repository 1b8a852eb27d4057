// Gives the memory of finished trade work back once the daemon is quiet. A seller's delivery holds the whole
// dataset in one Buffer, a node's the chunks it passed to its enclave: once the work is over these are garbage,
// but V8 frees a Buffer's memory only when a garbage collection finds it unreachable, and an idle daemon
// allocates too little to start one: a seller stayed 64 MiB (its dataset) above its resting memory for as long
// as it idled after a trade (BENCHMARKS.md "Daemon footprint"). So a while after the last trade transition
// the daemon asks V8 for one full collection. Node has no API for that but the `gc` function that
// --expose-gc gives; the flag is set here, for this process, rather than asked of every launcher.
// Then it asks glibc for the free pages its heaps keep (allocatorTrim, below).
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Logger } from '../config/index.ts'

/** How long after the last trade transition the daemon waits before it collects (ms): a run of transitions makes one collection. */
export const MEMORY_RELEASE_QUIET_MS = 2000

/**
 * Bytes a node receives between two young-generation collections it asks for while data comes in (receiveCollector).
 * A scavenge of a heap that is mostly garbage takes well under a millisecond; once a MiB keeps what waits to be freed
 * to about a MiB of transport buffers.
 */
export const RECEIVE_COLLECTION_BYTES = 1024 * 1024

/**
 * How long after its full collection the daemon asks glibc for its free pages (ms): a margin. V8 may free the memory
 * of the ArrayBuffers a collection found dead on a helper thread after the collection (concurrent array buffer
 * sweeping), which a trim at once would find still held (not seen in the unit test's pattern, where 0 gave as much).
 */
export const ALLOCATOR_TRIM_DELAY_MS = 100

/** V8's `gc` (with --expose-gc): a full collection, or with `{ type: 'minor' }` a young-generation one. */
type Collect = (options?: { type: 'major' | 'minor' }) => void

/** V8's garbage collection, or null where it cannot be had. */
function fullCollection (): Collect | null {
  const exposed = (globalThis as { gc?: Collect }).gc
  if (typeof exposed === 'function') return exposed
  try {
    setFlagsFromString('--expose-gc')
    const gc: unknown = runInNewContext('gc')
    return typeof gc === 'function' ? gc as Collect : null
  } catch {
    return null
  }
}

/** glibc's `malloc_trim(0)`: gives every heap's free pages back to the system; true if it gave any. */
export type AllocatorTrim = () => boolean

let trimLoading: Promise<AllocatorTrim | null> | undefined

/**
 * glibc's malloc_trim, or null where there is none (not Linux, a C library other than glibc, koffi missing).
 * Why: freeing a buffer gives its memory back to glibc, not to the system; glibc returns only the top of its heap
 * by itself, and a few small allocations that outlive a delivery sit above the freed buffers. Read off a node a
 * minute after a 64 MiB trade (gdb, malloc_info): its main heap 39 MiB, 32 MiB of it free in 1,299 chunks; one
 * malloc_trim(0) took the node from 137 to 105 MiB, below its 110 MiB at rest (BENCHMARKS.md "the allocator's free
 * pages"). Node has no binding for it, so it is called through koffi, a foreign function interface shipped
 * prebuilt, loaded only here, at the first trim (not at start: 15 ms).
 */
export async function allocatorTrim (): Promise<AllocatorTrim | null> {
  trimLoading ??= (async () => {
    if (process.platform !== 'linux') return null
    try {
      const koffi = (await import('koffi')).default
      const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number
      return () => trim(0) === 1
    } catch {
      return null
    }
  })()
  return await trimLoading
}

export interface MemoryReleaser {
  /**
   * Something finished (a trade transition, an idle enclave thread stopped): once nothing else has for
   * MEMORY_RELEASE_QUIET_MS, collect, then trim the allocator. Nothing after stop().
   */
  poke: () => void
  stop: () => void
}

const MiB = (bytes: number): number => Math.round(bytes / 2 ** 20)

/**
 * `loadTrim` gives what hands the allocator's free pages back (allocatorTrim by default, loaded at the first release;
 * null: nothing is trimmed); `trimDelayMs` is how long after the collection it is called.
 */
export function memoryReleaser (log: Logger, quietMs = MEMORY_RELEASE_QUIET_MS, loadTrim: (() => Promise<AllocatorTrim | null>) | null = allocatorTrim, trimDelayMs = ALLOCATOR_TRIM_DELAY_MS): MemoryReleaser {
  const gc = fullCollection()
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  let saidNoTrim = false
  const giveBack = async (): Promise<void> => {
    if (loadTrim === null) return
    const trimNow = await loadTrim()
    if (trimNow === null && !saidNoTrim) {
      saidNoTrim = true
      log.debug('no malloc_trim here (not glibc, or koffi cannot load): memory is only collected')
    }
    if (trimNow === null || stopped) return
    const before = process.memoryUsage.rss()
    const started = performance.now()
    const released = trimNow()
    const ms = Math.round((performance.now() - started) * 10) / 10
    log.debug('gave the allocator\'s free pages back', { released, ms, rssBeforeMiB: MiB(before), rssMiB: MiB(process.memoryUsage.rss()) })
  }
  const collect = (): void => {
    timer = undefined
    if (gc !== null) {
      const before = process.memoryUsage.rss()
      gc()
      log.debug('garbage collected after trade work', { rssBeforeMiB: MiB(before), rssMiB: MiB(process.memoryUsage.rss()) })
    }
    timer = setTimeout(() => {
      timer = undefined
      void giveBack().catch((err: unknown) => { log.debug('could not trim the allocator', { err: err as Error }) })
    }, trimDelayMs)
    timer.unref()
  }
  return {
    poke: () => {
      if (stopped || (gc === null && loadTrim === null)) return
      clearTimeout(timer)
      timer = setTimeout(collect, quietMs)
      timer.unref()
    },
    stop: () => { stopped = true; clearTimeout(timer); timer = undefined }
  }
}

/**
 * For a node's data receive: call it with each chunk's size; every RECEIVE_COLLECTION_BYTES it asks V8 for a
 * young-generation collection. Why: to receive 64 MiB the node's main thread allocates about 4,700 buffers of
 * 48-64 KiB in glibc's main heap (Node's 64 KiB socket reads, two per noise frame in Node's decryption, noise's
 * joins of frames that straddle two reads: BENCHMARKS.md "fewer transport buffers"), each dead within
 * milliseconds, but freed only when a collection finds it so. Left to V8, a delivery ran mostly old-generation
 * cycles, started by the external memory they add up to (about one per 64 MiB of buffers), so tens of MiB of them
 * sat in the heap at once, and glibc kept the heap that size after the trade (it gives back only its top, and a
 * few small live allocations sat above the freed buffers). Collected young, once a MiB, they are freed before
 * the heap has to grow for them.
 */
export function receiveCollector (everyBytes = RECEIVE_COLLECTION_BYTES): (bytes: number) => void {
  const gc = fullCollection()
  if (gc === null) return () => {}
  let since = 0
  return (bytes) => {
    since += bytes
    if (since < everyBytes) return
    since = 0
    gc({ type: 'minor' })
  }
}
