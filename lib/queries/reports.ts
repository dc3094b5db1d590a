import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '../db/database.js'
import { bucketSql, bucketValue, periodStart, ROLLUP_RELATIVE_ERROR } from '../db/rollup.js'
import { UnknownSelectionError } from '../errors.js'
import { bySignificance, compareSides, DEFAULT_THRESHOLDS, type EndpointComparison, type ReportThresholds, type SideSample } from '../reports/compare.js'
import { formatSelector, type Selector } from '../reports/selector.js'
import type { Histogram } from '../reports/stats.js'
import { MergedSketch } from './distribution.js'
import { endpointRollups } from './rollups.js'
import { HOUR_MS } from '../time.js'

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
  endpoints: Array<{ endpointId: number, method: string, route: string } & EndpointComparison>
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

/** The columns every source of a side's rows has: `k` (the endpoint), hits, server_errors and a sketch. */
const SIDE_COLUMNS = sql`endpoint_id as k, hits, server_errors, sketch_offset, sketch`

/** SQL: the raw requests of [from, to) as one sketch row per endpoint and bucket (for the parts of hours at a window's edges). */
function rawSideRows (from: Date, to: Date): RawBuilder<unknown> {
  return sql`select endpoint_id as k, count(*) as hits, count(*) filter (where status_code >= 500) as server_errors,
      bucket as sketch_offset, array[count(*)] as sketch
    from (select endpoint_id, status_code, ${bucketSql(sql.ref('duration_ms'))} as bucket from ${sql.table('request')}
      where time_requested >= ${from} and time_requested < ${to}) as r
    group by endpoint_id, bucket`
}

/**
 * SQL: a window's rows. Its whole hours come from the per-endpoint rollups (days and months where
 * they cover it, see {@link endpointRollups}); the parts of hours at its edges (a run's seconds, the
 * current hour, a half-hour time zone) from the raw requests, bucketed as the rollups are.
 */
function windowRows (from: Date, to: Date, nowMs: number): RawBuilder<unknown> {
  const end = Math.min(to.getTime(), nowMs)
  const firstHour = periodStart('hour', from.getTime() + HOUR_MS - 1)
  const endHour = periodStart('hour', end)
  const hours = firstHour < endHour ? endpointRollups(new Date(firstHour), new Date(endHour), SIDE_COLUMNS, nowMs) : undefined
  if (hours === undefined) return rawSideRows(from, new Date(Math.max(end, from.getTime())))
  const parts = [hours]
  if (from.getTime() < firstHour) parts.push(rawSideRows(from, new Date(firstHour)))
  if (endHour < end) parts.push(rawSideRows(new Date(endHour), new Date(end)))
  return sql.join(parts, sql` union all `)
}

/** SQL: a version's rows: its hourly sketches on every endpoint, with the 5xx of those hours. */
function versionRows (versionId: number): RawBuilder<unknown> {
  return sql`select v.endpoint_id as k, v.hits, coalesce((select sum(c.hits) from ${sql.table('request_hour')} c
        where c.endpoint_id = v.endpoint_id and c.hour = v.hour and c.version_id = v.version_id and c.status_code >= 500), 0) as server_errors,
      v.sketch_offset, v.sketch
    from ${sql.table('version_hour')} v where v.version_id = ${versionId}`
}

/** A merged sketch as the tests take it: each bucket's value with its count. */
function sketchHistogram (sketch: MergedSketch): Histogram {
  const values: number[] = []
  const counts: number[] = []
  for (const [bucket, count] of sketch.buckets()) {
    values.push(bucketValue(bucket))
    counts.push(count)
  }
  return { values: Float64Array.from(values), counts: Float64Array.from(counts), n: counts.reduce((sum, c) => sum + c, 0), relativeError: ROLLUP_RELATIVE_ERROR }
}

/**
 * One side per endpoint, from the rollups: requests, 5xx and the latency histogram merged from the
 * sketches of the side's hours (a version's, or a window's, see {@link windowRows}). Its cost grows with
 * endpoints × hours, not with requests: a version or a week of 300 endpoints is a few thousand rows.
 */
export async function sideSketches (db: Kysely<Database>, side: ResolvedSide, nowMs = Date.now()): Promise<Map<number, SideSample>> {
  const source = side.versionId !== null ? versionRows(side.versionId) : windowRows(side.from!, side.to!, nowMs)
  const { rows } = await sql<{ k: number, hits: string, c5: string, o: number, s: string }>`
    select k, hits, server_errors as c5, sketch_offset as o, sketch::text as s from (${source}) as r`.execute(db)
  const sums = new Map<number, { hits: number, serverErrors: number, sketch: MergedSketch }>()
  for (const row of rows) {
    let sum = sums.get(row.k)
    if (sum === undefined) sums.set(row.k, sum = { hits: 0, serverErrors: 0, sketch: new MergedSketch() })
    sum.hits += Number(row.hits)
    sum.serverErrors += Number(row.c5)
    sum.sketch.addText(row.o, row.s)
  }
  return new Map([...sums].map(([k, sum]) => [k, { hits: sum.hits, serverErrors: sum.serverErrors, latency: sketchHistogram(sum.sketch) }]))
}

const EMPTY: SideSample = { hits: 0, serverErrors: 0, latency: { values: new Float64Array(0), counts: new Float64Array(0), n: 0 } }

/**
 * Compares two selections endpoint by endpoint (see {@link compareSides}), flagged changes first; with
 * `projectId`, that project's endpoints only.
 *
 * ### Examples
 * ```ts
 * const report = await buildReport(app.monitor.db, { kind: 'version', version: '1.4.2' }, { kind: 'version', version: '1.5.0' })
 * if (report.summary.regressions > 0) process.exitCode = 1
 * ```
 */
export async function buildReport (db: Kysely<Database>, baseline: Selector, candidate: Selector, thresholds: ReportThresholds = DEFAULT_THRESHOLDS, projectId?: number): Promise<Report> {
  const sides = [await resolveSide(db, baseline), await resolveSide(db, candidate)] as const
  const [before, after, names] = await Promise.all([sideSketches(db, sides[0]), sideSketches(db, sides[1]),
    db.selectFrom('endpoint').select(['id', 'method', 'route']).$if(projectId !== undefined, (q) => q.where('project_id', '=', projectId!)).execute()])
  const endpoints: Report['endpoints'] = []
  for (const { id, method, route } of names) {
    const a = before.get(id)
    const b = after.get(id)
    if (a === undefined && b === undefined) continue
    endpoints.push({ endpointId: id, method, route, ...compareSides(a ?? EMPTY, b ?? EMPTY, thresholds) })
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
