import { PROJECT_NAME } from '../protocol.js'
/** JSON schemas shared by the dashboard's routes (Fastify validates with them and serialises with them). */

export const TIME_RANGE_QUERY = {
  type: 'object',
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    tz: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_+\\-/]{0,63}$' },
    /** One project's endpoints only (its id, `GET /projects`); absent: every project's. */
    project: { type: 'integer', minimum: 1, maximum: 2147483647 }
  },
  additionalProperties: false
} as const

export const ID_PARAMS = {
  type: 'object',
  properties: { id: { type: 'integer', minimum: 1, maximum: 2147483647 } },
  required: ['id']
} as const

/** A bigint id (an outlier's, a profile's), kept a string: JavaScript's numbers cannot hold every one. */
export const BIGINT_ID_PARAMS = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } },
  required: ['id']
} as const

/**
 * The body of every error reply (4xx, 5xx): the guards', the error handler's and the routes' own.
 * Routes declare it for `4xx` and `5xx` (see {@link replies}).
 */
export const ERROR_REPLY = {
  type: 'object',
  properties: { error: { type: 'string' } },
  additionalProperties: false
} as const

const integer = { type: 'integer' } as const
const number = { type: 'number' } as const
const string = { type: 'string' } as const
const boolean = { type: 'boolean' } as const
const nullableNumber = { type: ['number', 'null'] } as const
const nullableString = { type: ['string', 'null'] } as const
const dateTime = { type: 'string', format: 'date-time' } as const
const dateOrNull = { type: ['string', 'null'], format: 'date-time' } as const

/** An object whose properties are all declared and all present. */
type Props = Record<string, unknown>
function object<const P extends Props> (properties: P): { type: 'object', properties: P, required: Array<keyof P & string>, additionalProperties: false } {
  return { type: 'object', properties, required: Object.keys(properties) as Array<keyof P & string>, additionalProperties: false }
}
function array<const I> (items: I): { type: 'array', items: I } {
  return { type: 'array', items }
}
/** The object, or null. */
function orNull<S extends { type: 'object' }> (schema: S): Omit<S, 'type'> & { type: readonly ['object', 'null'] } {
  return { ...schema, type: ['object', 'null'] as const }
}

/**
 * The response schemas of a route: its reply for `status` (200 unless said) and {@link ERROR_REPLY}
 * for every 4xx and 5xx it may send.
 */
export function replies<S> (ok: S): { 200: S, '4xx': typeof ERROR_REPLY, '5xx': typeof ERROR_REPLY }
export function replies<S, C extends number> (ok: S, status: C): { [K in C]: S } & { '4xx': typeof ERROR_REPLY, '5xx': typeof ERROR_REPLY }
export function replies (ok: unknown, status = 200): Record<string | number, unknown> {
  return { [status]: ok, '4xx': ERROR_REPLY, '5xx': ERROR_REPLY }
}

/** Duration statistics of a set of requests, ms (lib/queries/distribution.ts); a set is never empty, so no figure is null. */
export const DISTRIBUTION = object({ count: integer, min: number, q1: number, median: number, q3: number, p95: number, p99: number, max: number })

export const WINDOW_COUNTS = object({ hits: integer, clientErrors: integer, serverErrors: integer, median: nullableNumber })

export const USERNAME = { type: 'string', pattern: '^[A-Za-z0-9_.@-]{1,64}$' } as const
export const PASSWORD = { type: 'string', minLength: 8, maxLength: 1024 } as const

// Reports and custom graphs (#16): full reply schemas; the UI's types derive from them (ui/src/lib/types.ts).

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
        required: ['endpointId', 'method', 'route', 'baseline', 'candidate', 'medianChangeMs', 'medianChangePct', 'p95ChangeMs', 'p95ChangePct',
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
      project: { type: 'string' },
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
    required: ['name', 'project', 'schedule', 'lastValue', 'lastValueAt', 'lastError', 'lastErrorAt', 'errors', 'points'],
    additionalProperties: false
  }
} as const

// The rest of the API (#16): each reply's one definition. Properties are declared in the order the
// query builds them, so the JSON is the same bytes as before the schemas; objects read from jsonb
// columns (outlier evidence, call trees) list theirs in jsonb's order: shorter keys first, then bytewise.
// fast-json-stringify writes required properties first: an optional one (a grouped node's `library`,
// a call tree's `concurrent`) now comes last. Every property a route returns must be declared: the
// serialiser drops the others (test/schemas.test.ts compares every reply with its handler's value).

/** `GET /api/overview`: every endpoint with its counts today, this week and all time. */
export const OVERVIEW_REPLY = array(object({
  id: integer,
  project: string,
  method: string,
  route: string,
  level: integer,
  lastRequested: dateOrNull,
  today: WINDOW_COUNTS,
  week: WINDOW_COUNTS,
  allTime: WINDOW_COUNTS
}))

/** `GET /api/load` and an endpoint's `load`: requests per local day and hour. */
export const LOAD_REPLY = array(object({ day: string, hour: integer, hits: integer }))

