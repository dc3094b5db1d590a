import { bearerToken } from '../auth/bearer.js'
import { endpointTests, projectsOfBuild, storeTestResults, testBuilds, testCoverage } from '../queries/tests.js'
import { TEST_RESULT_LIMITS, type TestResultsSubmission } from '../test-monitor/results.js'
import { BadRequest, NOT_MONITORED, type ApiRoutes } from './context.js'
import { ENDPOINT_TESTS_REPLY, PROJECT_NAME_SCHEMA, TEST_BUILDS_REPLY, TEST_COVERAGE_REPLY, TEST_RESULTS_STORED_REPLY, TIME_RANGE_QUERY, replies } from './schemas.js'

const MAX_BUILDS = 200
const DEFAULT_BUILDS = 30
/** A submission of the largest allowed size is about 15 MB of JSON. */
const SUBMISSION_BODY_LIMIT = 32 * 1024 * 1024

const text = { type: 'string', maxLength: TEST_RESULT_LIMITS.text } as const
const nullableText = { type: ['string', 'null'], maxLength: TEST_RESULT_LIMITS.text } as const
const finite = { type: 'number', minimum: 0, maximum: 1e12 } as const
/** One project's builds only (its id, `GET /projects`); absent: every project's. */
const project = TIME_RANGE_QUERY.properties.project

const SUBMISSION = {
  type: 'object',
  required: ['build', 'commit', 'branch', 'batch', 'repeat', 'tests'],
  additionalProperties: false,
  properties: {
    build: { type: 'string', minLength: 1, maxLength: 200 },
    project: PROJECT_NAME_SCHEMA,
    commit: nullableText,
    branch: nullableText,
    batch: { type: 'string', minLength: 1, maxLength: 200 },
    repeat: { type: 'integer', minimum: 1, maximum: 1000 },
    tests: {
      type: 'array',
      maxItems: TEST_RESULT_LIMITS.testsPerBatch,
      items: {
        type: 'object',
        required: ['file', 'name', 'durationMs', 'outcome', 'hits'],
        additionalProperties: false,
        properties: {
          file: text,
          name: text,
          durationMs: finite,
          outcome: { enum: ['pass', 'fail', 'skip', 'todo'] },
          hits: {
            type: 'array',
            maxItems: TEST_RESULT_LIMITS.hitsPerTest,
            items: {
              type: 'object',
              required: ['method', 'route', 'statusCode', 'requests', 'totalMs', 'maxMs'],
              additionalProperties: false,
              properties: {
                method: { type: 'string', minLength: 1, maxLength: 32 },
                route: text,
                statusCode: { type: 'integer', minimum: 100, maximum: 999 },
                requests: { type: 'integer', minimum: 1, maximum: 2147483647 },
                totalMs: finite,
                maxMs: finite
              }
            }
          }
        }
      }
    }
  }
} as const

/**
 * The test monitor: CI builds submit what their tests reached (bearer token, no session), and the
 * dashboard's Tests view reads builds, coverage and per-endpoint test timings.
 */
export const testRoutes: ApiRoutes = (app, { db, guards, options }) => {
  if (options.testResultsToken !== undefined) {
    app.post<{ Body: TestResultsSubmission }>('/api/test-results', {
      config: NOT_MONITORED,
      bodyLimit: SUBMISSION_BODY_LIMIT,
      onRequest: bearerToken(options.testResultsToken, 'test results'),
      schema: { body: SUBMISSION, response: { ...replies(TEST_RESULTS_STORED_REPLY), 201: TEST_RESULTS_STORED_REPLY } }
    }, async (request, reply) => {
      const stored = await storeTestResults(db, request.body)
      return await reply.code(stored ? 201 : 200).send({ stored })
    })
  }

  app.get<{ Querystring: { limit?: number, project?: number } }>('/api/tests/builds', {
    config: NOT_MONITORED,
    preHandler: guards.authenticate,
    schema: { querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_BUILDS }, project }, additionalProperties: false }, response: replies(TEST_BUILDS_REPLY) }
  }, async (request) => ({ builds: await testBuilds(db, request.query.limit ?? DEFAULT_BUILDS, request.query.project) }))

  app.get<{ Querystring: { build?: string, project?: number } }>('/api/tests/coverage', {
    config: NOT_MONITORED,
    preHandler: guards.authenticate,
    schema: { querystring: { type: 'object', properties: { build: { type: 'string', minLength: 1, maxLength: 200 }, project }, additionalProperties: false }, response: replies(TEST_COVERAGE_REPLY) }
  }, async (request) => {
    const { build, project: projectId } = request.query
    if (build !== undefined && projectId === undefined) {
      // one CI run may test several services under one build id: which one is meant must be said
      const owners = await projectsOfBuild(db, build)
      if (owners.length > 1) throw new BadRequest(`build ${build} exists in projects ${owners.join(', ')}: give project=<id>`)
    }
    return await testCoverage(db, build, projectId)
  })

  app.get<{ Querystring: { method: string, route: string, limit?: number, project?: number } }>('/api/tests/endpoint', {
    config: NOT_MONITORED,
    preHandler: guards.authenticate,
    schema: {
      querystring: {
        type: 'object',
        required: ['method', 'route'],
        properties: { method: { type: 'string', minLength: 1, maxLength: 32 }, route: text, limit: { type: 'integer', minimum: 1, maximum: MAX_BUILDS }, project },
        additionalProperties: false
      },
      response: replies(ENDPOINT_TESTS_REPLY)
    }
  }, async (request) => await endpointTests(db, request.query.method, request.query.route, request.query.limit ?? 10, request.query.project))
}
