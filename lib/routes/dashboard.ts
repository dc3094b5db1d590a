import type { FastifyInstance } from 'fastify'
import { setupAuth } from '../auth/index.js'
import { refuseCrossOrigin, stripCorsHeaders } from '../auth/same-origin.js'
import { NOT_MONITORED, TimeZones, type DashboardContext } from './context.js'
import { ERROR_REPLY } from './schemas.js'
import { adminRoutes } from './admin.js'
import { endpointRoutes } from './endpoints.js'
import { registerExportRoutes } from './export.js'
import { outlierRoutes } from './outliers.js'
import { overviewRoutes } from './overview.js'
import { profileRoutes } from './profiles.js'
import { reportRoutes } from './reports.js'
import { graphRoutes } from './graphs.js'
import { sessionRoutes } from './session.js'
import { uiRoutes } from './ui.js'
import { testRoutes } from './tests.js'
import { ingestRoutes } from './ingest.js'
import { projectRoutes } from './projects.js'
import { ProjectTokenCache } from '../auth/project-tokens.js'
import { projectOfTokenHash } from '../queries/projects.js'
import { userRoutes } from './users.js'
import { versionRoutes } from './versions.js'

export type { DashboardContext } from './context.js'

/** Parameters and query keys of the API that are integers. */
const NUMERIC_PARAMETERS = new Set(['id', 'tokenId', 'project', 'endpoint', 'n', 'page', 'pageSize', 'limit', 'offset'])

/** Seconds a client is told to wait when the monitoring database is unavailable. */
const RETRY_AFTER_S = 5

/**
 * The dashboard: the built UI and its JSON API under `<prefix>/api`, in its own encapsulated context.
 * Every API route needs a session (guests read, admins also change); state-changing routes also need
 * the CSRF token. One module per resource registers its routes. The API answers only its own origin
 * and never carries CORS headers, whatever the host app's CORS plugin says.
 */
export async function dashboardRoutes (app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { db } = ctx
  await uiRoutes(app, ctx.options.prefix)
  const sessions = await setupAuth(app, db, ctx.options, ctx.sessionKeyFile)

  const apiPrefix = `${ctx.options.prefix}/api/`
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith(apiPrefix)) await refuseCrossOrigin(request, reply)
  })
  app.addHook('onSend', async (_request, reply, payload) => {
    stripCorsHeaders(reply)
    return payload
  })
  // What the schemas cannot say: ajv coerces "Infinity" and "1e400" to numbers its integer and
  // maximum checks let through (they skip non-finite values), and a time zone JavaScript knows may be
  // unknown to PostgreSQL (US/Pacific-New): either would reach SQL and come back as a 500.
  const timeZones = new TimeZones(db)
  app.addHook('preValidation', async (request, reply) => {
    const params = request.params as Record<string, unknown> | undefined
    const query = request.query as Record<string, unknown> | undefined
    for (const [name, value] of [...Object.entries(params ?? {}), ...Object.entries(query ?? {})]) {
      if (NUMERIC_PARAMETERS.has(name) && typeof value === 'string' && !/^[0-9]{1,15}$/.test(value)) {
        return await reply.code(400).send({ error: `${name} must be a non-negative integer` })
      }
    }
    if (typeof query?.tz === 'string' && !await timeZones.has(query.tz)) {
      return await reply.code(400).send({ error: 'tz must be an IANA time zone such as Europe/Paris' })
    }
  })
  // a preflight is answered here, not by a host's catch-all OPTIONS route (which would allow it)
  app.options('/api/*', { config: NOT_MONITORED, schema: { response: { '4xx': ERROR_REPLY } } }, async (_request, reply) => await reply.code(403).send({ error: 'cross-origin requests to the dashboard API are refused' }))

  // Validation errors say what was wrong; a database that is not ready or down is a 503 the UI
  // retries; anything else is logged and answered without internals
  app.setErrorHandler(async (err: Error & { statusCode?: number, validation?: unknown }, request, reply) => {
    const status = err.statusCode ?? 500
    if (status === 503) {
      request.log.warn({ err }, 'fastify-monitoring-dashboard: monitoring database unavailable')
      return await reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send({ error: 'the monitoring database is unavailable; retry shortly' })
    }
    if (status >= 500) {
      request.log.error({ err }, 'fastify-monitoring-dashboard: dashboard API error')
      return await reply.code(500).send({ error: 'internal error' })
    }
    return await reply.code(status).send({ error: err.message })
  })

  const projectTokens = new ProjectTokenCache(async (hash) => await projectOfTokenHash(db, hash))
  const routeContext = { ...ctx, guards: sessions.guards, sessions, projectTokens }
  for (const routes of [sessionRoutes, overviewRoutes, versionRoutes, endpointRoutes, outlierRoutes, profileRoutes, reportRoutes, graphRoutes, adminRoutes, userRoutes, testRoutes, projectRoutes, ingestRoutes]) {
    routes(app, routeContext)
  }
  if (ctx.options.exportToken !== undefined) registerExportRoutes(app, db, ctx.options.exportToken)
}
