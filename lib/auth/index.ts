import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import secureSession from '@fastify/secure-session'
import csrfProtection from '@fastify/csrf-protection'
import rateLimit from '@fastify/rate-limit'
import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { ResolvedDashboard } from '../options.js'
import { countUsers, createUser, findUserById, upsertUser, type Role } from '../queries/users.js'
import { hashPassword, randomPassword } from './passwords.js'
import { sessionKey } from './session-key.js'

/** The logged-in user of a dashboard request. */
export interface DashboardUserInfo {
  id: number
  username: string
  role: Role
}

export const SESSION_COOKIE = 'fmd_session'
export const CSRF_HEADER = 'x-csrf-token'

declare module 'fastify' {
  interface FastifyRequest {
    dashboardUser?: DashboardUserInfo
  }
}
declare module '@fastify/secure-session' {
  interface SessionData {
    userId: number
  }
}

/** What routes use to guard themselves. */
export interface Guards {
  /** Any logged-in user; 401 otherwise. */
  authenticate: preHandlerAsyncHookHandler
  /** An admin; 403 for a guest. Runs after `authenticate`. */
  requireAdmin: preHandlerAsyncHookHandler
  /** The CSRF check for state-changing routes (the token from GET /api/session, sent as `x-csrf-token`). */
  csrf: (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void
}

/**
 * Sessions, CSRF and the login rate limit, in the dashboard's encapsulated context (nothing leaks into
 * the host app). The session is a signed and encrypted cookie (@fastify/secure-session), HttpOnly,
 * SameSite=Strict, scoped to the dashboard prefix; it holds only the user id, and every request
 * re-reads the user, so deleting a user or changing a role takes effect at once.
 */
export async function setupAuth (app: FastifyInstance, db: Kysely<Database>, options: ResolvedDashboard, keyFile: string | undefined): Promise<Guards> {
  const { key, source } = sessionKey(options.sessionSecret, keyFile)
  if (source === 'process') {
    app.log.warn('fastify-monitoring-dashboard: no dashboard.sessionSecret (or FASTIFY_MONITOR_SESSION_SECRET): dashboard sessions end when this process restarts and are not shared with other processes')
  }
  await app.register(secureSession, {
    key,
    cookieName: SESSION_COOKIE,
    expiry: options.sessionTtlS,
    cookie: { path: options.prefix, httpOnly: true, sameSite: 'strict', secure: 'auto', maxAge: options.sessionTtlS }
  })
  await app.register(csrfProtection, {
    sessionPlugin: '@fastify/secure-session',
    getToken: (request) => request.headers[CSRF_HEADER] as string | undefined
  })
  await app.register(rateLimit, { global: false })

  return {
    async authenticate (request, reply) {
      const userId = request.session.get('userId')
      const user = userId === undefined ? undefined : await findUserById(db, userId)
      if (user === undefined) {
        await reply.code(401).send({ error: 'login required' })
        return
      }
      request.dashboardUser = { id: user.id, username: user.username, role: user.role }
    },
    async requireAdmin (request, reply) {
      if (request.dashboardUser?.role !== 'admin') await reply.code(403).send({ error: 'admin role required' })
    },
    csrf: (request, reply, done) => { app.csrfProtection(request, reply, done) }
  }
}

/**
 * Creates the configured users (their passwords reset to the configured ones) and, when the
 * database has no user at all, an `admin` with a random password that is logged once.
 */
export async function provisionUsers (db: Kysely<Database>, users: ResolvedDashboard['users'], log: FastifyInstance['log']): Promise<void> {
  for (const user of users) await upsertUser(db, user.username, await hashPassword(user.password), user.role)
  if (users.length > 0 || await countUsers(db) > 0) return
  const password = randomPassword()
  // another process sharing the database may win the race; only the winner's password is real
  if (await createUser(db, 'admin', await hashPassword(password), 'admin')) {
    log.warn(`fastify-monitoring-dashboard: created dashboard user "admin" with password ${password} (shown once; change it in the dashboard's settings)`)
  }
}
