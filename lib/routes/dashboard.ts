import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../storage/database.js'
import type { ResolvedDashboard } from '../options.js'
import type { MonitorLevel } from '../options.js'
import { CSRF_HEADER, provisionUsers, setupAuth } from '../auth/index.js'
import { DUMMY_HASH, hashPassword, verifyPassword } from '../auth/passwords.js'
import { findUser, listUsers, createUser, deleteUser, setPassword } from '../queries/users.js'
import { overview } from '../queries/overview.js'
import { hourlyLoad, statusCodesPerDay } from '../queries/load.js'
import { dailyVersionUse, versionUsage } from '../queries/versions.js'
import { breakdown, endpointPerformance, performanceByVersion } from '../queries/performance.js'
import { findEndpoint, storeLevel, tableSizes } from '../queries/admin.js'
import { findOutlier, listOutliers } from '../queries/outliers.js'
import { findProfile, groupedProfile, listProfiles } from '../queries/profiles.js'
import type { TimeRange } from '../queries/range.js'
import { deleteOlderThan } from '../storage/retention.js'
import { registerExportRoutes } from './export.js'
import { uiRoutes } from './ui.js'
import { DISTRIBUTION, ERROR_REPLY, ID_PARAMS, PASSWORD, TIME_RANGE_QUERY, USERNAME, WINDOW_COUNTS } from './schemas.js'

const DAY_MS = 86_400_000
const DEFAULT_RANGE_DAYS = 7
const MAX_RANGE_DAYS = 1_000

/** What the dashboard needs from the rest of the plugin. */
export interface DashboardContext {
  db: Kysely<Database>
  options: ResolvedDashboard
  tablePrefix: string
  version: string
  databaseKind: () => 'postgres' | 'pglite' | undefined
  retentionDays: number
  rollupRetentionDays: number
  ready: Promise<void>
  /** Where a PGlite-backed dashboard keeps its session key; undefined on a Postgres server. */
  sessionKeyFile: string | undefined
  /** Changes a level in this process (if it serves the endpoint) and in the database. */
  setLevel: (endpoint: { id: number, method: string, route: string }, level: MonitorLevel) => Promise<void>
}

class BadRequest extends Error {
  statusCode = 400
}

