import t from 'tap'
import { readFileSync } from 'node:fs'
import { cliffsDelta, hodgesLehmann, kolmogorovSf, ksTwoSample, mannWhitneyU, normalQuantile, normalSf, quantileSorted } from '../lib/reports/stats.js'

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
    const mw = mannWhitneyU(c.x, c.y)
    t.equal(mw.u, c.mannWhitney.u, 'U')
    t.ok(close(mw.p, c.mannWhitney.p, 1e-9), `Mann–Whitney p ${mw.p} vs ${c.mannWhitney.p}`)
    const ks = ksTwoSample(c.x, c.y)
    t.equal(ks.method, c.ks.method)
    t.ok(close(ks.d, c.ks.d, 1e-12), `KS D ${ks.d} vs ${c.ks.d}`)
    t.ok(close(ks.p, c.ks.p, 1e-7), `KS p ${ks.p} vs ${c.ks.p}`)
    if (c.hodgesLehmann !== undefined) {
      const hl = hodgesLehmann(c.x, c.y)
      t.ok(close(hl.shift, c.hodgesLehmann.shift, 1e-12), `HL shift ${hl.shift} vs ${c.hodgesLehmann.shift}`)
      t.ok(close(hl.low, c.hodgesLehmann.low, 1e-12), `HL low ${hl.low} vs ${c.hodgesLehmann.low}`)
      t.ok(close(hl.high, c.hodgesLehmann.high, 1e-12), `HL high ${hl.high} vs ${c.hodgesLehmann.high}`)
    }
  })
}

t.test('degenerate samples', async (t) => {
  t.same(mannWhitneyU([1, 1, 1], [1, 1]).p, 1, 'all tied: no evidence of a change')
  t.ok(Number.isNaN(mannWhitneyU([], [1]).p), 'an empty side has no p-value')
  t.ok(Number.isNaN(ksTwoSample([1], []).p))
  t.same(ksTwoSample([1, 2, 3], [1, 2, 3]), { d: 0, p: 1, method: 'exact' })
  t.equal(cliffsDelta(0, 3, 4), 1, 'every candidate slower: delta 1')
  t.equal(cliffsDelta(6, 3, 4), 0, "half the pairs each way: no effect")
  t.equal(cliffsDelta(3, 3, 4), 0.5)
  t.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5)
  t.ok(Number.isNaN(quantileSorted([], 0.5)))
  const shift = hodgesLehmann([1, 2, 3], [11, 12, 13])
  t.equal(shift.shift, 10)
})
