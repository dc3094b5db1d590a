/** JSON schemas shared by the dashboard's routes (Fastify validates with them and serialises with them). */

export const TIME_RANGE_QUERY = {
  type: 'object',
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    tz: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_+\\-/]{0,63}$' }
  },
  additionalProperties: false
} as const

export const ID_PARAMS = {
  type: 'object',
  properties: { id: { type: 'integer', minimum: 1, maximum: 2147483647 } },
  required: ['id']
} as const

export const ERROR_REPLY = {
  type: 'object',
  properties: { error: { type: 'string' } }
} as const

const number = { type: ['number', 'null'] } as const
export const DISTRIBUTION = {
  type: 'object',
  properties: { count: { type: 'integer' }, min: number, q1: number, median: number, q3: number, p95: number, p99: number, max: number }
} as const

export const WINDOW_COUNTS = {
  type: 'object',
  properties: { hits: { type: 'integer' }, clientErrors: { type: 'integer' }, serverErrors: { type: 'integer' }, median: number }
} as const

export const USERNAME = { type: 'string', pattern: '^[A-Za-z0-9_.@-]{1,64}$' } as const
export const PASSWORD = { type: 'string', minLength: 8, maxLength: 1024 } as const

// Reports and custom graphs (#16): full reply schemas; the UI's types derive from them (ui/src/lib/types.ts).
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
