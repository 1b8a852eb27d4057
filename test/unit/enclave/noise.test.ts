// The private mode's noise (enclave/noise.ts) and mechanisms (enclave/private.ts) follow their distributions at
// their scales. Fixed keys, so each run draws the same samples and cannot flake; the tolerance is what would let a
// correct sampler fail with probability at most 1e-6 on a fresh key:
//  - Pearson's chi-square over bins with at least 5 expected samples each (tails merged), compared with the
//    chi-square quantile at 1 - 1e-6 for its degrees of freedom (Wilson-Hilferty: k(1 - 2/9k + z·sqrt(2/9k))^3,
//    z = 4.753, the standard normal quantile at 1 - 1e-6; close to the exact quantile for k >= 3);
//  - a Bernoulli frequency within 5 standard errors of p (two-sided normal tail 5.7e-7).
// A sampler with the wrong scale (a factor 2 in epsilon, say) is off by hundreds in these statistics.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DiscreteLaplace, NoiseStream, discreteLaplace, exponentialMechanism } from '../../../enclave/noise.ts'
import { PrivateRun, callStream, dpCount, dpHistogram, dpLinearFit, dpMean, dpQuantile, dpSum, privatePriceOf } from '../../../enclave/private.ts'
import { EPSILON_SCALE, FIXED_POINT_SCALE } from '../../../enclave/constants.ts'

const key = (b: number) => new Uint8Array(32).fill(b)
const Z = 4.753

function chiSquareBound (dof: number): number {
  const a = 2 / (9 * dof)
  return dof * (1 - a + Z * Math.sqrt(a)) ** 3
}

/** Chi-square of samples against a distribution given as P[Y <= y] (integers), over bins that each expect >= 5. */
function chiSquare (samples: bigint[], cdf: (y: number) => number, what: string): void {
  const { stat, bound, bins } = chiSquareOf(samples, cdf)
  assert.ok(bins >= 4, `${what}: too few bins (${bins})`)
  assert.ok(stat < bound, `${what}: chi-square ${stat.toFixed(1)} over ${bound.toFixed(1)} (${bins - 1} dof)`)
}

function chiSquareOf (samples: bigint[], cdf: (y: number) => number): { stat: number, bound: number, bins: number } {
  const n = samples.length
  const xs = samples.map(Number).sort((a, b) => a - b)
  // Bin edges from the distribution: grow each bin until it expects at least max(5, n/400) samples.
  const minExpected = Math.max(5, n / 400)
  const edges: number[] = [] // bin i is (edges[i-1], edges[i]]
  let y = Math.floor(xs[0]) - 1
  while (cdf(y) * n > 1e-9) y -= Math.max(1, Math.abs(y)) // a lower end with negligible mass
  let last = y
  let lastCdf = cdf(last)
  let hi = xs[xs.length - 1]
  while ((1 - cdf(hi)) * n > 1e-9) hi += Math.max(1, Math.abs(hi))
  const step = Math.max(1, Math.floor((hi - last) / 200000))
  for (let v = last + step; v <= hi; v += step) {
    if ((cdf(v) - lastCdf) * n >= minExpected && (1 - cdf(v)) * n >= minExpected) { edges.push(v); lastCdf = cdf(v); last = v }
  }
  const bins = edges.length + 1
  const observed = new Array(bins).fill(0)
  let b = 0
  for (const x of xs) { while (b < edges.length && x > edges[b]) b++; observed[b]++ }
  let stat = 0
  let prev = 0
  for (let i = 0; i < bins; i++) {
    const c = i < edges.length ? cdf(edges[i]) : 1
    const expected = (c - prev) * n
    prev = c
    stat += (observed[i] - expected) ** 2 / expected
  }
  return { stat, bound: chiSquareBound(bins - 1), bins }
}

/** P[Y <= y] of the discrete Laplace of scale b: p = e^(-1/b); P[Y <= y] = 1 - p^(y+1)/(1+p) for y >= 0, p^(-y)/(1+p) below. */
const dlapCdf = (b: number) => {
  const p = Math.exp(-1 / b)
  return (y: number) => (y >= 0 ? 1 - p ** (y + 1) / (1 + p) : p ** -y / (1 + p))
}

function draw (n: number, f: (i: number) => bigint): bigint[] {
  const out: bigint[] = []
  for (let i = 0; i < n; i++) out.push(f(i))
  return out
}

