import type { FastifyInstance } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { exportRequests, exportRollups } from '../queries/export.js'
import { bearerToken } from '../auth/bearer.js'
import { EXPORT_REQUESTS_REPLY, EXPORT_ROLLUPS_REPLY, replies } from './schemas.js'
import { DAY_MS } from '../time.js'

const MAX_PAGE = 10_000

const EXPORT_QUERY = {
  type: 'object',
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 1000 },
    format: { type: 'string', enum: ['json', 'csv'], default: 'json' },
    afterTime: { type: 'string', format: 'date-time' },
    afterId: { type: 'string', pattern: '^[0-9]{1,19}$' },
    offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000_000, default: 0 },
    project: { type: 'integer', minimum: 1, maximum: 2_147_483_647 }
  },
  additionalProperties: false
} as const

interface ExportQuery {
  from?: string
  to?: string
  limit: number
  format: 'json' | 'csv'
  afterTime?: string
  afterId?: string
  offset: number
  /** A project's id (as elsewhere in the API): its rows only. */
  project?: number
}

/** RFC 4180 field; a leading = + - @ is prefixed with ' so a spreadsheet does not run it as a formula. */
function csvField (value: unknown): string {
  if (value === null || value === undefined) return ''
  let text = String(value)
  if (/^[=+\-@\t\r]/.test(text) && typeof value === 'string') text = `'${text}`
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

function toCsv (rows: Array<Record<string, unknown>>, columns: string[]): string {
  return [columns.join(','), ...rows.map((row) => columns.map((column) => csvField(row[column])).join(','))].join('\r\n') + '\r\n'
}

/**
 * The export API (FMD's, done safely): raw requests and hourly rollups as JSON or CSV, paged, for a
 * bearer token only — it is for machines, so no session or cookie is involved (and no CSRF surface).
 */
export function registerExportRoutes (app: FastifyInstance, db: Kysely<Database>, token: string): void {
  const checkToken = bearerToken(token, 'export')
  const window = (query: ExportQuery): { from: Date, to: Date } => {
    const to = query.to === undefined ? new Date() : new Date(query.to)
    const from = query.from === undefined ? new Date(to.getTime() - DAY_MS) : new Date(query.from)
    return { from, to }
  }
  const config = { monitor: false }

  // the schemas are the JSON replies'; a CSV reply is sent as a string, which Fastify sends as it is (no serialiser)
  app.get<{ Querystring: ExportQuery }>('/api/export/requests', { config, onRequest: checkToken, schema: { querystring: EXPORT_QUERY, response: replies(EXPORT_REQUESTS_REPLY) } }, async (request, reply) => {
    const { from, to } = window(request.query)
    const { afterTime, afterId, limit, format, project } = request.query
    const after = afterTime !== undefined && afterId !== undefined ? { time: new Date(afterTime), id: afterId } : undefined
    const rows = await exportRequests(db, from, to, limit, after, project)
    const last = rows.at(-1)
    const next = rows.length === limit && last !== undefined ? { afterTime: last.timeRequested, afterId: last.id } : null
    if (format === 'csv') {
      if (next !== null) reply.header('x-next-page', new URLSearchParams(next).toString())
      return await reply.type('text/csv; charset=utf-8').send(toCsv(rows as unknown as Array<Record<string, unknown>>,
        // project last: the columns before it are where they were before projects
        ['id', 'method', 'route', 'timeRequested', 'durationMs', 'statusCode', 'version', 'groupBy', 'ip', 'project']))
    }
    return { rows, next }
  })

  app.get<{ Querystring: ExportQuery }>('/api/export/rollups', { config, onRequest: checkToken, schema: { querystring: EXPORT_QUERY, response: replies(EXPORT_ROLLUPS_REPLY) } }, async (request, reply) => {
    const { from, to } = window(request.query)
    const { limit, offset, format, project } = request.query
    const rows = await exportRollups(db, from, to, limit, offset, project)
    const next = rows.length === limit ? { offset: offset + limit } : null
    if (format === 'csv') {
      if (next !== null) reply.header('x-next-page', `offset=${next.offset}`)
      return await reply.type('text/csv; charset=utf-8').send(toCsv(rows as unknown as Array<Record<string, unknown>>,
        ['hour', 'method', 'route', 'version', 'statusCode', 'hits', 'durationSumMs', 'project']))
    }
    return { rows, next }
  })
}
