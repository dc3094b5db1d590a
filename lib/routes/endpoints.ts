import type { MonitorLevel } from '../options.js'
import { findEndpoint } from '../queries/admin.js'
import { hourlyLoad, statusCodesPerDay } from '../queries/load.js'
import { breakdown, performanceByVersion } from '../queries/performance.js'
import { NOT_MONITORED, timeRange, type ApiRoutes, type RangeQuery } from './context.js'
import { BREAKDOWN_REPLY, ENDPOINT, ENDPOINT_REPLY, ID_PARAMS, TIME_RANGE_QUERY, replies } from './schemas.js'

/** One endpoint: its load, latency per version, status codes, breakdowns by group-by value or IP, and its level. */
export const endpointRoutes: ApiRoutes = (app, { db, guards, setLevel }) => {
  const reader = { config: NOT_MONITORED, preHandler: guards.authenticate }

  app.get<RangeQuery & { Params: { id: number } }>('/api/endpoints/:id', {
    ...reader,
    schema: { params: ID_PARAMS, querystring: TIME_RANGE_QUERY, response: replies(ENDPOINT_REPLY) }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    const range = timeRange(request.query)
    return {
      endpoint,
      load: await hourlyLoad(db, range, endpoint.id),
      byVersion: await performanceByVersion(db, range, endpoint.id),
      statusCodes: await statusCodesPerDay(db, range, endpoint.id)
    }
  })

  app.get<RangeQuery & { Params: { id: number }, Querystring: { by: 'group_by' | 'ip' } }>('/api/endpoints/:id/breakdown', {
    ...reader,
    schema: {
      params: ID_PARAMS,
      querystring: { ...TIME_RANGE_QUERY, properties: { ...TIME_RANGE_QUERY.properties, by: { type: 'string', enum: ['group_by', 'ip'] } }, required: ['by'] },
      response: replies(BREAKDOWN_REPLY)
    }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    return await breakdown(db, timeRange(request.query), endpoint.id, request.query.by)
  })

  app.put<{ Params: { id: number }, Body: { level: MonitorLevel } }>('/api/endpoints/:id/level', {
    config: NOT_MONITORED,
    onRequest: guards.csrf,
    preHandler: [guards.authenticate, guards.requireAdmin],
    schema: { params: ID_PARAMS, body: { type: 'object', properties: { level: { type: 'integer', enum: [0, 1, 2, 3] } }, required: ['level'], additionalProperties: false }, response: replies(ENDPOINT) }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    await setLevel(endpoint, request.body.level)
    return { ...endpoint, level: request.body.level }
  })
}
