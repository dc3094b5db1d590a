/**
 * Two-sample tests for "did this endpoint's latency change?": Mann–Whitney U (a shift of the
 * distribution), the two-sample Kolmogorov–Smirnov test (any change of its shape), the
 * Hodges–Lehmann shift with its confidence interval and Cliff's delta (effect sizes).
 *
 * Written here rather than taken from a package: the npm packages that have the normal
 * distribution (@stdlib) bring about 140 packages and 15 MB for one function, and none has the
 * two-sample tests. Every function is checked against SciPy on the samples stored in
 * test/fixtures/stats/ (made by test/fixtures/stats/make.py).
 */

/** Below this many pairs (m·n) the KS p-value is computed exactly; above it, asymptotically. */
export const KS_EXACT_MAX_PAIRS = 1_000_000

/** The complementary error function, to about 1e-15 relative (series below 2, continued fraction above). */
export function erfc (x: number): number {
  if (Number.isNaN(x)) return Number.NaN
  if (x < 0) return 2 - erfc(-x)
  if (x < 2) {
    // erf by its Maclaurin series: alternating, but terms shrink fast enough for |x| < 2
    let term = x
    let sum = x
    for (let n = 1; n < 200; n++) {
      term *= -x * x / n
      const add = term / (2 * n + 1)
      sum += add
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break
    }
    return 1 - 2 / Math.sqrt(Math.PI) * sum
  }
  if (x > 27) return 0 // below the smallest double
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))), evaluated by modified Lentz
  const tiny = 1e-300
  let f = x
  let c = x
  let d = 0
  for (let n = 1; n < 500; n++) {
    const a = n / 2
    d = x + a * d
    d = Math.abs(d) < tiny ? 1 / tiny : 1 / d
    c = x + a / c
    if (Math.abs(c) < tiny) c = tiny
    const delta = c * d
    f *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f
}

/** P(Z > z) for a standard normal Z. */
export function normalSf (z: number): number {
  return erfc(z / Math.SQRT2) / 2
}

/** The standard normal quantile (Acklam's approximation refined by one Halley step: ≈ 1e-15). */
export function normalQuantile (p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : Number.NaN
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.383577518672690e2, -3.066479806614716e1, 2.506628277459239]
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1]
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783]
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416]
  const low = 0.02425
  let x: number
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p))
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
  } else if (p <= 1 - low) {
    const q = p - 0.5
    const r = q * q
    x = (((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p))
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
  }
  // one Halley step on Φ(x) − p
  const e = 0.5 * erfc(-x / Math.SQRT2) - p
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp(x * x / 2)
  return x - u / (1 + x * u / 2)
}

/**
 * A sample as its distinct values in ascending order, each with how often it occurs: raw durations
 * ({@link histogramOf}) or a rollup sketch's buckets, each bucket's value counted as often as the
 * bucket's requests. Every test below walks these, so a sketch of millions of requests costs its
 * buckets, not its requests, and gives what the expanded sample would.
 */
export interface Histogram {
  values: Float64Array
  counts: Float64Array
  /** The sum of `counts`. */
  n: number
  /**
   * How far a value may be from the durations it stands for: each value v stands for durations t with
   * |v − t| ≤ α·t, i.e. t in [v/(1+α), v/(1−α)] (a sketch's buckets, DDSketch's α). Absent or 0: exact.
   */
  relativeError?: number
}

/** The histogram of raw values. */
export function histogramOf (sample: ArrayLike<number>): Histogram {
  const sorted = Float64Array.from(sample).sort()
  const values: number[] = []
  const counts: number[] = []
  for (let i = 0; i < sorted.length; i++) {
    if (values.length > 0 && values[values.length - 1] === sorted[i]) counts[counts.length - 1]!++
    else { values.push(sorted[i]!); counts.push(1) }
  }
  return { values: Float64Array.from(values), counts: Float64Array.from(counts), n: sorted.length }
}

/** The value of 0-based rank `rank` in a histogram (rank < n). */
function valueAtRank (h: Histogram, rank: number): number {
  let seen = 0
  for (let i = 0; i < h.values.length; i++) {
    seen += h.counts[i]!
    if (rank < seen) return h.values[i]!
  }
  return h.values[h.values.length - 1]!
}

/**
 * A quantile by linear interpolation between closest ranks (PostgreSQL's `percentile_cont`, NumPy's
 * default), NaN for no values.
 */
export function quantile (h: Histogram, q: number): number {
  if (h.n === 0) return Number.NaN
  const position = (h.n - 1) * q
  const below = Math.floor(position)
  const low = valueAtRank(h, below)
  const high = valueAtRank(h, Math.min(below + 1, h.n - 1))
  return low + (high - low) * (position - below)
}

/** The result of {@link mannWhitneyU}. */
export interface MannWhitneyResult {
  /** U of the first sample: the pairs (x, y) with x > y, ties counting ½ (SciPy's `statistic`). */
  u: number
  /** The normal score, with continuity and tie corrections. */
  z: number
  /** Two-sided p-value. */
  p: number
  /** The standard deviation of U under the null hypothesis, tie-corrected. */
  sigma: number
}

