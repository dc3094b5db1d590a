import { overview } from '../queries/overview.js'
import { hourlyLoad } from '../queries/load.js'
import { endpointPerformance } from '../queries/performance.js'
import { NOT_MONITORED, timeRange, type ApiRoutes, type RangeQuery } from './context.js'
import { LOAD_REPLY, OVERVIEW_REPLY, PERFORMANCE_REPLY, TIME_RANGE_QUERY, replies } from './schemas.js'

/** The app as a whole: every endpoint's counts (today, this week, all time), the hourly load, and latency per endpoint. */
export const overviewRoutes: ApiRoutes = (app, { db, guards }) => {
  const reader = { config: NOT_MONITORED, preHandler: guards.authenticate }

  app.get<{ Querystring: { tz?: string, prefix?: string, project?: number } }>('/api/overview', {
    ...reader,
    schema: {
      querystring: { type: 'object', properties: { tz: TIME_RANGE_QUERY.properties.tz, prefix: { type: 'string', maxLength: 512 }, project: TIME_RANGE_QUERY.properties.project }, additionalProperties: false },
      response: replies(OVERVIEW_REPLY)
    }
  }, async (request) => {
    const { tz } = timeRange({ tz: request.query.tz })
    return await overview(db, tz, request.query.prefix ?? '', request.query.project)
  })

  app.get<RangeQuery & { Querystring: { endpoint?: number } }>('/api/load', {
    ...reader,
    schema: { querystring: { ...TIME_RANGE_QUERY, properties: { ...TIME_RANGE_QUERY.properties, endpoint: { type: 'integer', minimum: 1 } } }, response: replies(LOAD_REPLY) }
  }, async (request) => await hourlyLoad(db, timeRange(request.query), request.query.endpoint, request.query.project))

  app.get<RangeQuery>('/api/performance', {
    ...reader,
    schema: { querystring: TIME_RANGE_QUERY, response: replies(PERFORMANCE_REPLY) }
  }, async (request) => await endpointPerformance(db, timeRange(request.query), request.query.project))
}
