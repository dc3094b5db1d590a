import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import secureSession, { type Session } from '@fastify/secure-session'
import Tokens from '@fastify/csrf'
import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { DecoratorConflictError } from '../errors.js'
import type { ResolvedDashboard } from '../options.js'
import { countUsers, createUser, findUser, findUserById, upsertUser, type Role, type StoredUser } from '../queries/users.js'
import { LoginThrottle, WorkSlots } from './login-throttle.js'
import { hashPassword, randomPassword, verifyPassword } from './passwords.js'
import { sessionKey } from './session-key.js'

/** The logged-in user of a dashboard request. */
export interface DashboardUserInfo {
  id: number
  username: string
  role: Role
}

export const SESSION_COOKIE = 'fmd_session'
/**
 * The request decorator of the dashboard's session: its own name, so a host app's session
 * (@fastify/session or its own @fastify/secure-session, both `request.session`) is never read or
 * written by the dashboard, and the dashboard never trusts it.
 */
export const SESSION_DECORATOR = 'fmdSession'
export const CSRF_HEADER = 'x-csrf-token'

/** What the dashboard's session cookie holds. */
interface DashboardSessionData {
  userId: number
  /** The user's session generation at login: bumped by logout, a password or role change. */
  generation: number
  /** Login time (ms): the session ends `sessionTtlS` after it, whatever else changes the cookie. */
  loginAtMs: number
  /** The CSRF secret (@fastify/csrf): tokens made from it are only valid with this session. */
  csrfSecret: string
}
type DashboardSession = Session<DashboardSessionData>

const kUser = Symbol('fastify-monitoring-dashboard user')

/** The dashboard's session of a request (never the host's `request.session`). */
export function dashboardSession (request: FastifyRequest): DashboardSession {
  return (request as unknown as Record<string, DashboardSession>)[SESSION_DECORATOR]!
}

/** The user `authenticate` found; only on routes guarded by it. */
export function dashboardUser (request: FastifyRequest): DashboardUserInfo {
  const user = (request as unknown as Record<symbol, DashboardUserInfo | null>)[kUser]
  if (user === null || user === undefined) throw new Error('dashboardUser() on a route without authenticate')
  return user
}

/** What routes use to guard themselves. */
export interface Guards {
  /** Any logged-in user with a current session; 401 otherwise. */
  authenticate: preHandlerAsyncHookHandler
  /** An admin; 403 for a guest. Runs after `authenticate`. */
  requireAdmin: preHandlerAsyncHookHandler
  /** The CSRF check for state-changing routes (the token from GET /api/session, sent as `x-csrf-token`). */
  csrf: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
}

/** What the session and login routes need besides the guards. */
export interface Sessions {
  guards: Guards
  /** Starts a fresh session for the user; returns its CSRF token. */
  start: (request: FastifyRequest, user: StoredUser) => string
  /** A CSRF token for the request's session. */
  csrfToken: (request: FastifyRequest) => string
  /** Clears the request's session cookie. */
  end: (request: FastifyRequest) => void
  /** Carries the session over a generation bump (the user changed their own password). */
  renew: (request: FastifyRequest, generation: number) => void
  /** Progressive delay per account and per client for password checks. */
  throttle: LoginThrottle
  /** Caps concurrent scrypt work; `run` resolves undefined when it is saturated. */
  hashing: WorkSlots
}

/** Concurrent password hashes, and how many more may wait for one. */
const HASH_SLOTS = 2
const HASH_QUEUE = 16

/**
 * Sessions, CSRF and the login throttle, in the dashboard's encapsulated context. The session is a
 * signed and encrypted cookie (@fastify/secure-session under its own decorator and cookie name),
 * HttpOnly, SameSite=Strict, scoped to the dashboard prefix; it holds the user id, the user's session
 * generation and the login time, and every request re-reads the user, so logout, deleting a user or
 * changing a password or role ends its sessions at once. CSRF tokens come from @fastify/csrf with
 * the secret in this session: @fastify/csrf-protection can only find a session at `request.session`.
 */
