import type { FastifyInstance } from 'fastify'
import { provisionUsers, setupAuth } from '../auth/index.js'
import type { DashboardContext } from './context.js'
import { adminRoutes } from './admin.js'
import { endpointRoutes } from './endpoints.js'
import { registerExportRoutes } from './export.js'
import { outlierRoutes } from './outliers.js'
import { overviewRoutes } from './overview.js'
import { profileRoutes } from './profiles.js'
import { sessionRoutes } from './session.js'
import { uiRoutes } from './ui.js'
import { userRoutes } from './users.js'
import { versionRoutes } from './versions.js'

export type { DashboardContext } from './context.js'

/**
 * The dashboard: the built UI and its JSON API under `<prefix>/api`, in its own encapsulated context.
 * Every API route needs a session (guests read, admins also change); state-changing routes also need
 * the CSRF token. One module per resource registers its routes.
 */
export async function dashboardRoutes (app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { db } = ctx
  await uiRoutes(app, ctx.options.prefix)
  const guards = await setupAuth(app, db, ctx.options, ctx.sessionKeyFile)

  ctx.ready.then(() => provisionUsers(db, ctx.options.users, app.log), (err: unknown) => {
    app.log.warn({ err }, 'fastify-monitoring-dashboard: dashboard users not provisioned')
  }).catch((err: unknown) => app.log.error({ err }, 'fastify-monitoring-dashboard: dashboard users not provisioned'))

  // Validation errors say what was wrong; anything else is logged and answered without internals
  app.setErrorHandler(async (err: Error & { statusCode?: number, validation?: unknown }, request, reply) => {
    const status = err.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err }, 'fastify-monitoring-dashboard: dashboard API error')
      return await reply.code(500).send({ error: 'internal error' })
    }
    return await reply.code(status).send({ error: err.message })
  })

  const routeContext = { ...ctx, guards }
  for (const routes of [sessionRoutes, overviewRoutes, versionRoutes, endpointRoutes, outlierRoutes, profileRoutes, adminRoutes, userRoutes]) {
    routes(app, routeContext)
  }
  if (ctx.options.exportToken !== undefined) registerExportRoutes(app, db, ctx.options.exportToken)
}
