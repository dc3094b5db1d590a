import { graphs } from '../queries/graphs.js'
import { NOT_MONITORED, timeRange, type ApiRoutes, type RangeQuery } from './context.js'
import { TIME_RANGE_QUERY } from './schemas.js'

const dateOrNull = { type: ['string', 'null'], format: 'date-time' } as const

/** The reply of `GET /api/graphs`: the one definition of its JSON (the UI's type derives from it). */
export const GRAPHS_REPLY = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      schedule: { type: 'string' },
      lastValue: { type: ['number', 'null'] },
      lastValueAt: dateOrNull,
      lastError: { type: ['string', 'null'] },
      lastErrorAt: dateOrNull,
      errors: { type: 'integer' },
      points: {
        type: 'array',
        items: {
          type: 'object',
          properties: { time: { type: 'string', format: 'date-time' }, value: { type: 'number' } },
          required: ['time', 'value'],
          additionalProperties: false
        }
      }
    },
    required: ['name', 'schedule', 'lastValue', 'lastValueAt', 'lastError', 'lastErrorAt', 'errors', 'points'],
    additionalProperties: false
  }
} as const

/** Custom graphs (`app.monitor.addGraph`) with their values in the range. */
export const graphRoutes: ApiRoutes = (app, { db, guards }) => {
  app.get<RangeQuery>('/api/graphs', {
    config: NOT_MONITORED,
    preHandler: guards.authenticate,
    schema: { querystring: TIME_RANGE_QUERY, response: { 200: GRAPHS_REPLY } }
  }, async (request) => await graphs(db, timeRange(request.query)))
}
