import type { Kysely } from 'kysely'
import type { Database } from '../storage/database.js'

/** A stored request with its endpoint, as an exemplar or a link resolves to. */
export interface RequestDetail {
  method: string
  route: string
  timeRequested: Date
  durationMs: number
  statusCode: number
  version: string
  groupBy: string | null
  ip: string | null
}

/**
 * Finds the request an exemplar names (`request_id="<instance token>:<seq>"`), or undefined.
 *
 * ### Examples
 * ```ts
 * const request = await findRequestByExemplarId(app.monitor.db, '6f1c…:1234')
 * ```
 */
export async function findRequestByExemplarId (db: Kysely<Database>, requestId: string): Promise<RequestDetail | undefined> {
  const match = /^([0-9a-f-]{36}):([1-9][0-9]{0,15})$/.exec(requestId)
  if (match === null) return undefined
  const row = await db.selectFrom('request as r')
    .innerJoin('instance as i', 'i.id', 'r.instance_id')
    .innerJoin('endpoint as e', 'e.id', 'r.endpoint_id')
    .innerJoin('version as v', 'v.id', 'r.version_id')
    .select(['e.method', 'e.route', 'r.time_requested', 'r.duration_ms', 'r.status_code', 'v.version', 'r.group_by', 'r.ip'])
    .where('i.token', '=', match[1]!)
    .where('r.seq', '=', match[2]!)
    .executeTakeFirst()
  if (row === undefined) return undefined
  return {
    method: row.method,
    route: row.route,
    timeRequested: row.time_requested,
    durationMs: row.duration_ms,
    statusCode: row.status_code,
    version: row.version,
    groupBy: row.group_by,
    ip: row.ip
  }
}
