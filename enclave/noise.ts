// The noise of the private mode (docs/enclave.md "Private mode"): a keyed deterministic bit source and samplers
// over the integers, so that every honest enclave of a trade draws the same noise, bit for bit, and nobody
// without the sellers' privacy secrets can predict it.
//
// Why no floating point: naive Laplace sampling (-b·ln(U) on doubles) leaves gaps and a non-uniform grid in its
// output whose pattern depends on the true value, so an output can reveal which of two neighbouring datasets it
// came from (Mironov 2012, "On significance of the least significant bits for differential privacy"). Here every
// sample is an integer, computed with integer arithmetic only (bigint).
//
// Why a fixed amount of work: the host of a node sees how long a run takes. The first samplers were exact
// rejection samplers (Canonne, Kamath and Steinke 2020, as OpenDP): their number of rounds was random and followed
// what they drew (a discrete Laplace counted its geometric part in unary, so a large |noise| took longer, and |noise|
// with the released value gives the true value up to its sign; the exponential mechanism's rounds followed the
// records' scores). test/attacks/private-noise-timing.test.ts showed both. Now every sampler reads a number of bytes
// and does a number of integer operations fixed by its public parameters (scale, sensitivity, epsilon, number of
// candidates), whatever the data and whatever it draws: no loop ends early, selections are arithmetic.
// An exact sampler of a probability that is not a multiple of 2^-k cannot stop after k bits, so a fixed-cost
// sampler is exact only up to a bound, chosen here so that each statistic is (ε + 2^-50, 2^-NOISE_DELTA_BITS)-DP
// (the derivations are in docs/enclave.md "The noise"). Hand-written because no maintained JavaScript package
// samples on a keyed deterministic source with fixed work; test/unit/enclave/noise.test.ts checks the
// distributions and test/attacks/private-noise-timing.test.ts the work.
//
// The bit source: the AES-256-CTR keystream (NIST SP 800-38A counter mode from a zero counter block, the generator
// of SP 800-90A's CTR_DRBG) under HMAC-SHA256(call key, NOISE_STREAM_LABEL); each call key is used for one stream.
// It was HMAC-SHA256 in counter mode, one HMAC per 32 bytes: a fixed-cost sampler reads every byte of its
// comparisons, and the HMACs took nearly all of its time (4 µs per 32 bytes against 0.05 µs for AES-CTR).
import { createCipheriv, createHmac } from 'node:crypto'
import type { Cipher } from 'node:crypto'
import { MAX_NOISE_EPSILON, NOISE_DELTA_BITS, NOISE_EXP_BITS, NOISE_TAIL_NATS } from './constants.ts'

/** Domain label of the noise stream's AES key: HMAC-SHA256(call key, label). */
export const NOISE_STREAM_LABEL = 'SDTE.DP.NoiseStream.v2'

/** Keystream bytes produced at a time (a sample takes tens to hundreds). */
const NOISE_STREAM_CHUNK = 4096
const ZERO_CHUNK = new Uint8Array(NOISE_STREAM_CHUNK)

/** A deterministic stream of bytes keyed by 32 secret bytes: the same key gives the same bytes everywhere. */
export class NoiseStream {
  private readonly cipher: Cipher
  private buf = new Uint8Array(0)
  private pos = 0

  constructor (key: Uint8Array) {
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new RangeError('noise key must be 32 bytes')
    const aesKey = createHmac('sha256', key).update(NOISE_STREAM_LABEL).digest()
    this.cipher = createCipheriv('aes-256-ctr', aesKey, new Uint8Array(16))
  }

  private refill (): void {
    this.buf = new Uint8Array(this.cipher.update(ZERO_CHUNK))
    this.pos = 0
  }

  byte (): number {
    if (this.pos >= this.buf.length) this.refill()
    return this.buf[this.pos++]
  }