/** `GET /api/performance`: every endpoint's duration distribution (`endpointId` last, as it has always been sent). */
export const PERFORMANCE_REPLY = array(object({ ...DISTRIBUTION.properties, endpointId: integer }))

/** `GET /api/versions`: versions with their requests per endpoint, and requests per day and version. */
export const VERSIONS_REPLY = object({
  versions: array(object({ version: string, firstSeen: dateTime, hits: integer, perEndpoint: array(object({ endpointId: integer, hits: integer })) })),
  daily: array(object({ day: string, version: string, hits: integer }))
})

/** An endpoint as stored, with its monitoring level (also the reply of `PUT /api/endpoints/:id/level`). */
/** `GET /api/projects`: every user sees the projects (the picker); admins also their tokens' hints. */
export const PROJECTS_REPLY = object({
  projects: array(object({ id: integer, name: string, createdAt: dateTime, endpoints: integer, lastRequested: dateOrNull })),
  tokens: array(object({ id: integer, projectId: integer, hint: string, createdAt: dateTime, lastUsedAt: dateOrNull, revokedAt: dateOrNull }))
})

/** A token just made: the only time it is shown. */
export const PROJECT_TOKEN_REPLY = object({ projectId: integer, project: string, tokenId: integer, token: string, hint: string })

export const PROJECT_NAME_SCHEMA = { type: 'string', pattern: PROJECT_NAME.source } as const

export const ENDPOINT = object({ id: integer, method: string, route: string, level: integer, project: string })

/** `GET /api/endpoints/:id`. */
export const ENDPOINT_REPLY = object({
  endpoint: ENDPOINT,
  load: LOAD_REPLY,
  byVersion: array(object({ version: string, ...DISTRIBUTION.properties })),
  statusCodes: array(object({ day: string, statusCode: integer, hits: integer }))
})

/** `GET /api/endpoints/:id/breakdown`: by group-by value or client IP (a key is null for requests without one). */
export const BREAKDOWN_REPLY = object({
  distributions: array(object({ key: nullableString, ...DISTRIBUTION.properties })),
  matrix: array(object({ version: string, key: nullableString, hits: integer, median: number })),
  requests: integer,
  limited: boolean
})

/** What an outlier's row and its detail both carry after the id (the detail has its endpoint between). */
const OUTLIER_FIELDS = {
  timeRequested: dateTime,
  durationMs: number,
  thresholdMs: number,
  statusCode: integer,
  version: string,
  url: string,
  hottestFunction: nullableString
} as const

const OUTLIER_SUMMARY = { id: string, ...OUTLIER_FIELDS } as const

/** `GET /api/endpoints/:id/outliers`: a page of outliers, and the process resources over every kept one. */
export const OUTLIER_PAGE_REPLY = object({
  page: integer,
  pageSize: integer,
  found: integer,
  stored: integer,
  rows: array(object(OUTLIER_SUMMARY)),
  // only the resources some outlier recorded are present; the database lists them busiest first, then by name
  resources: {
    type: 'object',
    properties: { cpuPercent: DISTRIBUTION, eventLoopDelayMs: DISTRIBUTION, heapUsedMb: DISTRIBUTION, rssMb: DISTRIBUTION },
    additionalProperties: false
  },
  requestValues: boolean
})

/** A frame of a sampled stack (jsonb order). */
const FRAME = object({ url: string, line: integer, functionName: string })

/** The request as stored with an outlier (lib/collection/evidence.ts `RequestEvidence`, jsonb order). */
const REQUEST_EVIDENCE = object({
  ip: string,
  url: string,
  body: nullableString,
  // the redacted query and route parameters as the request had them: any JSON (a long one cut to a string)
  query: {},
  method: string,
  params: {},
  headers: { type: 'object', additionalProperties: string },
  bodyTruncated: boolean
})

/**
 * The request, or what a guest sees of it when request values are for admins only (`method`, `url`
 * and `hidden: true`). One object schema with the admin-only fields optional rather than `anyOf` the
 * two forms: fast-json-stringify serialises an `anyOf` through an ajv validator that stays reachable
 * after the app is closed, about 60 KB per app (test/issues/12-leak.test.ts).
 */
const REQUEST_OR_HIDDEN_EVIDENCE = {
  type: 'object',
  properties: { ...REQUEST_EVIDENCE.properties, hidden: { type: 'boolean', const: true } },
  required: ['method', 'url'],
  additionalProperties: false
} as const

/** `GET /api/outliers/:id`: one outlier with its evidence. */
export const OUTLIER_REPLY = object({
  id: string,
  endpointId: integer,
  ...OUTLIER_FIELDS,
  request: REQUEST_OR_HIDDEN_EVIDENCE,
  phases: object({ total: number, handler: nullableNumber, afterHandler: nullableNumber, beforeHandler: nullableNumber }),
  process: object({ env: { type: 'object', additionalProperties: string }, rssBytes: number, cpuPercent: nullableNumber, heapUsedBytes: number, eventLoopDelayMaxMs: number }),
  stacks: orNull(object({
      hot: array(object({ frame: FRAME, stack: array(FRAME), samples: integer })),
      samples: integer,
      concurrent: integer,
      intervalUs: number,
      attribution: { type: 'string', enum: ['code', 'none'] },
      busyPercent: number,
      otherBusyPercent: number
    }))
})