/**
 * The two-sided Mann–Whitney U test by its normal approximation with tie and continuity corrections:
 * SciPy's `mannwhitneyu(x, y, method='asymptotic')`. Samples of thousands of requests are where it is
 * used; the exact distribution is not worth its cost there and is undefined with ties.
 */
export function mannWhitneyU (x: Histogram, y: Histogram): MannWhitneyResult {
  const n1 = x.n
  const n2 = y.n
  if (n1 === 0 || n2 === 0) return { u: Number.NaN, z: Number.NaN, p: Number.NaN, sigma: Number.NaN }
  const n = n1 + n2
  // walk the pooled distinct values upwards: the t values tied at one get the average of their ranks
  let rankSumX = 0
  let tieTerm = 0
  let below = 0
  for (let i = 0, j = 0; i < x.values.length || j < y.values.length;) {
    const v = Math.min(x.values[i] ?? Infinity, y.values[j] ?? Infinity)
    const cx = x.values[i] === v ? x.counts[i++]! : 0
    const cy = y.values[j] === v ? y.counts[j++]! : 0
    const t = cx + cy
    rankSumX += cx * (below + (t + 1) / 2)
    tieTerm += t * t * t - t
    below += t
  }
  const u1 = rankSumX - n1 * (n1 + 1) / 2
  const u = Math.max(u1, n1 * n2 - u1)
  const mu = n1 * n2 / 2
  const sigma = Math.sqrt(n1 * n2 / 12 * ((n + 1) - tieTerm / (n * (n - 1))))
  if (sigma === 0) return { u: u1, z: 0, p: 1, sigma }
  const z = (u - mu - 0.5) / sigma
  return { u: u1, z, p: Math.min(1, 2 * normalSf(z)), sigma }
}

/** The result of {@link ksTwoSample}. */
export interface KsResult {
  /** The largest distance between the two empirical CDFs. */
  d: number
  /** Two-sided p-value. */
  p: number
  method: 'exact' | 'asymptotic'
}

/**
 * P(D ≥ d) for two samples of sizes m and n with no ties, by counting the lattice paths that leave
 * the band |i/m − j/n| < d (R's psmirnov2x; SciPy's `ks_2samp(method='exact')`). O(m·n).
 */
function ksExactP (d: number, m: number, n: number): number {
  // the attainable distances are multiples of 1/(m·n): put q half a step below d to be robust to rounding
  const q = (0.5 + Math.floor(d * m * n - 1e-7)) / (m * n)
  // all paths to (i, j) and those of them that have left the band, both divided by the same weight so
  // that they stay probabilities (a count overflows). The paths that left are summed, not found as
  // 1 − the paths that stayed, which loses every p below about 1e-16 to rounding (a big change read as p = 0).
  const all = new Float64Array(n + 1).fill(1)
  const left = new Float64Array(n + 1)
  for (let j = 0; j <= n; j++) if (j / n > q) left[j] = 1
  for (let i = 1; i <= m; i++) {
    const w = i / (i + n)
    all[0] = w * all[0]!
    left[0] = i / m > q ? all[0] : w * left[0]!
    for (let j = 1; j <= n; j++) {
      all[j] = w * all[j]! + all[j - 1]!
      left[j] = Math.abs(i / m - j / n) > q ? all[j]! : w * left[j]! + left[j - 1]!
    }
  }
  return Math.min(1, left[n]! / all[n]!)
}

/** The Kolmogorov distribution's survival function: P(K > x), SciPy's `kstwobign.sf`. */
export function kolmogorovSf (x: number): number {
  if (x <= 0) return 1
  if (x < 1) {
    // the Jacobi-theta form converges fast for small x: P(K ≤ x) = √(2π)/x Σ exp(−(2k−1)²π²/(8x²))
    let cdf = 0
    for (let k = 1; k < 100; k++) {
      const term = Math.exp(-((2 * k - 1) ** 2) * Math.PI * Math.PI / (8 * x * x))
      cdf += term
      if (term < 1e-17 * cdf) break
    }
    return 1 - Math.sqrt(2 * Math.PI) / x * cdf
  }
  let sf = 0
  for (let k = 1; k < 100; k++) {
    const term = 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * x * x)
    sf += term
    if (Math.abs(term) < 1e-17 * Math.abs(sf)) break
  }
  return Math.min(1, Math.max(0, sf))
}

/**
 * The two-sided two-sample Kolmogorov–Smirnov test. The p-value is exact (lattice paths) up to
 * {@link KS_EXACT_MAX_PAIRS} pairs and asymptotic above: the Kolmogorov distribution at
 * √(mn/(m+n))·D (SciPy's `kstwobign`; its `ks_2samp(method='asymp')` uses the finite-n `kstwo` at
 * round(mn/(m+n)) instead, which differs by well under 1% of p at the sizes it is used for here).
 * Ties in the pooled sample make both p-values conservative.
 */
