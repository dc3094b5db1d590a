import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'

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

/** How long before its exemplar's time (the end of the response) a request may have started. */
const MAX_REQUEST_AGE_MS = 3_600_000

/**
 * Finds the request an exemplar names (`request_id="<instance token>:<seq>"`), or undefined.
 * `seq` has no index of its own: pass the exemplar's time as `at`, so the search reads only the
 * partition of that day (the request started at most an hour before it); without `at` every
 * partition is scanned.
 *
 * ### Examples
 * ```ts
 * const request = await findRequestByExemplarId(app.monitor.db, '6f1c…:1234', new Date(timestampSeconds * 1000))
 * ```
 */
export async function findRequestByExemplarId (db: Kysely<Database>, requestId: string, at?: Date): Promise<RequestDetail | undefined> {
  const match = /^([0-9a-f-]{36}):([1-9][0-9]{0,15})$/.exec(requestId)
  if (match === null) return undefined
  let query = db.selectFrom('request as r')
    .innerJoin('instance as i', 'i.id', 'r.instance_id')
    .innerJoin('endpoint as e', 'e.id', 'r.endpoint_id')
    .innerJoin('version as v', 'v.id', 'r.version_id')
    .select(['e.method', 'e.route', 'r.time_requested', 'r.duration_ms', 'r.status_code', 'v.version', 'r.group_by', 'r.ip'])
    .where('i.token', '=', match[1]!)
    .where('r.seq', '=', match[2]!)
  if (at !== undefined) {
    query = query.where('r.time_requested', '>=', new Date(at.getTime() - MAX_REQUEST_AGE_MS)).where('r.time_requested', '<=', at)
  }
  const row = await query.executeTakeFirst()
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
