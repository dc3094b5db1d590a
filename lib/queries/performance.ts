import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { latencyHistograms, exactDistribution, exactDistributionColumns, type Distribution, type ExactDistributionRow } from './distribution.js'
import type { TimeRange } from './range.js'
import { endpointRollups } from './rollups.js'
import { inProject } from './projects.js'

/** Duration distribution of every endpoint with requests in the range (rollups): FMD's API performance. */
export async function endpointPerformance (db: Kysely<Database>, range: TimeRange, projectId?: number): Promise<Array<{ endpointId: number } & Distribution>> {
  const source = endpointRollups(range.from, range.to, sql`endpoint_id as k, sketch_offset, sketch`)
  if (source === undefined) return []
  const byEndpoint = await latencyHistograms<number>(db, projectId === undefined ? source : sql`select * from (${source}) as s where true ${inProject(projectId, sql.ref('s.k'))}`)
  return [...byEndpoint].map(([endpointId, d]) => ({ endpointId, ...d })).sort((a, b) => a.endpointId - b.endpointId)
}

/** Duration distribution of one endpoint per version in the range (rollups). */
export async function performanceByVersion (db: Kysely<Database>, range: TimeRange, endpointId: number): Promise<Array<{ version: string } & Distribution>> {
  const byVersion = await latencyHistograms<string>(db, sql`select v.version as k, d.sketch_offset, d.sketch
    from ${sql.table('version_hour')} d join ${sql.table('version')} v on v.id = d.version_id
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
 * value matrix, over the range's latest {@link MAX_BREAKDOWN_REQUESTS} requests: one statement that
 * reads those requests once (newest first, by the endpoint + time index), and tells whether there were more.
 */
export async function breakdown (db: Kysely<Database>, range: TimeRange, endpointId: number, by: 'group_by' | 'ip', limit = MAX_BREAKDOWN_REQUESTS): Promise<Breakdown> {
  const inRange = sql`endpoint_id = ${endpointId} and time_requested >= ${range.from} and time_requested < ${range.to}`
  const { rows: [row] } = await sql<{ distributions: Array<{ k: string | null } & ExactDistributionRow>, matrix: Array<{ version: string, k: string | null, hits: number, median: number }>, n: string }>`
    with latest as materialized (
      select ${sql.ref(by)} as k, duration_ms as d, version_id from ${sql.table('request')} where ${inRange}
      order by time_requested desc limit ${limit}),
    -- the busiest keys first (a count per key is cheap), then exact percentiles for those only:
    -- computing them for every distinct user or IP cost most of the breakdown
    ranked as (select k, count(*) as hits from latest group by k),
    top_any as (select k from ranked order by hits desc, k limit ${MAX_GROUPS}),
    -- 'in' makes a hashed semi-join (a join on 'is not distinct from' cannot hash); requests without a value form
    -- one group, in the distributions and in the matrix alike
    chosen as (select k, d, version_id from latest where k in (select k from top_any)
      union all select k, d, version_id from latest where k is null and exists (select 1 from top_any where k is null)),
    per_key as (select k, ${exactDistributionColumns()} from chosen group by k),
    cells as (select v.version, c.k, count(*) as hits, percentile_cont(0.5) within group (order by c.d) as median
      from chosen c join ${sql.table('version')} v on v.id = c.version_id group by 1, 2)
    select (select coalesce(json_agg(per_key order by n desc, k), '[]') from per_key) as distributions,
      (select coalesce(json_agg(cells order by version, k), '[]') from cells) as matrix,
      (select count(*) from (select 1 from ${sql.table('request')} where ${inRange} order by time_requested desc limit ${limit + 1}) as counted) as n`.execute(db)
  const n = Number(row?.n ?? 0)
  return {
    distributions: (row?.distributions ?? []).map(({ k, ...d }) => ({ key: k, ...exactDistribution(d) })),
    matrix: (row?.matrix ?? []).map((cell) => ({ version: cell.version, key: cell.k, hits: Number(cell.hits), median: cell.median })),
    requests: Math.min(n, limit),
    limited: n > limit
  }
}
