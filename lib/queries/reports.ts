import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '../db/database.js'
import { UnknownSelectionError } from '../errors.js'
import { bySignificance, compareSides, DEFAULT_THRESHOLDS, type EndpointComparison, type ReportThresholds, type SideSample } from '../reports/compare.js'
import { formatSelector, type Selector } from '../reports/selector.js'

/**
 * Requests read per endpoint and side: the latest this many of the window. 10,000 a side already
 * detects a shift far below the 5% / 1 ms thresholds (Cliff's delta of a 5% shift of typical latencies
 * is ≈ 0.1; this sample size resolves ≈ 0.03 at α = 0.01), and bounds a report's cost by the number of
 * endpoints, not by the table: 50,000 a side took 10.6 s (p50) on 1M requests at load average 20.
 */
export const MAX_REPORT_SAMPLES = 10_000

/** The window and version one side of a report reads. */
export interface ResolvedSide {
  label: string
  /** The window; null for a version, which is read whenever it served (within retention). */
  from: Date | null
  to: Date | null
  /** Only this version's requests; null for every version. */
  versionId: number | null
}

/** A report: every endpoint with requests on either side, flagged ones first. */
export interface Report {
  /** What each side read; a version side has no window of its own (null). */
  baseline: ReportSide
  candidate: ReportSide
  thresholds: ReportThresholds
  endpoints: Array<{ endpointId: number, method: string, route: string, limited: boolean } & EndpointComparison>
  summary: { regressions: number, improvements: number, unchanged: number, insufficient: number }
}

/** One side as the report names it. */
export type ReportSide = Pick<ResolvedSide, 'label' | 'from' | 'to'>

/** The window (and version) a selector stands for; a version or run tag not in the database is an error. */
export async function resolveSide (db: Kysely<Database>, selector: Selector): Promise<ResolvedSide> {
  const label = formatSelector(selector)
  switch (selector.kind) {
    case 'range': return { label, from: selector.from, to: selector.to, versionId: null }
    case 'version': {
      const row = await db.selectFrom('version').select('id').where('version', '=', selector.version).executeTakeFirst()
      if (row === undefined) throw new UnknownSelectionError(`no requests of version "${selector.version}" were recorded`)
      return { label, from: null, to: null, versionId: row.id }
    }
    case 'run': {
      // the latest run of that tag: a baseline run is usually re-recorded when it goes stale
      const row = await db.selectFrom('load_run').select(['started_at', 'ended_at']).where('tag', '=', selector.tag)
        .orderBy('started_at', 'desc').limit(1).executeTakeFirst()
      if (row === undefined) throw new UnknownSelectionError(`no load-test run tagged "${selector.tag}" (record one with the load command)`)
      return { label, from: row.started_at, to: row.ended_at, versionId: null }
    }
  }
}

/**
 * A version side's scan, bounded to the hours the version served on the endpoint (from its hourly
 * rollup, one index range per endpoint): without it the newest-first scan walks every later version's
 * requests before reaching an old one's (4.7 s per report at 1M requests over 50 versions).
 */
function servedWindow (versionId: number): RawBuilder<unknown> {
  const hours = sql`from ${sql.table('version_hour')} v where v.endpoint_id = e.id and v.version_id = ${versionId}`
  return sql`r.time_requested >= (select min(v.hour) ${hours}) and r.time_requested < (select max(v.hour) ${hours}) + interval '1 hour'`
}

/**
 * One side's requests per endpoint, from the raw rows (the rank tests need the values): the latest
 * {@link MAX_REPORT_SAMPLES} per endpoint of the window, by the endpoint + time index.
 */
export async function sideSamples (db: Kysely<Database>, side: ResolvedSide, limit = MAX_REPORT_SAMPLES): Promise<Map<number, SideSample & { method: string, route: string }>> {
  const { rows } = await sql<{ endpoint_id: number, method: string, route: string, hits: number, server_errors: number, durations: number[] }>`
    select e.id as endpoint_id, e.method, e.route, count(*)::int as hits,
      (count(*) filter (where s.status_code >= 500))::int as server_errors,
      coalesce(array_agg(s.duration_ms) filter (where s.status_code < 500), '{}') as durations
    from ${sql.table('endpoint')} e cross join lateral (
      select r.duration_ms, r.status_code from ${sql.table('request')} r
      where r.endpoint_id = e.id
        ${side.from === null ? sql`` : sql`and r.time_requested >= ${side.from}`}
        ${side.to === null ? sql`` : sql`and r.time_requested < ${side.to}`}
        ${side.versionId === null ? sql`` : sql`and r.version_id = ${side.versionId} and ${servedWindow(side.versionId)}`}
      order by r.time_requested desc limit ${limit}) s
    group by e.id, e.method, e.route`.execute(db)
  return new Map(rows.map((row) => [row.endpoint_id, {
    method: row.method,
    route: row.route,
    hits: row.hits,
    serverErrors: row.server_errors,
    durations: row.durations.map(Number)
  }]))
}

const EMPTY: SideSample = { hits: 0, serverErrors: 0, durations: [] }

/**
 * Compares two selections endpoint by endpoint (see {@link compareSides}), flagged changes first.
 *
 * ### Examples
 * ```ts
 * const report = await buildReport(app.monitor.db, { kind: 'version', version: '1.4.2' }, { kind: 'version', version: '1.5.0' })
 * if (report.summary.regressions > 0) process.exitCode = 1
 * ```
 */
export async function buildReport (db: Kysely<Database>, baseline: Selector, candidate: Selector, thresholds: ReportThresholds = DEFAULT_THRESHOLDS, limit = MAX_REPORT_SAMPLES): Promise<Report> {
  const sides = [await resolveSide(db, baseline), await resolveSide(db, candidate)] as const
  const [before, after] = [await sideSamples(db, sides[0], limit), await sideSamples(db, sides[1], limit)]
  const endpoints: Report['endpoints'] = []
  for (const endpointId of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(endpointId)
    const b = after.get(endpointId)
    const { method, route } = (a ?? b)!
    endpoints.push({ endpointId, method, route, limited: a?.hits === limit || b?.hits === limit, ...compareSides(a ?? EMPTY, b ?? EMPTY, thresholds) })
  }
  endpoints.sort(bySignificance)
  const count = (verdict: EndpointComparison['verdict']): number => endpoints.filter((e) => e.verdict === verdict).length
  const window = ({ label, from, to }: ResolvedSide): ReportSide => ({ label, from, to })
  return {
    baseline: window(sides[0]),
    candidate: window(sides[1]),
    thresholds,
    endpoints,
    summary: { regressions: count('regression'), improvements: count('improvement'), unchanged: count('no change'), insufficient: count('insufficient data') }
  }
}
