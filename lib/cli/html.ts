import type { Report } from '../queries/reports.js'
import { formatP, type SideSummary } from '../reports/compare.js'

/** What a load-test run stored (autocannon's figures) when a side of the report is a run. */
export interface RunFigures {
  tag: string
  url: string
  startedAt: string
  connections: number
  summary: LoadSummary
}

/** The part of autocannon's result the `load` command keeps. */
export interface LoadSummary {
  durationS: number
  requests: number
  requestsPerSecond: number
  latencyMs: { p50: number, p90: number, p99: number, max: number, mean: number }
  errors: number
  timeouts: number
  non2xx: number
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
/** Text made inert in HTML: route names and labels come from the monitored app and the command line. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/** How the report's figures read, in its text and its HTML alike. */
export const shown = {
  /** ms: two decimals below 10, so that a sub-millisecond endpoint does not read 0.0. */
  ms: (v: number | null): string => v === null ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1),
  change: (v: number | null): string => v === null ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`,
  p: (v: number | null | undefined): string => v === null || v === undefined ? '–' : formatP(v),
  /** The share of 5xx of a side, none for a side without requests. */
  errors: (side: SideSummary): string => side.hits === 0 ? '–' : `${(side.serverErrorShare * 100).toFixed(1)}%`,
  summary: ({ regressions, improvements, unchanged, insufficient }: Report['summary']): string =>
    `${regressions} regression${regressions === 1 ? '' : 's'}, ${improvements} improvement${improvements === 1 ? '' : 's'}, ${unchanged} unchanged, ${insufficient} with too few requests`
}
const { ms, change: pct, p } = shown

/**
 * The x axis of both charts: from the fastest request to a quarter past the larger p95. One slow request
 * must not squeeze every other into a corner: what lies beyond is drawn at the right edge, marked.
 */
function durationAxis (a: SideSummary, b: SideSummary, width: number): { x: (v: number) => number, lo: number, hi: number } | undefined {
  const mins = [a.min, b.min].filter((v): v is number => v !== null)
  const p95s = [a.p95, b.p95].filter((v): v is number => v !== null)
  if (mins.length === 0 || p95s.length === 0) return undefined
  const lo = Math.min(...mins)
  const hi = Math.max(lo + 0.001, Math.min(Math.max(...p95s) * 1.25, Math.max(a.max ?? lo, b.max ?? lo)))
  return { lo, hi, x: (v) => 10 + (Math.min(v, hi) - lo) / (hi - lo) * (width - 20) }
}

function axisLabels ({ lo, hi }: { lo: number, hi: number }, width: number, y: number): string {
  return `<text x="10" y="${y}" font-size="9">${ms(lo)} ms</text><text x="${width - 10}" y="${y}" font-size="9" text-anchor="end">${ms(hi)} ms</text>`
}

/** Two box plots (baseline above, candidate below) on one axis, as inline SVG; a max beyond the axis is an arrow at its end. */
function boxPlots (a: SideSummary, b: SideSummary): string {
  const width = 320
  const axis = durationAxis(a, b, width)
  if (axis === undefined) return ''
  const { x } = axis
  const box = (s: SideSummary, y: number, color: string): string => {
    if (s.min === null || s.q1 === null || s.median === null || s.q3 === null || s.max === null) return ''
    const beyond = s.max > axis.hi
      ? `<path d="M${width - 10},${y + 4} l6,4 l-6,4 z" fill="${color}"><title>max ${ms(s.max)} ms</title></path>`
      : ''
    return `<line x1="${x(s.min)}" x2="${x(s.max)}" y1="${y + 8}" y2="${y + 8}" stroke="${color}"/>` + beyond +
      `<rect x="${x(s.q1)}" y="${y}" width="${Math.max(1, x(s.q3) - x(s.q1))}" height="16" fill="${color}" fill-opacity="0.25" stroke="${color}"/>` +
      `<line x1="${x(s.median)}" x2="${x(s.median)}" y1="${y}" y2="${y + 16}" stroke="${color}" stroke-width="2"/>`
  }
  return `<svg class="box" width="${width}" height="64" role="img" aria-label="box plots: baseline ${ms(a.median)} ms, candidate ${ms(b.median)} ms median">` +
    box(a, 6, '#2563eb') + box(b, 30, '#dc2626') + axisLabels(axis, width, 62) + '</svg>'
}

/** The two empirical CDFs (every 5%) overlaid on the box plots' axis, as inline SVG. */
function cdfs (a: SideSummary, b: SideSummary): string {
  const width = 320
  const axis = durationAxis(a, b, width)
  if (axis === undefined) return ''
  const height = 102
  const plot = 80 // the plot's height, from y = 10
  const line = (cdf: number[], color: string): string => cdf.length === 0
    ? ''
    : `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${cdf.map((v, i) => `${axis.x(v).toFixed(1)},${(10 + plot - (i / (cdf.length - 1)) * plot).toFixed(1)}`).join(' ')}"/>`
  return `<svg class="cdf" width="${width}" height="${height}" role="img" aria-label="cumulative distributions">` +
    `<rect x="10" y="10" width="${width - 20}" height="${plot}" fill="none" stroke="#ddd"/>` +
    line(a.cdf, '#2563eb') + line(b.cdf, '#dc2626') +
    `<text x="${width - 12}" y="20" font-size="9" fill="#666" text-anchor="end">100%</text><text x="${width - 12}" y="${6 + plot}" font-size="9" fill="#666" text-anchor="end">0%</text>` +
    axisLabels(axis, width, height - 2) + '</svg>'
}