  /** A uniform integer in [0, 2^(8·bytes)): the next `bytes` bytes, big-endian. */
  uint (bytes: number): bigint {
    let v = 0n
    for (let i = 0; i < bytes; i++) v = (v << 8n) | BigInt(this.byte())
    return v
  }

  /**
   * 1 with probability threshold / 2^(8·threshold.length), else 0: the next threshold.length bytes, read as a
   * big-endian integer, compared with the threshold (big-endian bytes) without an early exit.
   */
  below (threshold: Uint8Array): number {
    let lt = 0
    let eq = 1
    for (let k = 0; k < threshold.length; k++) {
      const u = this.byte()
      const t = threshold[k]
      lt |= eq & ((u - t) >>> 31) // u < t: the difference of two bytes is negative
      eq &= ((u ^ t) - 1) >>> 31 // u = t: 0 - 1 has the sign bit
    }
    return lt
  }
}

// ---- integer e^x ----

const bitLength = (v: bigint): number => (v === 0n ? 0 : v.toString(2).length)
/** ceil(v · log2 e) for v ≥ 0, by 1.4427 > log2 e = 1.442695…: a bound on the bits a probability e^-v needs. */
const log2eCeil = (num: bigint, den: bigint): bigint => (num * 14427n + den * 10000n - 1n) / (den * 10000n)

/** Taylor terms of e^r, r ≤ 1, at q fractional bits: the least n with (n+1)! ≥ 2^(q+2), so the tail is below one unit. */
function taylorTerms (q: number): number {
  let n = 0
  let f = 1n
  const goal = 1n << BigInt(q + 2)
  while (f < goal) { n++; f *= BigInt(n + 1) }
  return n
}
const TERMS = new Map<number, number>()

/**
 * 2^q·e^(num/den) for 0 ≤ num/den ≤ 2^h, to a relative error below 2^(h - q)·(n² + n + 3) with n = taylorTerms(q)
 * (q = NOISE_EXP_BITS + h: below 2^-70): r = num/(den·2^h) ≤ 1 in q-bit fixed point, n terms of e^r (every term
 * kept, each truncated: an error of at most 2 units a term), then h squarings (each at most doubles the relative
 * error, plus one unit). Its operations are fixed by h alone.
 */
function expFixed (num: bigint, den: bigint, h: number): bigint {
  const q = NOISE_EXP_BITS + h
  const Q = BigInt(q)
  let n = TERMS.get(q)
  if (n === undefined) { n = taylorTerms(q); TERMS.set(q, n) }
  const r = (num << Q) / (den << BigInt(h))
  let term = 1n << Q
  let sum = term
  for (let k = 1; k <= n; k++) {
    term = ((term * r) >> Q) / BigInt(k)
    sum += term
  }
  for (let k = 0; k < h; k++) sum = (sum * sum) >> Q
  return sum
}

/** Big-endian bytes of v < 2^(8·length). */
function bytesOf (v: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = length - 1; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n }
  return out
}

// ---- the samplers ----

/**
 * Discrete Laplace (two-sided geometric) with scale num / den: P[y] ∝ exp(-|y| · den / num) over the integers,
 * the integer counterpart of Laplace(scale): added to an integer query of L1 sensitivity Δ with scale Δ / ε it is
 * ε-differentially private (Ghosh, Roughgarden, Sundararajan 2012). `sensitivity` is that Δ (in the query's units):
 * how far the sampler's tail must reach.
 *
 * Y = G1 − G2 with G1, G2 independent geometric, P[G = k] = (1 − p)·p^k, p = e^-x, x = den/num (exactly the
 * discrete Laplace). The binary digits of a geometric are independent: digit i is 1 with probability
 * π_i = p^(2^i) / (1 + p^(2^i)) = 1 / (1 + e^(2^i·x)). So each G is m digits, each one comparison of a fixed number
 * of stream bytes with a threshold computed once (it depends on the scale only):
 *  - m, the least with 2^m·x ≥ Γ = ceil(Δ·x) + NOISE_TAIL_NATS: dropping the digits from m on (G mod 2^m) cuts a
 *    tail of mass p^(2^m) ≤ e^-(ε + 46), which costs δ ≤ 2·e^(ε')·p^(2^m) < 2^-64;
 *  - digit i's threshold is π_i to 2^-64 of itself: floor(π_i · 2^L_i) with L_i = 66 + ceil(2^i·x·log2 e) bits
 *    rounded up to bytes (π_i ≥ e^-(2^i·x)/2), e^(2^i·x) by expFixed. Every probability of G mod 2^m is then
 *    within a factor (1 ± 2^-64)^m of the exact one: ε' = ε + 4m·2^-64 + 2·p^(2^m) < ε + 2^-50.
 * The work: 2·Σ L_i/8 stream bytes and as many byte comparisons, and m digit insertions, per sample.
 */
