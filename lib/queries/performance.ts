import { sql, type Kysely } from 'kysely'
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
 * Exact duration distribution of one endpoint per group-by value or per client IP in the range, from
 * the raw rows (these keys are unbounded, so they are not in the rollups), for the busiest {@link MAX_GROUPS}.
 */
export async function performanceBy (db: Kysely<Database>, range: TimeRange, endpointId: number, by: 'group_by' | 'ip'):
Promise<Array<{ key: string | null } & Distribution>> {
  const column = sql.ref(by)
  const byKey = await distributionsFromRaw<string | null>(db, sql`select ${column} as k, duration_ms as d from ${sql.table('request')}
    where endpoint_id = ${endpointId} and time_requested >= ${range.from} and time_requested < ${range.to}`, MAX_GROUPS)
  return [...byKey].map(([key, d]) => ({ key, ...d }))
}

/** One cell of a version × group-by (or × IP) matrix. */
export interface MatrixCell {
  version: string
  key: string | null
  hits: number
  median: number
}

/**
 * Requests and exact median per version × group-by value (or × IP) of one endpoint, for the busiest
 * keys; requests without a value are left out.
 */
export async function versionMatrix (db: Kysely<Database>, range: TimeRange, endpointId: number, by: 'group_by' | 'ip'): Promise<MatrixCell[]> {
  const column = sql.ref(by)
  const { rows } = await sql<{ version: string, key: string | null, hits: string, median: number }>`
    select v.version, r.${column} as key, count(*) as hits, percentile_cont(0.5) within group (order by r.duration_ms) as median
    from ${sql.table('request')} r join ${sql.table('version')} v on v.id = r.version_id
    join (
      select ${column} as key from ${sql.table('request')}
      where endpoint_id = ${endpointId} and time_requested >= ${range.from} and time_requested < ${range.to} and ${column} is not null
      group by 1 order by count(*) desc, 1 limit ${MAX_GROUPS}
    ) top on r.${column} = top.key
    where r.endpoint_id = ${endpointId} and r.time_requested >= ${range.from} and r.time_requested < ${range.to}
    group by 1, 2 order by 1, 2`.execute(db)
  return rows.map((row) => ({ version: row.version, key: row.key, hits: Number(row.hits), median: row.median }))
}