test('the noise stream is deterministic in its key; its uniform integers and threshold draws are exact', () => {
  const a = new NoiseStream(key(1)); const b = new NoiseStream(key(1)); const c = new NoiseStream(key(2))
  const xa = draw(200, () => a.uint(2)); const xb = draw(200, () => b.uint(2)); const xc = draw(200, () => c.uint(2))
  assert.equal(xa, xb)
  assert.not.equal(xa, xc)
  const s = new NoiseStream(key(3))
  // Uniform on 0..255 (one byte): chi-square.
  chiSquare(draw(30000, () => s.uint(1)), y => (y < 0 ? 0 : y >= 255 ? 1 : (y + 1) / 256), 'uniform byte')
  // below(t) is 1 with probability t / 256^len, whatever the bytes: 0x40 is 1/4, 0x00 0x01 is 2^-16, 0x00 never.
  for (const [t, p] of [[[0x40], 0.25], [[0xc0, 0x00], 0.75], [[0x00, 0x01], 2 ** -16], [[0x00], 0]] as Array<[number[], number]>) {
    const n = 40000
    let k = 0
    for (let i = 0; i < n; i++) k += s.below(Uint8Array.from(t))
    const se = Math.sqrt(n * p * (1 - p))
    assert.ok(Math.abs(k - n * p) <= 5 * se + 1e-9, `below ${t}: ${k} of ${n}, want ${n * p} ± ${5 * se}`)
  }
  // It reads exactly as many bytes as the threshold has, whatever they are.
  const d = new NoiseStream(key(4)); const e = new NoiseStream(key(4))
  d.below(Uint8Array.from([0, 0, 0])); d.below(Uint8Array.from([255, 255]))
  e.uint(5)
  assert.is(d.uint(4), e.uint(4))
})

test('the digits of the discrete Laplace\'s geometrics have probability 1/(1 + e^(2^i/scale)), and the tail cut is past ε + 46 scales', () => {
  for (const [num, den, delta] of [[1n, 1n, 1n], [7n, 3n, 1n], [10n, 1n, 1n], [1n, 1000n, 1n], [5500n * EPSILON_SCALE, EPSILON_SCALE, 1100n], [5n * 10n ** 42n, 1n, 10n ** 36n]]) {
    const d = new DiscreteLaplace(num, den, delta)
    const x = Number(den) / Number(num)
    assert.is(d.thresholds.length, d.digits)
    for (let i = 0; i < d.digits; i++) {
      // In logarithms (π can be e^-1000): ln(threshold / 256^len) against ln π = −(y + ln(1 + e^−y)), y = 2^i·x.
      const t = d.thresholds[i]
      const first = t.findIndex(byte => byte !== 0)
      let v = 0
      for (let k = first; k < Math.min(t.length, first + 6); k++) v = v * 256 + t[k]
      const lnGot = Math.log(v) - 8 * Math.LN2 * (Math.min(t.length, first + 6))
      const y = 2 ** i * x
      const lnWant = -(y + Math.log1p(Math.exp(-y)))
      assert.ok(Math.abs(lnGot - lnWant) < 2 ** -36 * Math.max(1, Math.abs(lnWant)), `scale ${num}/${den}, digit ${i}: ln ${lnGot} vs ${lnWant}`)
    }
    // 2^m·x ≥ ε + 46 (ε = Δ·x), and m is the least such: the geometric's dropped tail is below e^-(ε+46).
    const eps = Number(delta) * x
    assert.ok(2 ** d.digits * x >= eps + 46 - 1e-9, `scale ${num}/${den}: ${d.digits} digits`)
    assert.ok(d.digits === 0 || 2 ** (d.digits - 1) * x < Math.ceil(eps) + 46)
  }
  assert.throws(() => new DiscreteLaplace(1n, 1001n, 1n), /above 1000/)
  assert.throws(() => new DiscreteLaplace(1n, 1n, 0n), /sensitivity/)
})

test('discrete Laplace matches its distribution at small, rational and large scales', () => {
  const s = new NoiseStream(key(5))
  for (const [num, den, delta] of [[1n, 1n, 1n], [1n, 2n, 1n], [7n, 3n, 2n], [10n, 1n, 1n], [5500n * EPSILON_SCALE, EPSILON_SCALE, 1100n]]) {
    const d = new DiscreteLaplace(num, den, delta)
    chiSquare(draw(20000, () => d.sample(s)), dlapCdf(Number(num) / Number(den)), `discrete Laplace scale ${num}/${den}`)
  }
  // The same test notices a wrong scale: samples of scale 10 against the distribution of scale 8.
  const wrong = draw(20000, () => discreteLaplace(s, 10n, 1n, 1n))
  const w = chiSquareOf(wrong, dlapCdf(8))
  assert.ok(w.stat > 5 * w.bound, `a wrong scale passes: ${w.stat} against ${w.bound}`)
})

