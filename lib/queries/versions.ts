import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { localDate, type TimeRange } from './range.js'
import { versionRollups } from './rollups.js'
import { inProject } from './projects.js'

/** A version with when it was first seen and its requests per endpoint in the range. */
export interface VersionUsage {
  version: string
  firstSeen: Date
  hits: number
  perEndpoint: Array<{ endpointId: number, hits: number }>
}

/**
 * Versions (newest first) with their requests per endpoint in the range: whole UTC days from
 * `version_day`, the hours before and after them from `version_hour`'s time index, which carries the
 * counts (see migrations 0014 and 0017).
 */
export async function versionUsage (db: Kysely<Database>, range: TimeRange, projectId?: number): Promise<VersionUsage[]> {
  const versions = await db.selectFrom('version').select(['id', 'version', 'first_seen']).orderBy('first_seen', 'desc').execute()
  const source = versionRollups(range.from, range.to, sql`version_id, endpoint_id, hits`)
  const { rows } = source === undefined
    ? { rows: [] }
    : await sql<{ version_id: number, endpoint_id: number, hits: string }>`
    select version_id, endpoint_id, sum(hits) as hits from (${source}) as r where true ${inProject(projectId)} group by 1, 2 order by 1, 2`.execute(db)
  // grouped once: filtering the rows per version was versions × rows (651 × 3,600 with a year of deploys)
  const byVersion = new Map<number, Array<{ endpointId: number, hits: number }>>()
  for (const row of rows) {
    let perEndpoint = byVersion.get(row.version_id)
    if (perEndpoint === undefined) byVersion.set(row.version_id, perEndpoint = [])
    perEndpoint.push({ endpointId: row.endpoint_id, hits: Number(row.hits) })
  }
  // versions belong to no project: one project's view lists those that served it in the range
  return versions.filter((v) => projectId === undefined || byVersion.has(v.id)).map((v) => {
    const perEndpoint = byVersion.get(v.id) ?? []
    return { version: v.version, firstSeen: v.first_seen, hits: perEndpoint.reduce((sum, e) => sum + e.hits, 0), perEndpoint }
  })
}

/**
 * Requests per local day and version in the range: FMD's daily utilisation, from `version_total_hour`
 * (one row per hour and version, so a local day in any time zone is its hours). One project's from
 * `version_hour` (per endpoint), which has no total over a project's endpoints.
 */
export async function dailyVersionUse (db: Kysely<Database>, range: TimeRange, projectId?: number): Promise<Array<{ day: string, version: string, hits: number }>> {
  const hours = projectId === undefined
    ? sql`select hour, version_id, hits from ${sql.table('version_total_hour')} where hour >= ${range.from} and hour < ${range.to}`
    : sql`select hour, version_id, hits from ${sql.table('version_hour')} where hour >= ${range.from} and hour < ${range.to} ${inProject(projectId)}`
  const { rows } = await sql<{ day: string, version: string, hits: string }>`
    select ${localDate(sql.ref('h.hour'), range.tz)} as day, v.version, sum(h.hits) as hits
    from (${hours}) h join ${sql.table('version')} v on v.id = h.version_id
    group by 1, 2 order by 1, 2`.execute(db)
  return rows.map((row) => ({ day: row.day, version: row.version, hits: Number(row.hits) }))
}
