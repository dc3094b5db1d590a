import { dailyVersionUse, versionUsage } from '../queries/versions.js'
import { NOT_MONITORED, timeRange, type ApiRoutes, type RangeQuery } from './context.js'
import { TIME_RANGE_QUERY, VERSIONS_REPLY, replies } from './schemas.js'

/** Which versions served the range, and their share per day. */
export const versionRoutes: ApiRoutes = (app, { db, guards }) => {
  app.get<RangeQuery>('/api/versions', { config: NOT_MONITORED, preHandler: guards.authenticate, schema: { querystring: TIME_RANGE_QUERY, response: replies(VERSIONS_REPLY) } }, async (request) => {
    const range = timeRange(request.query)
    // two statements at once: the pool has connections to spare (PGlite queues them)
    const [versions, daily] = await Promise.all([versionUsage(db, range, request.query.project), dailyVersionUse(db, range, request.query.project)])
    return { versions, daily }
  })
}
