import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { distributionsFromRaw, type Distribution } from './distribution.js'
import type { TimeRange } from './range.js'

/** An outlier in a list: what it cost, and the function the main thread was busiest in. */
export interface OutlierSummary {
  id: string
  timeRequested: Date
  durationMs: number
  thresholdMs: number
  statusCode: number
  version: string
  url: string
  hottestFunction: string | null
}

/** One outlier with all its evidence (request, phases, process, stacks). */
export interface OutlierDetail extends OutlierSummary {
  endpointId: number
  request: unknown
  phases: unknown
  process: unknown
  stacks: unknown
}

/** What the process was using while the kept outliers ran, as distributions over them (FMD's CPU and memory box plots). */
export type OutlierResources = Partial<Record<'cpuPercent' | 'rssMb' | 'heapUsedMb' | 'eventLoopDelayMs', Distribution>>

/**
 * An endpoint's outliers in the range, newest first, a page at a time, with how many were found and
 * kept, and the distributions of their process resources (over every kept one in the range, not the page).
 */
export async function listOutliers (db: Kysely<Database>, endpointId: number, range: TimeRange, limit: number, offset: number):
Promise<{ found: number, stored: number, rows: OutlierSummary[], resources: OutlierResources }> {
  const [counts, rows, resources] = await Promise.all([
    sql<{ found: string | null, stored: string | null }>`select sum(found) as found, sum(stored) as stored from ${sql.table('outlier_hour')}
      where endpoint_id = ${endpointId} and hour >= date_trunc('hour', ${range.from}::timestamptz, 'UTC') and hour < ${range.to}`.execute(db),
    sql<{ id: string, time_requested: Date, duration_ms: number, threshold_ms: number, status_code: number, version: string, url: string, hottest: string | null }>`
      select o.id, o.time_requested, o.duration_ms, o.threshold_ms, o.status_code, v.version, o.request->>'url' as url,
        o.stacks->'hot'->0->'frame'->>'functionName' as hottest
      from ${sql.table('outlier')} o join ${sql.table('version')} v on v.id = o.version_id
      where o.endpoint_id = ${endpointId} and o.time_requested >= ${range.from} and o.time_requested < ${range.to}
      order by o.time_requested desc, o.id desc limit ${limit} offset ${offset}`.execute(db),
    distributionsFromRaw<keyof OutlierResources>(db, sql`select m.k, m.d from ${sql.table('outlier')} o
      cross join lateral (values ('cpuPercent', (o.process->>'cpuPercent')::float8), ('rssMb', (o.process->>'rssBytes')::float8 / 1e6),
        ('heapUsedMb', (o.process->>'heapUsedBytes')::float8 / 1e6), ('eventLoopDelayMs', (o.process->>'eventLoopDelayMaxMs')::float8)) as m(k, d)
      where o.endpoint_id = ${endpointId} and o.time_requested >= ${range.from} and o.time_requested < ${range.to} and m.d is not null`, 4)
  ])
  return {
    found: Number(counts.rows[0]?.found ?? 0),
    stored: Number(counts.rows[0]?.stored ?? 0),
    rows: rows.rows.map((row) => ({
      id: String(row.id),
      timeRequested: row.time_requested,
      durationMs: row.duration_ms,
      thresholdMs: row.threshold_ms,
      statusCode: row.status_code,
      version: row.version,
      url: row.url,
      hottestFunction: row.hottest
    })),
    resources: Object.fromEntries(resources)
  }
}

export async function findOutlier (db: Kysely<Database>, id: string): Promise<OutlierDetail | undefined> {
  const { rows: [row] } = await sql<{ id: string, endpoint_id: number, time_requested: Date, duration_ms: number, threshold_ms: number, status_code: number, version: string, request: { url?: string }, phases: unknown, process: unknown, stacks: { hot?: Array<{ frame: { functionName: string } }> } | null }>`
    select o.*, v.version from ${sql.table('outlier')} o join ${sql.table('version')} v on v.id = o.version_id where o.id = ${id}::bigint`.execute(db)
  if (row === undefined) return undefined
  return {
    id: String(row.id),
    endpointId: row.endpoint_id,
    timeRequested: row.time_requested,
    durationMs: row.duration_ms,
    thresholdMs: row.threshold_ms,
    statusCode: row.status_code,
    version: row.version,
    url: row.request.url ?? '',
    hottestFunction: row.stacks?.hot?.[0]?.frame.functionName ?? null,
    request: row.request,
    phases: row.phases,
    process: row.process,
    stacks: row.stacks
  }
}
