import { cliffsDelta, hodgesLehmann, ksTwoSample, mannWhitneyU, normalSf, quantile, type Histogram, type ShiftEstimate } from './stats.js'

/** When a change is flagged: significant at `alpha` and at least `minChangePct` % and `minChangeMs` ms. */
export interface ReportThresholds {
  /** Significance level of the tests (default 0.01: a report tests every endpoint at once). */
  alpha: number
  /** Smallest change of the median (or of p95, for a change in the tail) flagged, in % (default 5). */
  minChangePct: number
  /** …and in ms (default 1). */
  minChangeMs: number
  /** Smallest change of the share of 5xx responses flagged, in percentage points (default 1). */
  minErrorChangePct: number
  /** Fewer requests than this on either side: "insufficient data" (default 20). */
  minSamples: number
}

export const DEFAULT_THRESHOLDS: ReportThresholds = { alpha: 0.01, minChangePct: 5, minChangeMs: 1, minErrorChangePct: 1, minSamples: 20 }

/** The values a caller may set, as JSON Schema bounds (the API's query and the CLI's flags). */
export const THRESHOLD_BOUNDS = {
  alpha: { exclusiveMinimum: 0, maximum: 0.5 },
  minChangePct: { minimum: 0, maximum: 1000 },
  minChangeMs: { minimum: 0, maximum: 3_600_000 }
} as const

/** One side of a comparison for one endpoint, as read from the database. */
export interface SideSample {
  /** Requests on this side (all status codes). */
  hits: number
  /** Responses with status ≥ 500. */
  serverErrors: number
  /**
   * The durations (ms) of every response, as the rollups keep them: each bucket's value (within
   * the rollups' 2%, see lib/db/rollup.ts) with its count.
   */
  latency: Histogram
}

/** A side's figures in the report: what a box plot needs and the share of 5xx. */
export interface SideSummary {
  hits: number
  serverErrorShare: number
  min: number | null
  q1: number | null
  median: number | null
  q3: number | null
  p95: number | null
  max: number | null
  /** A few quantiles (every 5%) for an overlaid CDF. */
  cdf: number[]
}

export type Verdict = 'regression' | 'improvement' | 'no change' | 'insufficient data'

/** The comparison of one endpoint. */
export interface EndpointComparison {
  baseline: SideSummary
  candidate: SideSummary
  medianChangeMs: number | null
  medianChangePct: number | null
  p95ChangeMs: number | null
  p95ChangePct: number | null
  mannWhitney: { u: number, p: number } | null
  ks: { d: number, p: number, method: 'exact' | 'asymptotic' } | null
  /** Hodges–Lehmann: candidate − baseline, ms, with its 95% interval. */
  shift: ShiftEstimate | null
  cliffsDelta: number | null
  /** Two-proportion z-test of the 5xx shares. */
  errorShareP: number | null
  verdict: Verdict
  /** Why the verdict: e.g. "median +21.3% (p = 1e-12)", "5xx share +4.0 points". */
  reasons: string[]
}

const finite = (v: number): number | null => Number.isFinite(v) ? v : null

function summarize (side: SideSample): SideSummary {
  const q = (p: number): number | null => finite(quantile(side.latency, p))
  return {
    hits: side.hits,
    serverErrorShare: side.hits === 0 ? 0 : side.serverErrors / side.hits,
    min: q(0),
    q1: q(0.25),
    median: q(0.5),
    q3: q(0.75),
    p95: q(0.95),
    max: q(1),
    cdf: side.latency.n === 0 ? [] : Array.from({ length: 21 }, (_, i) => quantile(side.latency, i / 20))
  }
}

/** Two-sided two-proportion z-test (pooled), NaN when neither side has a failure or a side is empty. */
function twoProportionP (x1: number, n1: number, x2: number, n2: number): number {
  if (n1 === 0 || n2 === 0) return Number.NaN
  const pooled = (x1 + x2) / (n1 + n2)
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
  if (se === 0) return 1
  return Math.min(1, 2 * normalSf(Math.abs(x1 / n1 - x2 / n2) / se))
}

function pct (from: number | null, to: number | null): number | null {
  return from === null || to === null || from === 0 ? null : (to - from) / from * 100
}

/** A p-value as reports print it: two significant digits, in exponent form below 1e-4. */
export function formatP (p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toPrecision(2)
}