function runTable (runs: { baseline?: RunFigures, candidate?: RunFigures }): string {
  if (runs.baseline === undefined && runs.candidate === undefined) return ''
  const cell = (r: RunFigures | undefined, f: (s: LoadSummary) => string): string => `<td>${r === undefined ? '–' : escapeHtml(f(r.summary))}</td>`
  const rows: Array<[string, (s: LoadSummary) => string]> = [
    ['requests', (s) => String(s.requests)],
    ['requests/s', (s) => s.requestsPerSecond.toFixed(1)],
    ['latency p50 (ms)', (s) => ms(s.latencyMs.p50)],
    ['latency p90 (ms)', (s) => ms(s.latencyMs.p90)],
    ['latency p99 (ms)', (s) => ms(s.latencyMs.p99)],
    ['errors + timeouts', (s) => String(s.errors + s.timeouts)],
    ['non-2xx', (s) => String(s.non2xx)]
  ]
  const head = (r: RunFigures | undefined, side: string): string => `<th>${side}${r === undefined ? '' : `<br><small>${escapeHtml(r.tag)} · ${escapeHtml(r.url)} · ${r.connections} connections · ${escapeHtml(r.startedAt)}</small>`}</th>`
  return `<h2>Load-test runs (client side, autocannon)</h2><table class="runs"><tr><th></th>${head(runs.baseline, 'baseline')}${head(runs.candidate, 'candidate')}</tr>` +
    rows.map(([name, f]) => `<tr><th>${name}</th>${cell(runs.baseline, f)}${cell(runs.candidate, f)}</tr>`).join('') + '</table>'
}

/**
 * A report as one self-contained HTML page: tables and inline SVG charts, no script, no network.
 * Every text from the database or the command line is escaped.
 */
export function reportHtml (report: Report, runs: { baseline?: RunFigures, candidate?: RunFigures } = {}): string {
  const side = (s: Report['baseline']): string => `${escapeHtml(s.label)}${s.from === null ? '' : ` <small>(${s.from.toISOString()} – ${s.to!.toISOString()})</small>`}`
  const { summary: sum, thresholds: t } = report
  const rows = report.endpoints.map((e) => {
    const flagged = e.verdict === 'regression' || e.verdict === 'improvement'
    return `<tr class="${e.verdict.replace(/ /g, '-')}"><td><code>${escapeHtml(`${e.method} ${e.route}`)}</code></td>` +
      `<td>${e.baseline.hits}</td><td>${e.candidate.hits}</td>` +
      `<td>${ms(e.baseline.median)}</td><td>${ms(e.candidate.median)}</td><td>${pct(e.medianChangePct)}</td>` +
      `<td>${ms(e.baseline.p95)}</td><td>${ms(e.candidate.p95)}</td><td>${pct(e.p95ChangePct)}</td>` +
      `<td>${shown.errors(e.baseline)}</td><td>${shown.errors(e.candidate)}</td>` +
      `<td>${p(e.mannWhitney?.p)}</td><td>${p(e.ks?.p)}</td><td>${e.shift === null ? '–' : `${ms(e.shift.shift)} [${ms(e.shift.low)}, ${ms(e.shift.high)}]`}</td>` +
      `<td><b>${e.verdict}</b>${e.reasons.length === 0 ? '' : `<br><small>${escapeHtml(e.reasons.join('; '))}</small>`}</td>` +
      `<td>${flagged ? boxPlots(e.baseline, e.candidate) + cdfs(e.baseline, e.candidate) : ''}</td></tr>`
  }).join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Performance report: ${escapeHtml(report.baseline.label)} → ${escapeHtml(report.candidate.label)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse;margin:1rem 0}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:top}
td:first-child,th:first-child{text-align:left}tr.regression{background:#fee2e2}tr.improvement{background:#dcfce7}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px}
</style></head><body>
<h1>Performance report</h1>
<p>Baseline: ${side(report.baseline)}<br>Candidate: ${side(report.candidate)}</p>
<p>${shown.summary(sum)}.
Flagged: Mann–Whitney (or Kolmogorov–Smirnov for the p95) significant at α = ${t.alpha} and a change of at least ${t.minChangePct}% and ${t.minChangeMs} ms; or a 5xx share changed by at least ${t.minErrorChangePct} percentage point${t.minErrorChangePct === 1 ? '' : 's'}.</p>
<p class="legend"><span style="background:#2563eb"></span>baseline <span style="background:#dc2626"></span>candidate</p>
${runTable(runs)}
<h2>Endpoints (server side, as the plugin recorded them)</h2>
<table><thead><tr><th>endpoint</th><th>hits A</th><th>hits B</th><th>median A (ms)</th><th>median B (ms)</th><th>Δ</th><th>p95 A (ms)</th><th>p95 B (ms)</th><th>Δ</th><th>5xx A</th><th>5xx B</th>
<th>Mann–Whitney p</th><th>KS p</th><th>shift (ms) [95%]</th><th>verdict</th><th>distributions</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`
}
