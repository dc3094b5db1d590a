import { buildReport } from '../queries/reports.js'
import { DEFAULT_THRESHOLDS } from '../reports/compare.js'
import { parseSelector } from '../reports/selector.js'
import { BadRequest, NOT_MONITORED, type ApiRoutes } from './context.js'
import { ERROR_REPLY } from './schemas.js'

const nullableNumber = { type: ['number', 'null'] } as const
const dateOrNull = { type: ['string', 'null'], format: 'date-time' } as const

const SIDE_SUMMARY = {
  type: 'object',
  properties: {
    hits: { type: 'integer' },
    serverErrorShare: { type: 'number' },
    min: nullableNumber,
    q1: nullableNumber,
    median: nullableNumber,
    q3: nullableNumber,
    p95: nullableNumber,
    max: nullableNumber,
    cdf: { type: 'array', items: { type: 'number' } }
  },
  required: ['hits', 'serverErrorShare', 'min', 'q1', 'median', 'q3', 'p95', 'max', 'cdf'],
  additionalProperties: false
} as const

const REPORT_SIDE = {
  type: 'object',
  properties: { label: { type: 'string' }, from: dateOrNull, to: dateOrNull },
  required: ['label', 'from', 'to'],
  additionalProperties: false
} as const

/**
 * The reply of `GET /api/reports`: the one definition of a report's JSON. Fastify serialises with it,
 * and the UI's `Report` type is derived from it (ui/src/lib/types.ts, json-schema-to-ts).
 */
export const REPORT_REPLY = {
  type: 'object',
  properties: {
    baseline: REPORT_SIDE,
    candidate: REPORT_SIDE,
    thresholds: {
      type: 'object',
      properties: { alpha: { type: 'number' }, minChangePct: { type: 'number' }, minChangeMs: { type: 'number' }, minErrorChangePct: { type: 'number' }, minSamples: { type: 'integer' } },
      required: ['alpha', 'minChangePct', 'minChangeMs', 'minErrorChangePct', 'minSamples'],
      additionalProperties: false
    },
    summary: {
      type: 'object',
      properties: { regressions: { type: 'integer' }, improvements: { type: 'integer' }, unchanged: { type: 'integer' }, insufficient: { type: 'integer' } },
      required: ['regressions', 'improvements', 'unchanged', 'insufficient'],
      additionalProperties: false
    },
    endpoints: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          endpointId: { type: 'integer' },
          method: { type: 'string' },
          route: { type: 'string' },
          limited: { type: 'boolean' },
          baseline: SIDE_SUMMARY,
          candidate: SIDE_SUMMARY,
          medianChangeMs: nullableNumber,
          medianChangePct: nullableNumber,
          p95ChangeMs: nullableNumber,
          p95ChangePct: nullableNumber,
          mannWhitney: { type: ['object', 'null'], properties: { u: { type: 'number' }, p: { type: 'number' } }, required: ['u', 'p'], additionalProperties: false },
          ks: { type: ['object', 'null'], properties: { d: { type: 'number' }, p: { type: 'number' }, method: { type: 'string', enum: ['exact', 'asymptotic'] } }, required: ['d', 'p', 'method'], additionalProperties: false },
          shift: { type: ['object', 'null'], properties: { shift: { type: 'number' }, low: { type: 'number' }, high: { type: 'number' }, confidence: { type: 'number' } }, required: ['shift', 'low', 'high', 'confidence'], additionalProperties: false },
          cliffsDelta: nullableNumber,
          errorShareP: nullableNumber,
          verdict: { type: 'string', enum: ['regression', 'improvement', 'no change', 'insufficient data'] },
          reasons: { type: 'array', items: { type: 'string' } }
        },
        required: ['endpointId', 'method', 'route', 'limited', 'baseline', 'candidate', 'medianChangeMs', 'medianChangePct', 'p95ChangeMs', 'p95ChangePct',
          'mannWhitney', 'ks', 'shift', 'cliffsDelta', 'errorShareP', 'verdict', 'reasons'],
        additionalProperties: false
      }
    }
  },
  required: ['baseline', 'candidate', 'thresholds', 'summary', 'endpoints'],
  additionalProperties: false
} as const

const SELECTOR = { type: 'string', minLength: 1, maxLength: 200 } as const

interface ReportQuery {
  baseline: string
  candidate: string
  alpha?: number
  minChangePct?: number
  minChangeMs?: number
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
          alpha: { type: 'number', exclusiveMinimum: 0, maximum: 0.5 },
          minChangePct: { type: 'number', minimum: 0, maximum: 1000 },
          minChangeMs: { type: 'number', minimum: 0, maximum: 3_600_000 }
        },
        required: ['baseline', 'candidate'],
        additionalProperties: false
      },
      response: { 200: REPORT_REPLY, 400: ERROR_REPLY, 404: ERROR_REPLY }
    }
  }, async (request) => {
    const { baseline, candidate, ...thresholds } = request.query
    const [a, b] = [parseSelector(baseline), parseSelector(candidate)]
    if (a instanceof Error) throw new BadRequest(`baseline ${a.message}`)
    if (b instanceof Error) throw new BadRequest(`candidate ${b.message}`)
    return await buildReport(db, a, b, { ...DEFAULT_THRESHOLDS, ...thresholds })
  })
}