/** Whether a change of `ms` (and `percent`) is big enough to flag, and in which direction. */
function direction (ms: number | null, percent: number | null, t: ReportThresholds): -1 | 0 | 1 {
  if (ms === null || percent === null) return 0
  if (Math.abs(ms) < t.minChangeMs || Math.abs(percent) < t.minChangePct) return 0
  return ms > 0 ? 1 : -1
}

/**
 * Compares one endpoint's two sides: the latency distributions of its responses (Mann–Whitney
 * for a shift, Kolmogorov–Smirnov for the shape, the Hodges–Lehmann shift and Cliff's delta as effect
 * sizes) and the share of 5xx. A latency change is flagged when a test is significant at `alpha` and the
 * median moved by at least the thresholds; when only the shape changed (KS) the p95 must have moved by
 * them (a slower tail with the same median). An error change is flagged past `minErrorChangePct`.
 */
export function compareSides (baseline: SideSample, candidate: SideSample, thresholds: ReportThresholds = DEFAULT_THRESHOLDS): EndpointComparison {
  const a = baseline.latency
  const b = candidate.latency
  const base = summarize(baseline)
  const cand = summarize(candidate)
  const medianChangeMs = base.median === null || cand.median === null ? null : cand.median - base.median
  const p95ChangeMs = base.p95 === null || cand.p95 === null ? null : cand.p95 - base.p95
  const result: EndpointComparison = {
    baseline: base,
    candidate: cand,
    medianChangeMs,
    medianChangePct: pct(base.median, cand.median),
    p95ChangeMs,
    p95ChangePct: pct(base.p95, cand.p95),
    mannWhitney: null,
    ks: null,
    shift: null,
    cliffsDelta: null,
    errorShareP: finite(twoProportionP(baseline.serverErrors, baseline.hits, candidate.serverErrors, candidate.hits)),
    verdict: 'insufficient data',
    reasons: []
  }
  if (baseline.hits < thresholds.minSamples || candidate.hits < thresholds.minSamples) {
    result.reasons.push(`fewer than ${thresholds.minSamples} requests on a side`)
    return result
  }
  let worse = false
  let better = false
  const flag = (sign: number): void => { if (sign > 0) worse = true; else better = true }
  if (a.n >= thresholds.minSamples && b.n >= thresholds.minSamples) {
    const mw = mannWhitneyU(a, b)
    const ks = ksTwoSample(a, b)
    result.mannWhitney = { u: mw.u, p: mw.p }
    result.ks = ks
    result.shift = hodgesLehmann(a, b)
    result.cliffsDelta = cliffsDelta(mw.u, a.n, b.n)
    const median = direction(medianChangeMs, result.medianChangePct, thresholds)
    const tail = direction(p95ChangeMs, result.p95ChangePct, thresholds)
    if (mw.p < thresholds.alpha && median !== 0) {
      flag(median)
      result.reasons.push(`median ${signed(result.medianChangePct!)}% (${signed(medianChangeMs!)} ms), Mann–Whitney p = ${formatP(mw.p)}`)
    } else if (ks.p < thresholds.alpha && tail !== 0) {
      flag(tail)
      result.reasons.push(`p95 ${signed(result.p95ChangePct!)}% (${signed(p95ChangeMs!)} ms), Kolmogorov–Smirnov p = ${formatP(ks.p)}`)
    }
  }
  const errorChange = (cand.serverErrorShare - base.serverErrorShare) * 100
  if (result.errorShareP !== null && result.errorShareP < thresholds.alpha && Math.abs(errorChange) >= thresholds.minErrorChangePct) {
    flag(errorChange)
    result.reasons.push(`5xx share ${signed(errorChange)} points, p = ${formatP(result.errorShareP)}`)
  }
  // a slower endpoint that also fails less is still a regression for a CI gate
  result.verdict = worse ? 'regression' : better ? 'improvement' : 'no change'
  return result
}

function signed (v: number): string {
  return `${v >= 0 ? '+' : ''}${v.toFixed(1)}`
}

const ORDER: Record<Verdict, number> = { regression: 0, improvement: 1, 'no change': 2, 'insufficient data': 3 }

/** Flagged rows first (regressions, then improvements), then by the smaller of the two p-values. */
export function bySignificance (a: EndpointComparison, b: EndpointComparison): number {
  const p = (c: EndpointComparison): number => Math.min(c.mannWhitney?.p ?? 1, c.ks?.p ?? 1, c.errorShareP ?? 1)
  return ORDER[a.verdict] - ORDER[b.verdict] || p(a) - p(b)
}