function isTimeZone (tz: string): boolean {
  try {
    // eslint-disable-next-line no-new
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

export function timeRange (query: { from?: string, to?: string, tz?: string }): TimeRange {
  const tz = query.tz ?? 'UTC'
  if (!isTimeZone(tz)) throw new BadRequest('tz must be an IANA time zone such as Europe/Paris')
  const to = query.to === undefined ? new Date() : new Date(query.to)
  const from = query.from === undefined ? new Date(to.getTime() - DEFAULT_RANGE_DAYS * DAY_MS) : new Date(query.from)
  if (!(from < to)) throw new BadRequest('from must be before to')
  if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) throw new BadRequest(`the range may span at most ${MAX_RANGE_DAYS} days`)
  return { from, to, tz }
}

type RangeQuery = { Querystring: { from?: string, to?: string, tz?: string } }

/**
 * The dashboard's JSON API under `<prefix>/api`, in its own encapsulated context. Every route needs a
 * session (guests read, admins also change); state-changing routes also need the CSRF token.
 */
export async function dashboardRoutes (app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { db } = ctx
  await uiRoutes(app, ctx.options.prefix)
  const guards = await setupAuth(app, db, ctx.options, ctx.sessionKeyFile)
  const reader = { preHandler: guards.authenticate }
  const admin = { onRequest: guards.csrf, preHandler: [guards.authenticate, guards.requireAdmin] }
  const config = { monitor: false }

  ctx.ready.then(() => provisionUsers(db, ctx.options.users, app.log), (err: unknown) => {
    app.log.warn({ err }, 'fastify-monitoring-dashboard: dashboard users not provisioned')
  }).catch((err: unknown) => app.log.error({ err }, 'fastify-monitoring-dashboard: dashboard users not provisioned'))

  // Validation errors say what was wrong; anything else is logged and answered without internals
  app.setErrorHandler(async (err: Error & { statusCode?: number, validation?: unknown }, request, reply) => {
    const status = err.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err }, 'fastify-monitoring-dashboard: dashboard API error')
      return await reply.code(500).send({ error: 'internal error' })
    }
    return await reply.code(status).send({ error: err.message })
  })

  app.post<{ Body: { username: string, password: string } }>('/api/login', {
    config: { ...config, rateLimit: { max: ctx.options.loginRateLimit.max, timeWindow: ctx.options.loginRateLimit.timeWindowMs } },
    schema: {
      body: { type: 'object', properties: { username: { type: 'string', maxLength: 256 }, password: { type: 'string', maxLength: 1024 } }, required: ['username', 'password'], additionalProperties: false },
      response: { 200: { type: 'object', properties: { username: { type: 'string' }, role: { type: 'string' }, csrfToken: { type: 'string' } } }, 401: ERROR_REPLY }
    }
  }, async (request, reply) => {
    const user = await findUser(db, request.body.username)
    const valid = await verifyPassword(request.body.password, user?.passwordHash ?? DUMMY_HASH)
    if (user === undefined || !valid) return await reply.code(401).send({ error: 'wrong username or password' })
    // a fresh session: nothing from before the login carries over (session fixation)
    request.session.regenerate()
    request.session.set('userId', user.id)
    return { username: user.username, role: user.role, csrfToken: reply.generateCsrf() }
  })

  app.post('/api/logout', { config, onRequest: guards.csrf, preHandler: guards.authenticate }, async (request) => {
    request.session.delete()
    return { ok: true }
  })

  app.get('/api/session', {
    config,
    preHandler: guards.authenticate,
    schema: { response: { 200: { type: 'object', properties: { username: { type: 'string' }, role: { type: 'string' }, csrfToken: { type: 'string' }, csrfHeader: { type: 'string' } } } } }
  }, async (request, reply) => {
    const user = request.dashboardUser!
    return { username: user.username, role: user.role, csrfToken: reply.generateCsrf(), csrfHeader: CSRF_HEADER }
  })

  app.get<{ Querystring: { tz?: string, prefix?: string } }>('/api/overview', {
    config,
    ...reader,
    schema: {
      querystring: { type: 'object', properties: { tz: TIME_RANGE_QUERY.properties.tz, prefix: { type: 'string', maxLength: 512 } }, additionalProperties: false },
      response: {
        200: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              id: { type: 'integer' }, method: { type: 'string' }, route: { type: 'string' }, level: { type: 'integer' },
              lastRequested: { type: ['string', 'null'], format: 'date-time' }, today: WINDOW_COUNTS, week: WINDOW_COUNTS, allTime: WINDOW_COUNTS
            }
          }
        }
      }
    }
  }, async (request) => {
    const { tz } = timeRange({ tz: request.query.tz })
    return await overview(db, tz, request.query.prefix ?? '')
  })

  app.get<RangeQuery & { Querystring: { endpoint?: number } }>('/api/load', {
    config,
    ...reader,
    schema: { querystring: { ...TIME_RANGE_QUERY, properties: { ...TIME_RANGE_QUERY.properties, endpoint: { type: 'integer', minimum: 1 } } } }
  }, async (request) => await hourlyLoad(db, timeRange(request.query), request.query.endpoint))

  app.get<RangeQuery>('/api/versions', { config, ...reader, schema: { querystring: TIME_RANGE_QUERY } }, async (request) => {
    const range = timeRange(request.query)
    return { versions: await versionUsage(db, range), daily: await dailyVersionUse(db, range) }
  })

  app.get<RangeQuery>('/api/performance', {
    config,
    ...reader,
    schema: { querystring: TIME_RANGE_QUERY, response: { 200: { type: 'array', items: { ...DISTRIBUTION, properties: { ...DISTRIBUTION.properties, endpointId: { type: 'integer' } } } } } }
  }, async (request) => await endpointPerformance(db, timeRange(request.query)))

  app.get<RangeQuery & { Params: { id: number } }>('/api/endpoints/:id', {
    config,
    ...reader,
    schema: { params: ID_PARAMS, querystring: TIME_RANGE_QUERY }
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
    config,
    ...reader,
    schema: {
      params: ID_PARAMS,
      querystring: { ...TIME_RANGE_QUERY, properties: { ...TIME_RANGE_QUERY.properties, by: { type: 'string', enum: ['group_by', 'ip'] } }, required: ['by'] }
    }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    return await breakdown(db, timeRange(request.query), endpoint.id, request.query.by)
  })

  app.get<RangeQuery & { Params: { id: number }, Querystring: { page?: number, pageSize?: number } }>('/api/endpoints/:id/outliers', {
    config,
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
    config,
    ...reader,
    schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } }, required: ['id'] } }
  }, async (request, reply) => {
    const outlier = await findOutlier(db, request.params.id)
    if (outlier === undefined) return await reply.code(404).send({ error: 'no such outlier' })
    return outlier
  })

  app.get<{ Params: { id: number }, Querystring: { n?: number, libraries?: 'fold' | 'expand' } }>('/api/endpoints/:id/profile', {
    config,
    ...reader,
    schema: {
      params: ID_PARAMS,
      querystring: { type: 'object', properties: { n: { type: 'integer', minimum: 1, maximum: 1000 }, libraries: { type: 'string', enum: ['fold', 'expand'] } }, additionalProperties: false }
    }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    const [grouped, latest] = await Promise.all([groupedProfile(db, endpoint.id, request.query.n ?? 100, request.query.libraries !== 'expand'), listProfiles(db, endpoint.id, 20)])
    return { ...grouped, latest }
  })

  app.get<{ Params: { id: string } }>('/api/profiles/:id', {
    config,
    ...reader,
    schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } }, required: ['id'] } }
  }, async (request, reply) => {
    const profile = await findProfile(db, request.params.id)
    if (profile === undefined) return await reply.code(404).send({ error: 'no such profile' })
    return profile
  })

  app.put<{ Params: { id: number }, Body: { level: MonitorLevel } }>('/api/endpoints/:id/level', {
    config,
    ...admin,
    schema: { params: ID_PARAMS, body: { type: 'object', properties: { level: { type: 'integer', enum: [0, 1, 2, 3] } }, required: ['level'], additionalProperties: false } }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    await ctx.setLevel(endpoint, request.body.level)
    return { ...endpoint, level: request.body.level }
  })

  app.get('/api/config', { config, ...reader }, async () => ({
    version: ctx.version,
    database: ctx.databaseKind() ?? 'unknown',
    tablePrefix: ctx.tablePrefix,
    retentionDays: ctx.retentionDays,
    rollupRetentionDays: ctx.rollupRetentionDays,
    exportEnabled: ctx.options.exportToken !== undefined,
    tables: await tableSizes(db, ctx.tablePrefix)
  }))

  app.post<{ Body: { before: string } }>('/api/retention/delete', {
    config,
    ...admin,
    schema: { body: { type: 'object', properties: { before: { type: 'string', format: 'date-time' } }, required: ['before'], additionalProperties: false } }
  }, async (request) => {
    const before = new Date(request.body.before)
    if (before.getTime() > Date.now()) throw new BadRequest('before must not be in the future')
    return await deleteOlderThan(db, ctx.tablePrefix, before, before)
  })

  app.get('/api/users', { config, ...reader, preHandler: [guards.authenticate, guards.requireAdmin] }, async () => await listUsers(db))

  app.post<{ Body: { username: string, password: string, role: 'admin' | 'guest' } }>('/api/users', {
    config,
    ...admin,
    schema: { body: { type: 'object', properties: { username: USERNAME, password: PASSWORD, role: { type: 'string', enum: ['admin', 'guest'] } }, required: ['username', 'password', 'role'], additionalProperties: false } }
  }, async (request, reply) => {
    const { username, password, role } = request.body
    if (!await createUser(db, username, await hashPassword(password), role)) return await reply.code(409).send({ error: 'a user with that name exists' })
    return await reply.code(201).send({ username, role })
  })

  app.delete<{ Params: { username: string } }>('/api/users/:username', {
    config,
    ...admin,
    schema: { params: { type: 'object', properties: { username: USERNAME }, required: ['username'] } }
  }, async (request, reply) => {
    const result = await deleteUser(db, request.params.username)
    if (result === 'missing') return await reply.code(404).send({ error: 'no such user' })
    if (result === 'last-admin') return await reply.code(409).send({ error: 'the last admin cannot be deleted' })
    return { ok: true }
  })

  // admins set anyone's password; every user may set their own
  app.put<{ Params: { username: string }, Body: { password: string } }>('/api/users/:username/password', {
    config,
    onRequest: guards.csrf,
    preHandler: [guards.authenticate, async (request: FastifyRequest<{ Params: { username: string } }>, reply: FastifyReply) => {
      if (request.dashboardUser?.role !== 'admin' && request.dashboardUser?.username !== request.params.username) {
        await reply.code(403).send({ error: 'only an admin may change another user\'s password' })
      }
    }],
    schema: { params: { type: 'object', properties: { username: USERNAME }, required: ['username'] }, body: { type: 'object', properties: { password: PASSWORD }, required: ['password'], additionalProperties: false } }
  }, async (request, reply) => {
    if (!await setPassword(db, request.params.username, await hashPassword(request.body.password))) return await reply.code(404).send({ error: 'no such user' })
    return { ok: true }
  })

  if (ctx.options.exportToken !== undefined) registerExportRoutes(app, db, ctx.options.exportToken)
}
