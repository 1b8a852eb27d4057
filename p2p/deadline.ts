// A deadline for one operation or one stream that ends with it.
//
// Hand-written instead of AbortSignal.timeout / AbortSignal.any: Node keeps a timeout signal, and a
// composite one, alive while it has had an 'abort' listener and has not aborted (lib/internal/
// abort_controller.js: gcPersistentSignals, and the dependant sets of AbortSignal.any's sources), and
// the timer of AbortSignal.timeout cannot be cancelled. Every stream made several (a read's timeout,
// the exchange deadline, their composite, the dial's), so a peer that opened streams as fast as they
// were answered made a daemon hold rate × timeout signals, timers and what they reference: measured
// 8 KiB a finished stream (bench/soak/stream-flood.ts). A plain AbortController's signal is never
// pinned by Node, and clear() cancels the timer and drops our listeners on the parents, so nothing
// of an operation outlives it.
import type { Stream } from '@libp2p/interface'

export interface Deadline {
  /** Aborts when the time is up (a DOMException named TimeoutError, as AbortSignal.timeout) or a parent aborts (its reason). */
  readonly signal: AbortSignal
  /** True when the time ran out (rather than a parent aborting). */
  readonly timedOut: () => boolean
  /** Ends the deadline: the timer is cancelled and the parents' listeners removed. Idempotent. */
  readonly clear: () => void
}

export function deadline (timeoutMs: number, parents: ReadonlyArray<AbortSignal | undefined> = []): Deadline {
  const controller = new AbortController()
  const live = parents.filter((p): p is AbortSignal => p != null)
  let expired = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const clear = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    for (const p of live) p.removeEventListener('abort', onParentAbort)
  }
  function onParentAbort (this: AbortSignal): void {
    clear()
    controller.abort(this.reason)
  }
  const already = live.find(p => p.aborted)
  if (already !== undefined) {
    controller.abort(already.reason)
  } else {
    for (const p of live) p.addEventListener('abort', onParentAbort, { once: true })
    timer = setTimeout(() => {
      expired = true
      clear()
      controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
    }, timeoutMs)
    // A deadline alone must not keep the process running (as AbortSignal.timeout's timer does not).
    timer.unref?.()
  }
  return { signal: controller.signal, timedOut: () => expired, clear }
}

/** Ends `d` when `stream` closes (at once if it already has): the deadline of an exchange lives as long as its stream. */
export function clearOnClose (stream: Stream, d: Deadline): void {
  if (stream.status === 'open' || stream.status === 'closing') stream.addEventListener('close', d.clear, { once: true })
  else d.clear()
}

/** Runs `fn` under a deadline of `timeoutMs` (and the parents), which ends with it. */
export async function withDeadline<T> (timeoutMs: number, parents: ReadonlyArray<AbortSignal | undefined>, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const d = deadline(timeoutMs, parents)
  try {
    return await fn(d.signal)
  } finally {
    d.clear()
  }
}
