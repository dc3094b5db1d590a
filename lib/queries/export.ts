import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'

/** A raw request as the export API hands it out. */
export interface ExportedRequest {
  id: string
  /** The endpoint's project: two services of a collector may serve the same route. */
  project: string
  method: string
  route: string
  timeRequested: string
  durationMs: number
  statusCode: number
  version: string
  groupBy: string | null
  ip: string | null
}

/**
 * Raw requests in [from, to), oldest first, `limit` at a time. Paging is by keyset: pass the last row's
 * `timeRequested` and `id` as `after` to get the next page (stable while rows keep arriving, unlike offsets).
 */
export async function exportRequests (db: Kysely<Database>, from: Date, to: Date, limit: number, after?: { time: Date, id: string }, projectId?: number): Promise<ExportedRequest[]> {
  let query = db.selectFrom('request as r')
    .innerJoin('endpoint as e', 'e.id', 'r.endpoint_id')
    .innerJoin('project as p', 'p.id', 'e.project_id')
    .innerJoin('version as v', 'v.id', 'r.version_id')
    .select(['r.id', 'p.name as project', 'e.method', 'e.route', 'r.time_requested', 'r.duration_ms', 'r.status_code', 'v.version', 'r.group_by', 'r.ip'])
    .where('r.time_requested', '>=', from).where('r.time_requested', '<', to)
  if (projectId !== undefined) query = query.where('e.project_id', '=', projectId)
  if (after !== undefined) {
    query = query.where((eb) => eb.or([
      eb('r.time_requested', '>', after.time),
      eb.and([eb('r.time_requested', '=', after.time), eb('r.id', '>', after.id)])
    ]))
  }
  const rows = await query.orderBy('r.time_requested').orderBy('r.id').limit(limit).execute()
  return rows.map((row) => ({
    id: String(row.id),
    project: row.project,
    method: row.method,
    route: row.route,
    timeRequested: new Date(row.time_requested).toISOString(),
    durationMs: row.duration_ms,
    statusCode: row.status_code,
    version: row.version,
    groupBy: row.group_by,
    ip: row.ip
  }))
}

/** One hourly rollup row: requests of one endpoint, version and status code in one UTC hour. */
export interface ExportedRollup {
  hour: string
  project: string
  method: string
  route: string
  version: string
  statusCode: number
  hits: number
  durationSumMs: number
}

/** Hourly rollups in [from, to), paged by offset over a stable order (rollup rows only grow in place). */
export async function exportRollups (db: Kysely<Database>, from: Date, to: Date, limit: number, offset: number, projectId?: number): Promise<ExportedRollup[]> {
  const { rows } = await sql<{ hour: Date, project: string, method: string, route: string, version: string, status_code: number, hits: string, duration_sum: number }>`
    select h.hour, p.name as project, e.method, e.route, v.version, h.status_code, h.hits, h.duration_sum
    from ${sql.table('request_hour')} h join ${sql.table('endpoint')} e on e.id = h.endpoint_id
    join ${sql.table('project')} p on p.id = e.project_id
    join ${sql.table('version')} v on v.id = h.version_id
    where h.hour >= ${from} and h.hour < ${to} ${projectId === undefined ? sql`` : sql`and e.project_id = ${projectId}`}
    order by h.hour, h.endpoint_id, h.version_id, h.status_code limit ${limit} offset ${offset}`.execute(db)
  return rows.map((row) => ({
    hour: new Date(row.hour).toISOString(),
    project: row.project,
    method: row.method,
    route: row.route,
    version: row.version,
    statusCode: row.status_code,
    hits: Number(row.hits),
    durationSumMs: row.duration_sum
  }))
}
