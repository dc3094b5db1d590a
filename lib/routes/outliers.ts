import { dashboardUser } from '../auth/index.js'
import { findEndpoint } from '../queries/admin.js'
import type { FastifyRequest } from 'fastify'
import { findOutlier, listOutliers, type OutlierDetail } from '../queries/outliers.js'
import { NOT_MONITORED, timeRange, type ApiRoutes, type RangeQuery } from './context.js'
import { BIGINT_ID_PARAMS, ID_PARAMS, OUTLIER_PAGE_REPLY, OUTLIER_REPLY, TIME_RANGE_QUERY, replies } from './schemas.js'

/** Level 2: an endpoint's outliers in a range (paged), and one outlier with its evidence. */
export const outlierRoutes: ApiRoutes = (app, { db, guards, adminOnlyRequestValues }) => {
  const reader = { config: NOT_MONITORED, preHandler: guards.authenticate }
  /** Whether this reader may see the request values of outliers (headers, query, params, body, IP). */
  const seesRequestValues = (request: FastifyRequest): boolean => !adminOnlyRequestValues || dashboardUser(request).role === 'admin'

  app.get<RangeQuery & { Params: { id: number }, Querystring: { page?: number, pageSize?: number } }>('/api/endpoints/:id/outliers', {
    ...reader,
    schema: {
      params: ID_PARAMS,
      querystring: { ...TIME_RANGE_QUERY, properties: { ...TIME_RANGE_QUERY.properties, page: { type: 'integer', minimum: 0, maximum: 100_000 }, pageSize: { type: 'integer', minimum: 1, maximum: 200 } } },
      response: replies(OUTLIER_PAGE_REPLY)
    }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    const pageSize = request.query.pageSize ?? 25
    const page = request.query.page ?? 0
    const found = await listOutliers(db, endpoint.id, timeRange(request.query), pageSize, page * pageSize)
    if (!seesRequestValues(request)) for (const row of found.rows) row.url = withoutQuery(row.url)
    return { page, pageSize, ...found, requestValues: seesRequestValues(request) }
  })

  app.get<{ Params: { id: string } }>('/api/outliers/:id', {
    ...reader,
    schema: { params: BIGINT_ID_PARAMS, response: replies(OUTLIER_REPLY) }
  }, async (request, reply) => {
    const outlier = await findOutlier(db, request.params.id)
    if (outlier === undefined) return await reply.code(404).send({ error: 'no such outlier' })
    return seesRequestValues(request) ? outlier : withoutRequestValues(outlier)
  })
}

/** A URL without its query string: what a guest sees of an outlier's request. */
function withoutQuery (url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}

/** An outlier as a guest sees it: the evidence without the request's values, only its method and path. */
function withoutRequestValues (outlier: OutlierDetail): OutlierDetail {
  const request = outlier.request as { method?: string }
  const url = withoutQuery(outlier.url)
  return { ...outlier, url, request: { method: request.method ?? '', url, hidden: true } }
}