test('the exponential mechanism picks candidates with probability ∝ exp(-score·num/den)', () => {
  const s = new NoiseStream(key(6))
  const scores = [0n, 1n, 2n, 4n, 8n, 3n]
  const w = scores.map(x => Math.exp(-Number(x) / 2))
  const total = w.reduce((a, b) => a + b)
  const picks = draw(30000, () => BigInt(exponentialMechanism(s, scores, 1n, 2n, 1n)))
  let acc = 0
  const cum = w.map(x => (acc += x / total))
  chiSquare(picks, y => (y < 0 ? 0 : y >= cum.length - 1 ? 1 : cum[y]), 'exponential mechanism')
  // A wrong scale (twice the weights' exponent) fails the same test.
  const wrong = draw(30000, () => BigInt(exponentialMechanism(s, scores, 1n, 1n, 1n)))
  const ws = chiSquareOf(wrong, y => (y < 0 ? 0 : y >= cum.length - 1 ? 1 : cum[y]))
  assert.ok(ws.stat > 5 * ws.bound, `a wrong scale passes: ${ws.stat} against ${ws.bound}`)
  // Scores far apart: the candidates beyond the cut (γ > ε + bitlen(n) + 46) are never picked, the best nearly always.
  const far = [5n, 0n, 10n ** 12n, 3n]
  const got = draw(2000, () => BigInt(exponentialMechanism(s, far, 1n, 1n, 1n)))
  assert.ok(got.every(j => j !== 2n))
  assert.throws(() => exponentialMechanism(s, [0n], 1001n, 2n, 1n), /above 1000/)
})

// ---- the mechanisms, through the streams of many calls (seq 0..n-1 of one run key) ----

const runKey = key(7)
const values = Array.from({ length: 1000 }, (_, i) => BigInt((i * 37) % 1000) - 300n) // -300..699
const domain = { lo: -300n, hi: 700n, decimals: 0 }
const trueSum = values.reduce((a, b) => a + b)

test('privateCount adds discrete Laplace of scale 1/ε', () => {
  const eps = 500_000n // ε = 0.5: scale 2
  chiSquare(draw(15000, i => dpCount(callStream(runKey, i), values, eps) - 1000n), dlapCdf(2), 'count noise')
})

test('privateSum adds discrete Laplace of scale max(|lo|, |hi|)/ε', () => {
  const eps = 2_000_000n // ε = 2: Δ = 700, scale 350
  chiSquare(draw(15000, i => dpSum(callStream(runKey, i), values, domain, eps) - trueSum), dlapCdf(350), 'sum noise')
})

test('privateHistogram adds discrete Laplace of scale 1/ε to every bucket', () => {
  const eps = 1_000_000n
  const truth = [0n, 0n, 0n, 0n]
  for (const v of values) { const b = v < -300n ? 0 : Math.min(3, Number((v + 300n) / 250n)); truth[b]++ }
  const noise: bigint[] = []
  for (let i = 0; i < 5000; i++) dpHistogram(callStream(runKey, i), values, -300n, 250n, 4, eps).forEach((c, j) => noise.push(c - truth[j]))
  chiSquare(noise, dlapCdf(1), 'histogram noise (4 buckets × 5000 calls)')
})

test('privateMean: a noisy count of scale 2/ε and a noisy centred sum of scale 2·half-width/ε, then post-processing', () => {
  const eps = 1_000_000n
  // Centre 200, half-width 500: the sum's scale is 2 × 500 / 1 = 1000, the count's 2.
  const counts: bigint[] = []
  const sums: bigint[] = []
  const shifted = trueSum - 200n * 1000n
  for (let i = 0; i < 8000; i++) {
    const m = dpMean(callStream(runKey, i), values, domain, eps)
    // The same call's stream drawn by hand, in the mechanism's order: count noise, then sum noise.
    const s = callStream(runKey, i)
    const c = 1000n + discreteLaplace(s, 2n * EPSILON_SCALE, eps, 1n)
    const z = discreteLaplace(s, 2n * 500n * EPSILON_SCALE, eps, 500n)
    let want = 200n * FIXED_POINT_SCALE + (c >= 1n ? ((shifted + z) * FIXED_POINT_SCALE) / c : 0n)
    if (want < -300n * FIXED_POINT_SCALE) want = -300n * FIXED_POINT_SCALE
    if (want > 700n * FIXED_POINT_SCALE) want = 700n * FIXED_POINT_SCALE
    assert.is(m.count, c)
    assert.is(m.mean, want)
    counts.push(c - 1000n)
    sums.push(z)
  }
  chiSquare(counts, dlapCdf(2), 'mean: count noise')
  chiSquare(sums, dlapCdf(1000), 'mean: sum noise')
})

