import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { localDate, localHour, type TimeRange } from './range.js'
import { inProject } from './projects.js'

/** One cell of the hourly-load heatmap: requests in one local hour of one local day. */
export interface LoadCell {
  day: string
  hour: number
  hits: number
}

/**
 * Requests per local day × hour of day in the range, for all endpoints, one, or a project's (from the rollups). The
 * hours are summed first, from `endpoint_hour`'s time index, which carries the counts (an index-only
 * scan: the rows themselves are wide with their sketches), and only their sums are put in the zone.
 */
export async function hourlyLoad (db: Kysely<Database>, range: TimeRange, endpointId?: number, projectId?: number): Promise<LoadCell[]> {
  const { rows } = await sql<{ day: string, hour: number, hits: string }>`
    select ${localDate(sql.ref('hour'), range.tz)} as day, ${localHour(sql.ref('hour'), range.tz)} as hour, sum(hits) as hits
    from (select hour, sum(hits) as hits from ${sql.table('endpoint_hour')}
      where hour >= ${range.from} and hour < ${range.to} ${endpointId === undefined ? sql`` : sql`and endpoint_id = ${endpointId}`} ${inProject(projectId)}
      group by hour) as hours
    group by 1, 2 order by 1, 2`.execute(db)
  return rows.map((row) => ({ day: row.day, hour: row.hour, hits: Number(row.hits) }))
}

/** Requests per local day and status code in the range, for one endpoint. */
export async function statusCodesPerDay (db: Kysely<Database>, range: TimeRange, endpointId: number): Promise<Array<{ day: string, statusCode: number, hits: number }>> {
  const { rows } = await sql<{ day: string, status_code: number, hits: string }>`
    select ${localDate(sql.ref('hour'), range.tz)} as day, status_code, sum(hits) as hits
    from ${sql.table('request_hour')}
    where endpoint_id = ${endpointId} and hour >= ${range.from} and hour < ${range.to}
    group by 1, 2 order by 1, 2`.execute(db)
  return rows.map((row) => ({ day: row.day, statusCode: row.status_code, hits: Number(row.hits) }))
}
