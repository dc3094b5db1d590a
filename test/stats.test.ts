import t from 'tap'
import { readFileSync } from 'node:fs'
import { cliffsDelta, histogramOf as h, hodgesLehmann, kolmogorovSf, ksTwoSample, mannWhitneyU, normalQuantile, normalSf, quantile, type Histogram } from '../lib/reports/stats.js'
import { bucketOf, bucketValue, ROLLUP_RELATIVE_ERROR } from '../lib/db/rollup.js'

// Reference values from SciPy on the same samples: test/fixtures/stats/make.py wrote reference.json.
interface Case {
  name: string
  x: number[]
  y: number[]
  mannWhitney: { u: number, p: number }
  ks: { d: number, p: number, method: 'exact' | 'asymptotic' }
  hodgesLehmann?: { shift: number, low: number, high: number }
}
const reference = JSON.parse(readFileSync(new URL('fixtures/stats/reference.json', import.meta.url), 'utf8')) as {
  scipy: string
  cases: Case[]
  normal: Array<{ z: number, sf: number }>
  normalQuantile: Array<{ p: number, z: number }>
  kolmogorov: Array<{ x: number, sf: number }>
}

/** |actual − expected| within a relative tolerance (absolute near zero). */
function close (actual: number, expected: number, relative: number): boolean {
  return Math.abs(actual - expected) <= relative * Math.max(Math.abs(expected), 1e-300)
}

t.test(`normal tails and quantiles match SciPy ${reference.scipy}`, async (t) => {
  for (const { z, sf } of reference.normal) t.ok(close(normalSf(z), sf, 1e-12), `sf(${z}) = ${normalSf(z)} vs ${sf}`)
  for (const { p, z } of reference.normalQuantile) t.ok(close(normalQuantile(p), z, 1e-9), `ppf(${p}) = ${normalQuantile(p)} vs ${z}`)
  for (const { x, sf } of reference.kolmogorov) t.ok(close(kolmogorovSf(x), sf, 1e-10), `kstwobign.sf(${x}) = ${kolmogorovSf(x)} vs ${sf}`)
})

for (const c of reference.cases) {
  t.test(`${c.name} (${c.x.length} vs ${c.y.length}) matches SciPy`, async (t) => {
    const mw = mannWhitneyU(h(c.x), h(c.y))
    t.equal(mw.u, c.mannWhitney.u, 'U')
    t.ok(close(mw.p, c.mannWhitney.p, 1e-9), `Mann–Whitney p ${mw.p} vs ${c.mannWhitney.p}`)
    const ks = ksTwoSample(h(c.x), h(c.y))
    t.equal(ks.method, c.ks.method)
    t.ok(close(ks.d, c.ks.d, 1e-12), `KS D ${ks.d} vs ${c.ks.d}`)
    t.ok(close(ks.p, c.ks.p, 1e-7), `KS p ${ks.p} vs ${c.ks.p}`)
    if (c.hodgesLehmann !== undefined) {
      const hl = hodgesLehmann(h(c.x), h(c.y))
      t.ok(close(hl.shift, c.hodgesLehmann.shift, 1e-12), `HL shift ${hl.shift} vs ${c.hodgesLehmann.shift}`)
      t.ok(close(hl.low, c.hodgesLehmann.low, 1e-12), `HL low ${hl.low} vs ${c.hodgesLehmann.low}`)
      t.ok(close(hl.high, c.hodgesLehmann.high, 1e-12), `HL high ${hl.high} vs ${c.hodgesLehmann.high}`)
    }
  })
}

t.test('degenerate samples', async (t) => {
  t.same(mannWhitneyU(h([1, 1, 1]), h([1, 1])).p, 1, 'all tied: no evidence of a change')
  t.ok(Number.isNaN(mannWhitneyU(h([]), h([1])).p), 'an empty side has no p-value')
  t.ok(Number.isNaN(ksTwoSample(h([1]), h([])).p))
  t.same(ksTwoSample(h([1, 2, 3]), h([1, 2, 3])), { d: 0, p: 1, method: 'exact' })
  t.equal(cliffsDelta(0, 3, 4), 1, 'every candidate slower: delta 1')
  t.equal(cliffsDelta(6, 3, 4), 0, "half the pairs each way: no effect")
  t.equal(cliffsDelta(3, 3, 4), 0.5)
  t.equal(quantile(h([1, 2, 3, 4]), 0.5), 2.5)
  t.equal(quantile(h([4, 1, 1, 1]), 0.5), 1, 'ties count once per occurrence')
  t.ok(Number.isNaN(quantile(h([]), 0.5)))
  const shift = hodgesLehmann(h([1, 2, 3]), h([11, 12, 13]))
  t.equal(shift.shift, 10)
})