const PROFILE_SUMMARY = { id: string, timeRequested: dateTime, durationMs: number, samples: integer } as const

/** `GET /api/endpoints/:id/profile`: the grouped profile of the latest call trees, and the latest profiled requests. */
export const GROUPED_PROFILE_REPLY = object({
  requests: integer,
  nodes: array({
    type: 'object',
    properties: {
      functionName: string,
      url: string,
      line: integer,
      parent: integer,
      depth: integer,
      // only on a row standing for a library's run of calls
      library: string,
      functions: integer,
      hits: integer,
      totalMs: number,
      meanMs: number,
      stdDevMs: number,
      selfMs: number
    },
    required: ['functionName', 'url', 'line', 'parent', 'depth', 'functions', 'hits', 'totalMs', 'meanMs', 'stdDevMs', 'selfMs'],
    additionalProperties: false
  }),
  sharedRequests: integer,
  truncated: boolean,
  latest: array(object(PROFILE_SUMMARY))
})

/** `GET /api/profiles/:id`: one request's call tree (lib/profiling/sampler.ts `CallTree`, jsonb order). */
export const PROFILE_REPLY = object({
  id: string,
  endpointId: integer,
  timeRequested: dateTime,
  durationMs: number,
  samples: integer,
  tree: {
    type: 'object',
    properties: {
      // [frame index, parent node index or -1, self µs, total µs]
      nodes: array({ type: 'array', items: [integer, integer, number, number], minItems: 4, maxItems: 4, additionalItems: false }),
      frames: array(FRAME),
      samples: integer,
      // absent in trees stored before it was recorded
      concurrent: integer,
      intervalUs: number
    },
    required: ['nodes', 'frames', 'samples', 'intervalUs'],
    additionalProperties: false
  }
})

/** `GET /api/config`: the settings page. */
export const CONFIG_REPLY = object({
  version: string,
  database: string,
  tablePrefix: string,
  retentionDays: number,
  rollupRetentionDays: number,
  exportEnabled: boolean,
  tables: array(object({ table: string, rows: integer, rowsEstimated: boolean, bytes: integer }))
})

/** `POST /api/retention/delete`: what was removed. */
export const RETENTION_REPLY = object({ droppedPartitions: integer, deletedRequests: integer, deletedRollupRows: integer })

/** A dashboard user's role. */
export const ROLE = { type: 'string', enum: ['admin', 'guest'] } as const

/** `GET /api/users`. */
export const USERS_REPLY = array(object({ username: string, role: ROLE, createdAt: dateTime }))

/** `POST /api/users` (201). */
export const USER_CREATED_REPLY = object({ username: string, role: ROLE })

/** A change that has nothing to report but that it was made. */
export const OK_REPLY = object({ ok: boolean })

/** `POST /api/login` and `GET /api/session`: who is logged in, and the CSRF token (and its header) to send on every change. */
export const SESSION_REPLY = object({ username: string, role: ROLE, csrfToken: string, csrfHeader: string })

/** `POST /api/test-results` (201 when stored, 200 when the batch was stored before). */
export const TEST_RESULTS_STORED_REPLY = object({ stored: boolean })

/** `GET /api/tests/builds`. */
export const TEST_BUILDS_REPLY = object({
  builds: array(object({
    build: string,
    project: string,
    commit: nullableString,
    branch: nullableString,
    createdAt: dateTime,
    runs: integer,
    tests: integer,
    failed: integer,
    endpointsCovered: integer,
    totalMs: number
  }))
})

/** `GET /api/tests/coverage`. */
export const TEST_COVERAGE_REPLY = object({
  build: nullableString,
  endpoints: array(object({
    method: string,
    route: string,
    endpointId: { type: ['integer', 'null'] },
    tests: integer,
    testRequests: integer,
    meanMs: nullableNumber,
    productionHits: integer
  }))
})

/** `GET /api/tests/endpoint`. */
export const ENDPOINT_TESTS_REPLY = object({
  builds: array(string),
  tests: array(object({
    file: string,
    name: string,
    builds: array(object({ build: string, requests: integer, meanMs: number, testMs: number, outcome: string }))
  }))
})

/** `GET /api/export/requests` as JSON (its CSV is text and has no schema). */
export const EXPORT_REQUESTS_REPLY = object({
  rows: array(object({
    id: string,
    project: string,
    method: string,
    route: string,
    timeRequested: dateTime,
    durationMs: number,
    statusCode: integer,
    version: string,
    groupBy: nullableString,
    ip: nullableString
  })),
  next: orNull(object({ afterTime: dateTime, afterId: string }))
})

/** `GET /api/export/rollups` as JSON (its CSV is text and has no schema). */
export const EXPORT_ROLLUPS_REPLY = object({
  rows: array(object({ hour: dateTime, project: string, method: string, route: string, version: string, statusCode: integer, hits: integer, durationSumMs: number })),
  next: orNull(object({ offset: integer }))
})
