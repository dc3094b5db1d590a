import { graphs } from '../queries/graphs.js'
import { NOT_MONITORED, timeRange, type ApiRoutes, type RangeQuery } from './context.js'
import { GRAPHS_REPLY, TIME_RANGE_QUERY, replies } from './schemas.js'


/** Custom graphs (`app.monitor.addGraph`) with their values in the range; `project`: that project's graphs only. */
export const graphRoutes: ApiRoutes = (app, { db, guards }) => {
  app.get<RangeQuery>('/api/graphs', {
    config: NOT_MONITORED,
    preHandler: guards.authenticate,
    schema: { querystring: TIME_RANGE_QUERY, response: replies(GRAPHS_REPLY) }
  }, async (request) => await graphs(db, timeRange(request.query), request.query.project))
}
