import { findEndpoint } from '../queries/admin.js'
import { findOutlier, listOutliers } from '../queries/outliers.js'
import { NOT_MONITORED, timeRange, type ApiRoutes, type RangeQuery } from './context.js'
import { ID_PARAMS, TIME_RANGE_QUERY } from './schemas.js'

/** Level 2: an endpoint's outliers in a range (paged), and one outlier with its evidence. */
export const outlierRoutes: ApiRoutes = (app, { db, guards }) => {
  const reader = { config: NOT_MONITORED, preHandler: guards.authenticate }

  app.get<RangeQuery & { Params: { id: number }, Querystring: { page?: number, pageSize?: number } }>('/api/endpoints/:id/outliers', {
    ...reader,
    schema: {
      params: ID_PARAMS,
      querystring: { ...TIME_RANGE_QUERY, properties: { ...TIME_RANGE_QUERY.properties, page: { type: 'integer', minimum: 0, maximum: 100_000 }, pageSize: { type: 'integer', minimum: 1, maximum: 200 } } }
    }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    const pageSize = request.query.pageSize ?? 25
    const page = request.query.page ?? 0
    return { page, pageSize, ...await listOutliers(db, endpoint.id, timeRange(request.query), pageSize, page * pageSize) }
  })

  app.get<{ Params: { id: string } }>('/api/outliers/:id', {
    ...reader,
    schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } }, required: ['id'] } }
  }, async (request, reply) => {
    const outlier = await findOutlier(db, request.params.id)
    if (outlier === undefined) return await reply.code(404).send({ error: 'no such outlier' })
    return outlier
  })
}
