import { overview } from '../queries/overview.js'
import { hourlyLoad } from '../queries/load.js'
import { endpointPerformance } from '../queries/performance.js'
import { NOT_MONITORED, timeRange, type ApiRoutes, type RangeQuery } from './context.js'
import { DISTRIBUTION, TIME_RANGE_QUERY, WINDOW_COUNTS } from './schemas.js'

/** The app as a whole: every endpoint's counts (today, this week, all time), the hourly load, and latency per endpoint. */
export const overviewRoutes: ApiRoutes = (app, { db, guards }) => {
  const reader = { config: NOT_MONITORED, preHandler: guards.authenticate }

  app.get<{ Querystring: { tz?: string, prefix?: string } }>('/api/overview', {
    ...reader,
    schema: {
      querystring: { type: 'object', properties: { tz: TIME_RANGE_QUERY.properties.tz, prefix: { type: 'string', maxLength: 512 } }, additionalProperties: false },
      response: {
        200: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              id: { type: 'integer' }, method: { type: 'string' }, route: { type: 'string' }, level: { type: 'integer' },
              lastRequested: { type: ['string', 'null'], format: 'date-time' }, today: WINDOW_COUNTS, week: WINDOW_COUNTS, allTime: WINDOW_COUNTS
            }
          }
        }
      }
    }
  }, async (request) => {
    const { tz } = timeRange({ tz: request.query.tz })
    return await overview(db, tz, request.query.prefix ?? '')
  })

  app.get<RangeQuery & { Querystring: { endpoint?: number } }>('/api/load', {
    ...reader,
    schema: { querystring: { ...TIME_RANGE_QUERY, properties: { ...TIME_RANGE_QUERY.properties, endpoint: { type: 'integer', minimum: 1 } } } }
  }, async (request) => await hourlyLoad(db, timeRange(request.query), request.query.endpoint))

  app.get<RangeQuery>('/api/performance', {
    ...reader,
    schema: { querystring: TIME_RANGE_QUERY, response: { 200: { type: 'array', items: { ...DISTRIBUTION, properties: { ...DISTRIBUTION.properties, endpointId: { type: 'integer' } } } } } }
  }, async (request) => await endpointPerformance(db, timeRange(request.query)))
}
