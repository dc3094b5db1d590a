import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '../storage/database.js'
import { distributionsFromBuckets, distributionsFromRaw, type Distribution } from './distribution.js'
import type { TimeRange } from './range.js'

/** Duration distribution of every endpoint with requests in the range (rollups): FMD's API performance. */
export async function endpointPerformance (db: Kysely<Database>, range: TimeRange): Promise<Array<{ endpointId: number } & Distribution>> {
  const byEndpoint = await distributionsFromBuckets<number>(db, sql`select endpoint_id as k, bucket, hits from ${sql.table('duration_hour')}
    where hour >= ${range.from} and hour < ${range.to}`)
  return [...byEndpoint].map(([endpointId, d]) => ({ endpointId, ...d })).sort((a, b) => a.endpointId - b.endpointId)
}

/** Duration distribution of one endpoint per version in the range (rollups). */
export async function performanceByVersion (db: Kysely<Database>, range: TimeRange, endpointId: number): Promise<Array<{ version: string } & Distribution>> {
  const byVersion = await distributionsFromBuckets<string>(db, sql`select v.version as k, d.bucket, d.hits
    from ${sql.table('duration_hour')} d join ${sql.table('version')} v on v.id = d.version_id
    where d.endpoint_id = ${endpointId} and d.hour >= ${range.from} and d.hour < ${range.to}`)
  return [...byVersion].map(([version, d]) => ({ version, ...d }))
}

/** Most distinct values shown per group-by or IP breakdown; the busiest are kept. */
export const MAX_GROUPS = 50
/**
 * Breakdowns by group-by value or IP read the latest this many requests of the range: their keys are
 * unbounded, so they come from raw rows, and this keeps an endpoint page fast at any table size.
 */
export const MAX_BREAKDOWN_REQUESTS = 100_000

/** The endpoint's latest requests in the range (newest first, by the endpoint + time index), at most `limit`. */
function latestRequests (range: TimeRange, endpointId: number, limit: number): RawBuilder<unknown> {
  return sql`select * from ${sql.table('request')}
    where endpoint_id = ${endpointId} and time_requested >= ${range.from} and time_requested < ${range.to}
    order by time_requested desc limit ${limit}`
}

/** A breakdown of one endpoint's requests by group-by value or client IP. */
export interface Breakdown {
  /** Exact distribution per value, busiest first, at most {@link MAX_GROUPS}. */
  distributions: Array<{ key: string | null } & Distribution>
  /** Requests and exact median per version × value (requests without a value left out). */
  matrix: MatrixCell[]
  /** Requests the breakdown read: all of the range's, or the latest {@link MAX_BREAKDOWN_REQUESTS}. */
  requests: number
  /** True when the range held more requests than were read. */
  limited: boolean
}

/** One cell of a version × group-by (or × IP) matrix. */
export interface MatrixCell {
  version: string
  key: string | null
  hits: number
  median: number
}

/**
 * Exact duration distributions of one endpoint per group-by value or per client IP, and the version ×
 * value matrix, over the range's latest {@link MAX_BREAKDOWN_REQUESTS} requests. Three statements at once.
 */
export async function breakdown (db: Kysely<Database>, range: TimeRange, endpointId: number, by: 'group_by' | 'ip', limit = MAX_BREAKDOWN_REQUESTS): Promise<Breakdown> {
  const column = sql.ref(by)
  const latest = latestRequests(range, endpointId, limit)
  const [byKey, matrix, counted] = await Promise.all([
    distributionsFromRaw<string | null>(db, sql`select ${column} as k, duration_ms as d from (${latest}) as latest`, MAX_GROUPS),
    sql<{ version: string, key: string | null, hits: string, median: number }>`
      with latest as (${latest}),
      top as (select ${column} as key from latest where ${column} is not null group by 1 order by count(*) desc, 1 limit ${MAX_GROUPS})
      select v.version, r.${column} as key, count(*) as hits, percentile_cont(0.5) within group (order by r.duration_ms) as median
      from latest r join top on r.${column} = top.key join ${sql.table('version')} v on v.id = r.version_id
      group by 1, 2 order by 1, 2`.execute(db),
    sql<{ n: string }>`select count(*) as n from (${latestRequests(range, endpointId, limit + 1)}) as latest`.execute(db)
  ])
  const n = Number(counted.rows[0]?.n ?? 0)
  return {
    distributions: [...byKey].map(([key, d]) => ({ key, ...d })),
    matrix: matrix.rows.map((row) => ({ version: row.version, key: row.key, hits: Number(row.hits), median: row.median })),
    requests: Math.min(n, limit),
    limited: n > limit
  }
}
