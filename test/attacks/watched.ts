// A work counter for the precompile attack tests that does not use the clock: a Proxy over the call
// data that records how far into it the precompile looked (indexed reads, indexOf scans, and the
// same through subarrays), and how many bytes it looked at in all.
export interface Watched {
  data: Uint8Array
  /** Highest byte position (in the whole call data) read or scanned; -1 when none. */
  furthest: () => number
  /** Bytes read one by one plus bytes scanned by indexOf. */
  touched: () => number
  /** Indexed reads (not scans) at positions in [from, to). */
  readsIn: (from: number, to: number) => number
}

export function watch (bytes: Uint8Array): Watched {
  let furthest = -1
  let touched = 0
  const reads: number[] = []
  const view = (target: Uint8Array, base: number): Uint8Array => new Proxy(target, {
    get (t, prop) {
      if (typeof prop === 'string' && /^\d+$/.test(prop)) {
        const at = base + Number(prop)
        furthest = Math.max(furthest, at)
        touched++
        reads.push(at)
        return t[Number(prop)]
      }
      if (prop === 'indexOf') {
        return (value: number, from = 0): number => {
          const r = t.indexOf(value, from)
          const stop = r === -1 ? t.length - 1 : r
          if (stop >= from) { touched += stop - from + 1; furthest = Math.max(furthest, base + stop) }
          return r
        }
      }
      if (prop === 'subarray') return (s = 0, e = t.length): Uint8Array => view(t.subarray(s, e), base + s)
      const v = Reflect.get(t, prop, t)
      return typeof v === 'function' ? v.bind(t) : v
    }
  })
  return {
    data: view(bytes, 0),
    furthest: () => furthest,
    touched: () => touched,
    readsIn: (from, to) => reads.filter(at => at >= from && at < to).length
  }
}
