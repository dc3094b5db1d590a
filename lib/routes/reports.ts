import { buildReport } from '../queries/reports.js'
import { DEFAULT_THRESHOLDS, THRESHOLD_BOUNDS } from '../reports/compare.js'
import { parseSelector } from '../reports/selector.js'
import { BadRequest, NOT_MONITORED, type ApiRoutes } from './context.js'
import { REPORT_REPLY, TIME_RANGE_QUERY, replies } from './schemas.js'


const SELECTOR = { type: 'string', minLength: 1, maxLength: 200 } as const

interface ReportQuery {
  baseline: string
  candidate: string
  alpha?: number
  minChangePct?: number
  minChangeMs?: number
  project?: number
}

/** Did performance change between two versions, ranges, load-test runs or named windows? */
export const reportRoutes: ApiRoutes = (app, { db, guards }) => {
  app.get<{ Querystring: ReportQuery }>('/api/reports', {
    config: NOT_MONITORED,
    preHandler: guards.authenticate,
    schema: {
      querystring: {
        type: 'object',
        properties: {
          baseline: SELECTOR,
          candidate: SELECTOR,
          alpha: { type: 'number', ...THRESHOLD_BOUNDS.alpha },
          minChangePct: { type: 'number', ...THRESHOLD_BOUNDS.minChangePct },
          minChangeMs: { type: 'number', ...THRESHOLD_BOUNDS.minChangeMs },
          project: TIME_RANGE_QUERY.properties.project
        },
        required: ['baseline', 'candidate'],
        additionalProperties: false
      },
      response: replies(REPORT_REPLY)
    }
  }, async (request) => {
    const { baseline, candidate, project, ...thresholds } = request.query
    const [a, b] = [parseSelector(baseline), parseSelector(candidate)]
    if (a instanceof Error) throw new BadRequest(`baseline ${a.message}`)
    if (b instanceof Error) throw new BadRequest(`candidate ${b.message}`)
    return await buildReport(db, a, b, { ...DEFAULT_THRESHOLDS, ...thresholds }, project)
  })
}
