import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { localDate, type TimeRange } from './range.js'

/** A version with when it was first seen and its requests per endpoint in the range. */
export interface VersionUsage {
  version: string
  firstSeen: Date
  hits: number
  perEndpoint: Array<{ endpointId: number, hits: number }>
}

/**
 * Versions (newest first) with their requests per endpoint in the range, from `version_hour`'s time
 * index, which carries the counts (see migration 0014).
 */
export async function versionUsage (db: Kysely<Database>, range: TimeRange): Promise<VersionUsage[]> {
  const versions = await db.selectFrom('version').select(['id', 'version', 'first_seen']).orderBy('first_seen', 'desc').execute()
  const { rows } = await sql<{ version_id: number, endpoint_id: number, hits: string }>`
    select version_id, endpoint_id, sum(hits) as hits from ${sql.table('version_hour')}
    where hour >= ${range.from} and hour < ${range.to} group by 1, 2 order by 1, 2`.execute(db)
  // grouped once: filtering the rows per version was versions × rows (651 × 3,600 with a year of deploys)
  const byVersion = new Map<number, Array<{ endpointId: number, hits: number }>>()
  for (const row of rows) {
    let perEndpoint = byVersion.get(row.version_id)
    if (perEndpoint === undefined) byVersion.set(row.version_id, perEndpoint = [])
    perEndpoint.push({ endpointId: row.endpoint_id, hits: Number(row.hits) })
  }
  return versions.map((v) => {
    const perEndpoint = byVersion.get(v.id) ?? []
    return { version: v.version, firstSeen: v.first_seen, hits: perEndpoint.reduce((sum, e) => sum + e.hits, 0), perEndpoint }
  })
}

/** Requests per local day and version in the range: FMD's daily utilisation (hours summed first, then put in the zone). */
export async function dailyVersionUse (db: Kysely<Database>, range: TimeRange): Promise<Array<{ day: string, version: string, hits: number }>> {
  const { rows } = await sql<{ day: string, version: string, hits: string }>`
    select ${localDate(sql.ref('h.hour'), range.tz)} as day, v.version, sum(h.hits) as hits
    from (select hour, version_id, sum(hits) as hits from ${sql.table('version_hour')}
      where hour >= ${range.from} and hour < ${range.to} group by 1, 2) as h
    join ${sql.table('version')} v on v.id = h.version_id
    group by 1, 2 order by 1, 2`.execute(db)
  return rows.map((row) => ({ day: row.day, version: row.version, hits: Number(row.hits) }))
}