export class DiscreteLaplace {
  /** The digits of each geometric (m). */
  readonly digits: number
  /** Digit i's threshold, big-endian: 1 when the next threshold.length bytes are below it. */
  readonly thresholds: Uint8Array[] = []

  constructor (num: bigint, den: bigint, sensitivity: bigint) {
    if (num <= 0n || den <= 0n) throw new RangeError('discreteLaplace needs a positive scale')
    if (sensitivity < 1n) throw new RangeError('discreteLaplace needs a sensitivity of at least 1')
    // ε of the draw = Δ·x = Δ·den/num, at most MAX_NOISE_EPSILON (the bytes a draw takes grow with it).
    if (sensitivity * den > MAX_NOISE_EPSILON * num) throw new RangeError(`discreteLaplace: ε = Δ/scale above ${MAX_NOISE_EPSILON}`)
    const gamma = (sensitivity * den + num - 1n) / num + NOISE_TAIL_NATS
    let m = 0
    while ((den << BigInt(m)) < gamma * num) m++
    this.digits = m
    const h = bitLength(gamma) // 2^i·x < Γ < 2^h for every digit kept
    for (let i = 0; i < m; i++) {
      const xi = den << BigInt(i) // x_i = xi / num
      const bytes = Math.ceil((NOISE_DELTA_BITS + 2 + Number(log2eCeil(xi, num))) / 8)
      const Q = BigInt(NOISE_EXP_BITS + h)
      const e = expFixed(xi, num, h) // ≈ 2^Q·e^(x_i)
      this.thresholds.push(bytesOf((1n << (BigInt(8 * bytes) + Q)) / ((1n << Q) + e), bytes))
    }
  }

  /** One sample: a fixed number of stream bytes and operations. */
  sample (s: NoiseStream): bigint {
    return this.geometric(s) - this.geometric(s)
  }

  private geometric (s: NoiseStream): bigint {
    // Digits gathered 32 at a time in a number (bit · 2^k is exact), then placed in the bigint: the same operations
    // whatever the digits are.
    let g = 0n
    for (let c = 0; c < this.digits; c += 32) {
      let word = 0
      const end = Math.min(c + 32, this.digits)
      for (let i = c; i < end; i++) word += s.below(this.thresholds[i]) * 2 ** (i - c)
      g |= BigInt(word) << BigInt(c)
    }
    return g
  }

  /**
   * The sampler of these parameters: built once (its thresholds take m integer exponentials) and kept in a small
   * cache, as a run's calls and a test's thousands of draws reuse a few scales. What is cached depends on public
   * parameters only.
   */
  static of (num: bigint, den: bigint, sensitivity: bigint): DiscreteLaplace {
    const key = `${num}/${den}/${sensitivity}`
    let d = SAMPLERS.get(key)
    if (d === undefined) {
      d = new DiscreteLaplace(num, den, sensitivity)
      if (SAMPLERS.size >= SAMPLER_CACHE_SIZE) SAMPLERS.delete(SAMPLERS.keys().next().value as string)
      SAMPLERS.set(key, d)
    }
    return d
  }
}

