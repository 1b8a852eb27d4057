// The noise of the private mode (docs/enclave.md "Private mode"): a keyed deterministic bit source and exact
// samplers over the integers, so that every honest enclave of a trade draws the same noise, bit for bit, and nobody
// without the sellers' privacy secrets can predict it.
//
// Why no floating point: naive Laplace sampling (-b·ln(U) on doubles) leaves gaps and a non-uniform grid in its
// output whose pattern depends on the true value, so an output can reveal which of two neighbouring datasets it
// came from (Mironov 2012, "On significance of the least significant bits for differential privacy"). Here every
// sample is an integer drawn exactly from its distribution with integer arithmetic only (bigint), by the algorithms
// of Canonne, Kamath and Steinke 2020 ("The Discrete Gaussian for Differential Privacy", Algorithms 1 and 2), which
// OpenDP uses for its discrete Laplace (`sample_discrete_laplace`, cks20) and Google's differential-privacy library
// for its secure noise. Hand-written because no maintained JavaScript package implements them exactly on a keyed
// deterministic source; each function is a few lines, and test/unit/enclave/noise.test.ts checks the distributions.
//
// The bit source: HMAC-SHA256 in counter mode (NIST SP 800-108 KDF in counter mode) under a 32-byte key, read
// byte by byte in order. Uniform integers below n are drawn by rejection on the fewest whole bytes that hold n - 1,
// so every draw is exactly uniform and uses a number of bytes that depends only on the values drawn.
import { createHmac } from 'node:crypto'

/** Domain label of the noise stream's blocks: HMAC(key, label ‖ u64 block counter). */
export const NOISE_STREAM_LABEL = 'SDTE.DP.NoiseStream.v1'

const LABEL = new TextEncoder().encode(NOISE_STREAM_LABEL)

/** A deterministic stream of bytes keyed by 32 secret bytes: the same key gives the same bytes everywhere. */
export class NoiseStream {
  private readonly key: Uint8Array
  private block = 0n
  private buf = new Uint8Array(0)
  private pos = 0

  constructor (key: Uint8Array) {
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new RangeError('noise key must be 32 bytes')
    this.key = Uint8Array.from(key)
  }

  private refill (): void {
    const input = new Uint8Array(LABEL.length + 8)
    input.set(LABEL)
    new DataView(input.buffer).setBigUint64(LABEL.length, this.block++)
    this.buf = new Uint8Array(createHmac('sha256', this.key).update(input).digest())
    this.pos = 0
  }

  byte (): number {
    if (this.pos >= this.buf.length) this.refill()
    return this.buf[this.pos++]
  }

  /** A uniform integer in [0, n), n ≥ 1: rejection sampling on ceil(bits(n - 1) / 8) bytes. */
  uniformBelow (n: bigint): bigint {
    if (n < 1n) throw new RangeError('uniformBelow needs n >= 1')
    if (n === 1n) return 0n
    const max = n - 1n
    const bits = max.toString(2).length
    const bytes = Math.ceil(bits / 8)
    const mask = (1n << BigInt(bits)) - 1n
    if (bytes <= 6) {
      // The common case in plain numbers (exact below 2^53), same bytes and same result as the bigint path.
      const m = Number(mask)
      const lim = Number(max)
      for (;;) {
        let v = 0
        for (let i = 0; i < bytes; i++) v = v * 256 + this.byte()
        v = v % (m + 1) // keeps the low `bits` bits: m + 1 is a power of two
        if (v <= lim) return BigInt(v)
      }
    }
    for (;;) {
      let v = 0n
      for (let i = 0; i < bytes; i++) v = (v << 8n) | BigInt(this.byte())
      v &= mask
      if (v <= max) return v
    }
  }
}

/** Bernoulli(num / den), 0 ≤ num ≤ den, exactly. */
export function bernoulli (s: NoiseStream, num: bigint, den: bigint): boolean {
  return s.uniformBelow(den) < num
}

/**
 * Bernoulli(exp(-num / den)), num ≥ 0, den > 0, exactly (CKS20 Algorithm 1): for γ ≤ 1 count K while
 * Bernoulli(γ / K) succeeds and answer whether K is odd; for γ > 1, floor(γ) draws of Bernoulli(exp(-1)) then one of
 * Bernoulli(exp(-(γ - floor(γ)))). Stops at the first failure, so it takes a few draws on average whatever γ is.
 */
export function bernoulliExp (s: NoiseStream, num: bigint, den: bigint): boolean {
  if (num < 0n || den <= 0n) throw new RangeError('bernoulliExp needs num >= 0, den > 0')
  if (num <= den) {
    let k = 1n
    while (bernoulli(s, num, den * k)) k++
    return (k & 1n) === 1n
  }
  for (let i = num / den; i > 0n; i--) if (!bernoulliExp(s, 1n, 1n)) return false
  return bernoulliExp(s, num % den, den)
}

/**
 * Discrete Laplace (two-sided geometric) with scale num / den: P[y] ∝ exp(-|y| · den / num) over all integers y,
 * exactly (CKS20 Algorithm 2). The integer counterpart of Laplace(scale): adding it to an integer query of L1
 * sensitivity Δ with scale Δ / ε is ε-differentially private (Ghosh, Roughgarden, Sundararajan 2012).
 */
export function discreteLaplace (s: NoiseStream, num: bigint, den: bigint): bigint {
  if (num <= 0n || den <= 0n) throw new RangeError('discreteLaplace needs a positive scale')
  // CKS20 names the scale t / s: t = num, s = den.
  const t = num
  for (;;) {
    const u = s.uniformBelow(t)
    if (!bernoulliExp(s, u, t)) continue
    let v = 0n
    while (bernoulliExp(s, 1n, 1n)) v++
    const y = (u + t * v) / den
    const negative = bernoulli(s, 1n, 2n)
    if (negative && y === 0n) continue
    return negative ? -y : y
  }
}

/**
 * The exponential mechanism over a finite list of candidates with integer scores (lower is better), exactly:
 * P[j] ∝ exp(-scores[j] · num / den). Rejection from the uniform proposal: draw j uniformly and accept it with
 * probability exp(-(scores[j] - min) · num / den), which is exactly 1 for the best candidate, so the expected number
 * of rounds is at most the number of candidates. Returns the index chosen.
 */
export function exponentialMechanism (s: NoiseStream, scores: bigint[], num: bigint, den: bigint): number {
  if (scores.length === 0) throw new RangeError('exponentialMechanism needs a candidate')
  let min = scores[0]
  for (const v of scores) if (v < min) min = v
  const n = BigInt(scores.length)
  for (;;) {
    const j = Number(s.uniformBelow(n))
    if (bernoulliExp(s, (scores[j] - min) * num, den)) return j
  }
}