export function ksTwoSample (x: Histogram, y: Histogram): KsResult {
  const m = x.n
  const n = y.n
  if (m === 0 || n === 0) return { d: Number.NaN, p: Number.NaN, method: 'exact' }
  let i = 0
  let j = 0
  let cx = 0
  let cy = 0
  let d = 0
  // walk both; a value present in both moves both CDFs before they are compared
  while (i < x.values.length && j < y.values.length) {
    const v = Math.min(x.values[i]!, y.values[j]!)
    if (x.values[i] === v) cx += x.counts[i++]!
    if (y.values[j] === v) cy += y.counts[j++]!
    d = Math.max(d, Math.abs(cx / m - cy / n))
  }
  if (m * n <= KS_EXACT_MAX_PAIRS) return { d, p: ksExactP(d, m, n), method: 'exact' }
  return { d, p: kolmogorovSf(Math.sqrt(m * n / (m + n)) * d), method: 'asymptotic' }
}

/** How many pairs have y − x ≤ d: O(distinct values). */
function pairsAtMost (x: Histogram, y: Histogram, d: number): number {
  let count = 0
  let j = 0
  let ys = 0
  for (let i = 0; i < x.values.length; i++) {
    while (j < y.values.length && y.values[j]! - x.values[i]! <= d) ys += y.counts[j++]!
    count += x.counts[i]! * ys
  }
  return count
}

/** The smallest difference y − x above `lo`. */
function smallestDifferenceAbove (x: Histogram, y: Histogram, lo: number): number {
  let best = Infinity
  let j = y.values.length
  // as x grows the first y with y − x > lo moves right: walk x downwards, j leftwards
  for (let i = x.values.length - 1; i >= 0; i--) {
    while (j > 0 && y.values[j - 1]! - x.values[i]! > lo) j--
    if (j < y.values.length) best = Math.min(best, y.values[j]! - x.values[i]!)
  }
  return best
}

/**
 * The k-th smallest (1-based) of the m·n differences y − x, without listing them: bisection on the
 * value with a linear count per step, then the exact difference found at the boundary.
 */
function kthDifference (x: Histogram, y: Histogram, k: number): number {
  let lo = y.values[0]! - x.values[x.values.length - 1]! - 1 // fewer than k pairs at or below
  let hi = y.values[y.values.length - 1]! - x.values[0]! // all pairs at or below
  for (let step = 0; step < 200; step++) {
    const mid = lo + (hi - lo) / 2
    if (mid === lo || mid === hi) break
    if (pairsAtMost(x, y, mid) >= k) hi = mid
    else lo = mid
  }
  return smallestDifferenceAbove(x, y, lo)
}

/** The result of {@link hodgesLehmann}. */
export interface ShiftEstimate {
  /** The median of all differences candidate − baseline: how much slower (positive) the candidate is. */
  shift: number
  /**
   * The confidence interval of the shift (distribution-free, from the U statistic's normal approximation),
   * widened on a sketch by its buckets' width: the interval holds for whichever durations the buckets hold.
   */
  low: number
  high: number
  confidence: number
}

/**
 * The Hodges–Lehmann estimate of the shift from `x` (baseline) to `y` (candidate) — the median of the
 * m·n pairwise differences — and its confidence interval (Moses / Bauer: the k-th smallest and largest
 * differences, k from the U distribution's normal approximation with tie correction). O((m+n) log).
 */
export function hodgesLehmann (x: Histogram, y: Histogram, confidence = 0.95): ShiftEstimate {
  const m = x.n
  const n = y.n
  if (m === 0 || n === 0) return { shift: Number.NaN, low: Number.NaN, high: Number.NaN, confidence }
  const pairs = m * n
  const shift = pairs % 2 === 1
    ? kthDifference(x, y, (pairs + 1) / 2)
    : (kthDifference(x, y, pairs / 2) + kthDifference(x, y, pairs / 2 + 1)) / 2
  const { sigma } = mannWhitneyU(x, y)
  const z = normalQuantile(1 - (1 - confidence) / 2)
  const k = Math.max(1, Math.floor(pairs / 2 - z * sigma))
  // Each true difference lies between y's smallest and x's largest possible duration and the other
  // way round, so the k-th smallest true difference is at least the k-th smallest of those bounds (and
  // likewise at the top). Without this, two sketches each in one bucket give an interval of zero width.
  const ax = x.relativeError ?? 0
  const ay = y.relativeError ?? 0
  const low = kthDifference(scaled(x, 1 / (1 - ax)), scaled(y, 1 / (1 + ay)), k)
  const high = kthDifference(scaled(x, 1 / (1 + ax)), scaled(y, 1 / (1 - ay)), pairs - k + 1)
  return { shift, low, high, confidence }
}

/** The histogram with every value multiplied by `factor` (> 0, so the order stays). */
function scaled (h: Histogram, factor: number): Histogram {
  return factor === 1 ? h : { values: h.values.map((v) => v * factor), counts: h.counts, n: h.n }
}

/**
 * Cliff's delta from `x` (baseline) to `y` (candidate): P(y > x) − P(y < x), in [−1, 1]; derived from U
 * (U of x counts x > y), so it costs nothing more than {@link mannWhitneyU}.
 */
export function cliffsDelta (uOfX: number, m: number, n: number): number {
  return 1 - 2 * uOfX / (m * n)
}