/** Discrete Laplace samplers kept (DiscreteLaplace.of): a private call uses at most five scales. */
const SAMPLER_CACHE_SIZE = 32
const SAMPLERS = new Map<string, DiscreteLaplace>()

/** One discrete Laplace sample of scale num / den hiding a shift of `sensitivity` (see DiscreteLaplace). */
export function discreteLaplace (s: NoiseStream, num: bigint, den: bigint, sensitivity: bigint): bigint {
  return DiscreteLaplace.of(num, den, sensitivity).sample(s)
}

/**
 * The exponential mechanism over a finite list of candidates with integer scores (lower is better):
 * P[j] ∝ exp(-scores[j] · num / den), where one record changes a score by at most `sensitivity`, so the mechanism is
 * ε = 2·sensitivity·num/den -DP (McSherry and Talwar 2007). Returns the index chosen.
 *
 * Every candidate's weight is computed and one inverse-CDF draw picks among them, scanning all of them:
 *  - w_j = floor(2^F · e^-γ_j), γ_j = (scores[j] − min)·num/den, by expFixed, for γ_j ≤ Γ = ceil(ε) +
 *    bitlen(#candidates) + NOISE_TAIL_NATS; 0 beyond (their exact mass is at most #candidates·e^-Γ: δ < 2^-66);
 *    F = 66 + ceil(Γ·log2 e) bits, so every weight kept is within 2^-64 of itself (the best one is exactly 2^F);
 *  - V = floor(U·W / 2^K), U uniform on K = bitlen(#candidates) + F + 65 bits rounded up to bytes, W = Σ w_j: every
 *    value below W within a factor 1 ± 2^-64 of 1/W (no rejection loop);
 *  - the index is the number of prefix sums w_0 + … + w_j that are ≤ V.
 * So ε' < ε + 2^-50 and δ < 2^-64. The work: #candidates weights of fixed cost, K/8 bytes, one scan.
 */
export function exponentialMechanism (s: NoiseStream, scores: bigint[], num: bigint, den: bigint, sensitivity: bigint): number {
  const n = scores.length
  if (n === 0) throw new RangeError('exponentialMechanism needs a candidate')
  if (num < 0n || den <= 0n || sensitivity < 1n) throw new RangeError('exponentialMechanism needs num >= 0, den > 0, sensitivity >= 1')
  const twoShift = 2n * sensitivity * num // ε = twoShift / den
  if (twoShift > MAX_NOISE_EPSILON * den) throw new RangeError(`exponentialMechanism: ε above ${MAX_NOISE_EPSILON}`)
  const gamma = (twoShift + den - 1n) / den + BigInt(bitLength(BigInt(n))) + NOISE_TAIL_NATS
  const h = bitLength(gamma)
  const Q = BigInt(NOISE_EXP_BITS + h)
  const F = 66n + log2eCeil(gamma, 1n)
  const limit = gamma * den // γ_j ≤ Γ ⇔ (score − min)·num ≤ Γ·den
  let min = scores[0]
  for (let j = 1; j < n; j++) { const v = scores[j]; min = v < min ? v : min }
  const weights: bigint[] = new Array(n)
  let total = 0n
  for (let j = 0; j < n; j++) {
    const a = (scores[j] - min) * num
    const kept = a <= limit
    // The same computation for every candidate: one beyond Γ is computed at Γ, then weighed 0.
    const e = expFixed(kept ? a : limit, den, h) // ≈ 2^Q·e^γ_j
    const w = ((1n << (F + Q)) / e) * BigInt(kept)
    weights[j] = w
    total += w
  }
  const bytes = Math.ceil((bitLength(BigInt(n)) + Number(F) + NOISE_DELTA_BITS + 1) / 8)
  const v = (s.uint(bytes) * total) >> BigInt(8 * bytes)
  let index = 0
  let prefix = 0n
  for (let j = 0; j < n; j++) { prefix += weights[j]; index += Number(prefix <= v) }
  return index
}
