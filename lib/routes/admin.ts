import { tableSizes } from '../queries/admin.js'
import { deleteOlderThan } from '../db/retention.js'
import { BadRequest, NOT_MONITORED, type ApiRoutes } from './context.js'
import { CONFIG_REPLY, RETENTION_REPLY, replies } from './schemas.js'

/** The settings page: configuration and table sizes for everyone; deleting old data for admins. */
export const adminRoutes: ApiRoutes = (app, ctx) => {
  const { db, guards } = ctx

  app.get('/api/config', { config: NOT_MONITORED, preHandler: guards.authenticate, schema: { response: replies(CONFIG_REPLY) } }, async () => ({
    version: ctx.version,
    database: ctx.databaseKind() ?? 'unknown',
    tablePrefix: ctx.tablePrefix,
    retentionDays: ctx.retentionDays,
    rollupRetentionDays: ctx.rollupRetentionDays,
    exportEnabled: ctx.options.exportToken !== undefined,
    tables: await tableSizes(db, ctx.tablePrefix)
  }))

  app.post<{ Body: { before: string } }>('/api/retention/delete', {
    config: NOT_MONITORED,
    onRequest: guards.csrf,
    preHandler: [guards.authenticate, guards.requireAdmin],
    schema: { body: { type: 'object', properties: { before: { type: 'string', format: 'date-time' } }, required: ['before'], additionalProperties: false }, response: replies(RETENTION_REPLY) }
  }, async (request) => {
    const before = new Date(request.body.before)
    if (before.getTime() > Date.now()) throw new BadRequest('before must not be in the future')
    return await deleteOlderThan(db, ctx.tablePrefix, before, before)
  })
}