test('privateQuantile follows the exponential mechanism of the quantile score', () => {
  const data = Array.from({ length: 100 }, (_, i) => BigInt(i)) // 0..99
  const eps = 200_000n // ε = 0.2
  const q = 500_000n
  const cands = Array.from({ length: 10 }, (_, j) => 10 * j) // 0, 10, ..., 90
  // Score of candidate c: |0.5·#{x < c} − 0.5·#{x > c}| × 10^6, Δ = 0.5 × 10^6; weight exp(−ε·score / 2Δ).
  const w = cands.map(c => Math.exp(-0.2 * Math.abs(0.5 * c - 0.5 * (99 - c)) * 1e6 / 1e6))
  const total = w.reduce((a, b) => a + b)
  let acc = 0
  const cum = w.map(x => (acc += x / total))
  const picks = draw(20000, i => dpQuantile(callStream(runKey, i), data, q, 0n, 10n, 10, eps) / 10n)
  chiSquare(picks, y => (y < 0 ? 0 : y >= 9 ? 1 : cum[y]), 'quantile picks')
})

test('privateLinearFit: noisy n of scale 5/ε; an exact line is found again with a large ε', () => {
  const xs = Array.from({ length: 500 }, (_, i) => BigInt(i % 100) - 50n)
  const ys = xs.map(x => 3n * x + 7n)
  const dx = { lo: -50n, hi: 50n, decimals: 0 }
  const dy = { lo: -200n, hi: 200n, decimals: 0 }
  chiSquare(draw(8000, i => dpLinearFit(callStream(runKey, i), xs, ys, dx, dy, 1_000_000n).count - 500n), dlapCdf(5), 'linear fit: n noise')
  const f = dpLinearFit(callStream(runKey, 0), xs, ys, dx, dy, 1000n * EPSILON_SCALE)
  assert.ok(f.slope > 2_900_000n && f.slope < 3_100_000n, `slope ${f.slope}`)
  assert.ok(f.intercept > 0n && f.intercept < 14_000_000n, `intercept ${f.intercept}`)
})

test('records: header skipped, CRLF and blank lines, clamped per seller, a bad or missing field drops its record', () => {
  const csv = (t: string) => new TextEncoder().encode(t)
  const run = new PrivateRun({
    epsilon: 1n,
    noiseKey: key(9),
    sellers: [
      { skipHeader: true, columns: [{ column: 1, decimals: 1, lo: -100n, hi: 100n }, { column: 3, decimals: 1, lo: 0n, hi: 50n }] },
      { skipHeader: false, columns: [{ column: 1, decimals: 1, lo: 0n, hi: 1000n }, { column: 3, decimals: 1, lo: -9n, hi: 9n }] }
    ]
  }, [
    csv('id,a,b,c\r\n1,2.5,x,3\r\n\r\n2,-20,y,7.25\n3,oops,z,1\n4,1\n5, 1.0 ,w,-2'),
    csv('9,500,q,-1000\n8,7,q,\n')
  ])
  // Columns asked in either order find the same fields (one forward cursor per column).
  assert.equal([...run.records([3, 1])[0]], [30n, 50n, 0n, -9n])
  assert.equal([...run.records([3, 1])[1]], [25n, -100n, 10n, 1000n])
  assert.equal([...run.records([1])[0]], [25n, -100n, 10n, 10n, 1000n, 70n])
  assert.equal(run.domain(1), { lo: -100n, hi: 1000n, decimals: 1 })
})

test('a private call is priced by the input size and its arguments, never by the records', () => {
  assert.is(privatePriceOf('privateCount', 1000, 0), 2000n + 8n * 1000n)
  assert.is(privatePriceOf('privateHistogram', 1000, 10), 2000n + 8n * 1000n + 200n * 10n)
})

test.run()