t.test('on a sketch (bucket values counted many times) the tests give their definitions', async (t) => {
  // a rollup sketch's shape: a few dozen bucket values, each counted many times, two buckets apart
  const values = Array.from({ length: 40 }, (_, i) => 10 * 1.04 ** i)
  const sketch = (centre: number, height: number) => {
    const counts = values.map((_, i) => Math.round(height * Math.exp(-((i - centre) ** 2) / 40)))
    return { values: Float64Array.from(values), counts: Float64Array.from(counts), n: counts.reduce((a, b) => a + b, 0) }
  }
  const a = sketch(18, 100)
  const b = sketch(20, 80)
  const expand = (s: typeof a): number[] => Array.from(s.values).flatMap((v, i) => Array<number>(s.counts[i]!).fill(v))
  const [x, y] = [expand(a), expand(b)]
  // by definition, over every pair: U counts x > y, ties ½; D is the largest gap of the two CDFs
  let u = 0
  const differences: number[] = []
  for (const xi of x) for (const yj of y) { u += xi > yj ? 1 : xi === yj ? 0.5 : 0; differences.push(yj - xi) }
  const cdf = (sample: number[], v: number): number => sample.filter((s) => s <= v).length / sample.length
  const d = Math.max(...values.map((v) => Math.abs(cdf(x, v) - cdf(y, v))))
  differences.sort((p, q) => p - q)
  const mid = differences.length / 2
  const median = differences.length % 2 === 1 ? differences[Math.floor(mid)]! : (differences[mid - 1]! + differences[mid]!) / 2
  const mw = mannWhitneyU(a, b)
  t.equal(mw.u, u, `U = ${u} over ${x.length} × ${y.length} pairs`)
  t.ok(close(ksTwoSample(a, b).d, d, 1e-12), `D = ${d}`)
  t.ok(close(hodgesLehmann(a, b).shift, median, 1e-12), `Hodges–Lehmann shift = the median difference ${median}`)
  t.ok(mw.p < 1e-6, `a shift of two buckets (8%) is found (p = ${mw.p})`)
  t.same(mannWhitneyU(a, b), mannWhitneyU(h(x), h(y)), 'and the same as its raw values')
})

t.test("a sketch's shift interval holds for whichever durations its buckets hold", async (t) => {
  // what the report reads: each duration replaced by its rollup bucket's value
  const sketchOf = (raw: number[]): Histogram => ({ ...h(raw.map((d) => bucketValue(bucketOf(d)))), relativeError: ROLLUP_RELATIVE_ERROR })
  let seed = 7
  const random = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }

  // every baseline request in one bucket, every candidate request in another: the bucket values differ
  // by one exact amount, but the requests did not
  const low = bucketValue(bucketOf(10))
  const high = bucketValue(bucketOf(25))
  const x = Array.from({ length: 50 }, () => low * (0.981 + 0.038 * random()))
  const y = Array.from({ length: 50 }, () => high * (0.981 + 0.038 * random()))
  t.ok(x.every((d) => bucketOf(d) === bucketOf(10)) && y.every((d) => bucketOf(d) === bucketOf(25)), 'one bucket per side')
  const pointLike = hodgesLehmann({ ...sketchOf(x), relativeError: 0 }, { ...sketchOf(y), relativeError: 0 })
  t.equal(pointLike.low, pointLike.high, 'read as exact values, the interval has no width')
  const shift = hodgesLehmann(sketchOf(x), sketchOf(y))
  const differences = x.flatMap((a) => y.map((b) => b - a))
  t.ok(shift.high - shift.low > 0.5, `an interval as wide as the buckets: [${shift.low}, ${shift.high}]`)
  t.ok(differences.every((d) => d >= shift.low && d <= shift.high), 'holding every difference of the requests themselves')

  // spread samples: the interval of the raw durations lies inside the sketch's
  for (const [median, change] of [[5, 1.1], [40, 1], [200, 0.97]] as const) {
    const lognormal = (m: number): number => m * Math.exp(0.4 * Math.sqrt(-2 * Math.log(random())) * Math.cos(2 * Math.PI * random()))
    const a = Array.from({ length: 300 }, () => lognormal(median))
    const b = Array.from({ length: 250 }, () => lognormal(median * change))
    const exact = hodgesLehmann(h(a), h(b))
    const sketched = hodgesLehmann(sketchOf(a), sketchOf(b))
    t.ok(sketched.low <= exact.low && exact.high <= sketched.high, `median ${median} × ${change}: [${exact.low}, ${exact.high}] within [${sketched.low}, ${sketched.high}]`)
    t.ok(sketched.high - sketched.low < 1.5 * (exact.high - exact.low) + 0.1 * median, 'and not much wider')
  }
})
