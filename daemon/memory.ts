// Gives the memory of finished trade work back once the daemon is quiet. A seller's delivery holds the whole
// dataset in one Buffer, a node's the chunks it passed to its enclave: once the work is over these are garbage,
// but V8 frees a Buffer's memory only when a garbage collection finds it unreachable, and an idle daemon
// allocates too little to start one: a seller stayed 64 MiB (its dataset) above its resting memory for as long
// as it idled after a trade (BENCHMARKS.md "Daemon footprint"). So a while after the last trade transition
// the daemon asks V8 for one full collection. Node has no API for that but the `gc` function that
// --expose-gc gives; the flag is set here, for this process, rather than asked of every launcher.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Logger } from '../config/index.ts'

/** How long after the last trade transition the daemon waits before it collects (ms): a run of transitions makes one collection. */
export const MEMORY_RELEASE_QUIET_MS = 2000

/** V8's full garbage collection, or null where it cannot be had. */
function fullCollection (): (() => void) | null {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (typeof exposed === 'function') return exposed
  try {
    setFlagsFromString('--expose-gc')
    const gc: unknown = runInNewContext('gc')
    return typeof gc === 'function' ? gc as () => void : null
  } catch {
    return null
  }
}

export interface MemoryReleaser {
  /** Something finished (a trade transition): collect once nothing else has for MEMORY_RELEASE_QUIET_MS. */
  poke: () => void
  stop: () => void
}

export function memoryReleaser (log: Logger, quietMs = MEMORY_RELEASE_QUIET_MS): MemoryReleaser {
  const gc = fullCollection()
  let timer: ReturnType<typeof setTimeout> | undefined
  const collect = (): void => {
    timer = undefined
    if (gc === null) return
    const before = process.memoryUsage.rss()
    gc()
    log.debug('garbage collected after trade work', { rssBeforeMiB: Math.round(before / 2 ** 20), rssMiB: Math.round(process.memoryUsage.rss() / 2 ** 20) })
  }
  return {
    poke: () => {
      if (gc === null) return
      clearTimeout(timer)
      timer = setTimeout(collect, quietMs)
      timer.unref()
    },
    stop: () => { clearTimeout(timer); timer = undefined }
  }
}