export async function setupAuth (app: FastifyInstance, db: Kysely<Database>, options: ResolvedDashboard, keyFile: string | undefined): Promise<Sessions> {
  if (app.hasRequestDecorator(SESSION_DECORATOR)) throw new DecoratorConflictError('request', SESSION_DECORATOR)
  const { key, source } = sessionKey(options.sessionSecret, keyFile)
  if (source === 'process') {
    app.log.warn('fastify-monitoring-dashboard: no dashboard.sessionSecret (or FASTIFY_MONITOR_SESSION_SECRET): dashboard sessions end when this process restarts and are not shared with other processes')
  }
  await app.register(secureSession, {
    key,
    sessionName: SESSION_DECORATOR,
    cookieName: SESSION_COOKIE,
    expiry: options.sessionTtlS,
    cookie: { path: options.prefix, httpOnly: true, sameSite: 'strict', secure: 'auto', maxAge: options.sessionTtlS }
  })
  app.decorateRequest(kUser as unknown as string, null)
  const tokens = Tokens()
  const ttlMs = options.sessionTtlS * 1000

  const guards: Guards = {
    async authenticate (request, reply) {
      const session = dashboardSession(request)
      const userId = session.get('userId')
      const loginAtMs = session.get('loginAtMs')
      const fresh = loginAtMs !== undefined && Date.now() - loginAtMs < ttlMs
      const user = userId === undefined || !fresh ? undefined : await findUserById(db, userId)
      if (user === undefined || user.sessionGeneration !== session.get('generation')) {
        // a revoked or expired cookie is cleared, so the browser stops sending it
        if (userId !== undefined) session.delete()
        await reply.code(401).send({ error: 'login required' })
        return
      }
      (request as unknown as Record<symbol, DashboardUserInfo>)[kUser] = { id: user.id, username: user.username, role: user.role }
    },
    async requireAdmin (request, reply) {
      if (dashboardUser(request).role !== 'admin') await reply.code(403).send({ error: 'admin role required' })
    },
    async csrf (request, reply) {
      const secret = dashboardSession(request).get('csrfSecret')
      const token = request.headers[CSRF_HEADER]
      if (secret === undefined || typeof token !== 'string' || !tokens.verify(secret, token)) {
        await reply.code(403).send({ error: 'missing or invalid CSRF token' })
      }
    }
  }

  return {
    guards,
    start (request, user) {
      const session = dashboardSession(request)
      // a fresh session: nothing from before the login carries over (session fixation)
      session.regenerate()
      const csrfSecret = tokens.secretSync()
      session.set('userId', user.id)
      session.set('generation', user.sessionGeneration)
      session.set('loginAtMs', Date.now())
      session.set('csrfSecret', csrfSecret)
      return tokens.create(csrfSecret)
    },
    csrfToken (request) {
      return tokens.create(dashboardSession(request).get('csrfSecret')!)
    },
    end (request) {
      dashboardSession(request).delete()
    },
    renew (request, generation) {
      dashboardSession(request).set('generation', generation)
    },
    throttle: new LoginThrottle({ freeAttempts: options.loginRateLimit.max, forgetAfterMs: options.loginRateLimit.timeWindowMs, maxDelayMs: options.loginRateLimit.maxDelayMs }),
    hashing: new WorkSlots(HASH_SLOTS, HASH_QUEUE)
  }
}

/**
 * Creates the configured users, or brings them to the configured password and role (which ends
 * their sessions; a user already as configured keeps them, so a restart logs nobody out), and, when
 * the database has no user at all, an `admin` with a random password that is logged once.
 */
export async function provisionUsers (db: Kysely<Database>, users: ResolvedDashboard['users'], log: FastifyInstance['log']): Promise<void> {
  for (const user of users) {
    const stored = await findUser(db, user.username)
    if (stored !== undefined && stored.role === user.role && await verifyPassword(user.password, stored.passwordHash)) continue
    await upsertUser(db, user.username, await hashPassword(user.password), user.role)
  }
  if (users.length > 0 || await countUsers(db) > 0) return
  const password = randomPassword()
  // another process sharing the database may win the race; only the winner's password is real
  if (await createUser(db, 'admin', await hashPassword(password), 'admin')) {
    log.warn(`fastify-monitoring-dashboard: created dashboard user "admin" with password ${password} (shown once; change it in the dashboard's settings)`)
  }
}
