// Attack: learn about the records from how long the private mode's noise takes to draw. The host of the node sees
// a run's wall time (and a run killed at its wall-time budget shows it to everyone): the first samplers were exact
// rejection samplers whose number of rounds is random, and correlated with what they drew:
//  - the exponential mechanism (privateQuantile) drew a candidate uniformly and accepted it with probability
//    exp(-(score - min)·ε/2Δ): its expected number of rounds is #candidates / Σ weights, a function of the records'
//    scores (records bunched at one value: steep scores, many rounds; records that leave most candidates tied:
//    one round);
//  - the discrete Laplace (CKS20) counts a geometric variable in unary: a noise of large magnitude took more rounds,
//    and |noise| with the released value gives the true value up to its sign.
// Tests never assert timings, so the work is counted deterministically: the bytes the samplers read from the
// keyed noise stream (every round of every loop draws from it). A subclass counts them; the production stream is
// unchanged. The defence (enclave/noise.ts): samplers whose work, bytes drawn and arithmetic alike, is fixed by the
// public parameters (scale, sensitivity, epsilon, number of candidates) only.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { NoiseStream } from '../../enclave/noise.ts'
import { dpCount, dpHistogram, dpQuantile } from '../../enclave/private.ts'

/** The production stream, counting the bytes read (byte() is where every draw goes). */
class CountingStream extends NoiseStream {
  count = 0
  override byte (): number { this.count++; return super.byte() }
}
const keyOf = (i: number): Uint8Array => { const k = new Uint8Array(32); new DataView(k.buffer).setUint32(0, i); k[31] = 0x5a; return k }
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

test('privateQuantile: two datasets of the same size under the same public arguments cost the same work', () => {
  // 1000 records each, clamped to 0..1000; median (q = 0.5) among 64 candidates 0, 10, ..., 630; ε = 0.5.
  const bunched = Array.from({ length: 1000 }, () => 310n) // steep scores: candidate 310 near certain, 63 near 0
  const split = Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? 0n : 1000n)) // every candidate but 0 tied at score 0
  const cost = (values: bigint[], i: number): number => {
    const s = new CountingStream(keyOf(i))
    dpQuantile(s, values, 500_000n, 0n, 10n, 64, 500_000n)
    return s.count
  }
  const a = Array.from({ length: 40 }, (_, i) => cost(bunched, i))
  const b = Array.from({ length: 40 }, (_, i) => cost(split, i))
  console.log(`  quantile bytes drawn, bunched records: mean ${mean(a).toFixed(1)} (${Math.min(...a)}..${Math.max(...a)}); split records: mean ${mean(b).toFixed(1)} (${Math.min(...b)}..${Math.max(...b)})`)
  assert.equal(a, b, 'the work of the same key differs between the two datasets')
  assert.is(new Set(a).size, 1, 'the work varies from draw to draw')
})

test('discrete Laplace (privateCount): the work does not follow the magnitude of the noise drawn', () => {
  // ε = 0.1: noise of scale 10 on the count of 500 records.
  const values = Array.from({ length: 500 }, (_, i) => BigInt(i))
  const small: number[] = []
  const large: number[] = []
  const all: number[] = []
  for (let i = 0; i < 400; i++) {
    const s = new CountingStream(keyOf(1000 + i))
    const noise = dpCount(s, values, 100_000n) - 500n
    const magnitude = noise < 0n ? -noise : noise
    if (magnitude < 5n) small.push(s.count)
    if (magnitude >= 25n) large.push(s.count)
    all.push(s.count)
  }
  console.log(`  discrete Laplace bytes drawn: |noise| < 5: mean ${mean(small).toFixed(1)} over ${small.length}; |noise| >= 25: mean ${mean(large).toFixed(1)} over ${large.length}`)
  assert.ok(small.length > 20 && large.length > 20, 'both groups drawn')
  assert.is(new Set(all).size, 1, `the work varies with the draw: ${[...new Set(all)].sort((x, y) => x - y).join(', ')}`)
})

test('privateHistogram: the same key costs the same work on different records', () => {
  const spread = Array.from({ length: 800 }, (_, i) => BigInt(i % 160))
  const heaped = Array.from({ length: 800 }, () => 17n)
  const cost = (values: bigint[], i: number): number => {
    const s = new CountingStream(keyOf(5000 + i))
    dpHistogram(s, values, 0n, 10n, 16, 250_000n)
    return s.count
  }
  for (let i = 0; i < 20; i++) assert.is(cost(spread, i), cost(heaped, i), `key ${i}`)
})

test.run()
