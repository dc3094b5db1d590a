import type { FastifyReply, FastifyRequest } from 'fastify'
import { CSRF_HEADER, dashboardUser, type Sessions } from '../auth/index.js'
import { DUMMY_HASH, verifyPassword } from '../auth/passwords.js'
import { endSessions, findUser, type StoredUser } from '../queries/users.js'
import { NOT_MONITORED, type ApiRoutes } from './context.js'
import { OK_REPLY, SESSION_REPLY, replies } from './schemas.js'

/** The throttle's keys for a password check: the account, and the client as Fastify sees it (`trustProxy`). */
export function throttleKeys (request: FastifyRequest, username: string): string[] {
  return [`account:${username}`, `client:${request.ip}`]
}

/**
 * Checks a password under the login throttle and the cap on concurrent hashing. Replies 429 (with
 * `Retry-After`) and returns undefined when the account or client must wait or too many checks run;
 * otherwise returns the user when the password is theirs, or null (an unknown user takes as long, and
 * fails). The throttle is asked before anything else, so a refused attempt costs no query and no hash.
 */
export async function checkPassword (sessions: Sessions, request: FastifyRequest, reply: FastifyReply, find: () => Promise<StoredUser | undefined>, username: string, password: string): Promise<StoredUser | null | undefined> {
  const keys = throttleKeys(request, username)
  const waitMs = sessions.throttle.attempt(keys)
  if (waitMs > 0) {
    await reply.code(429).header('retry-after', String(Math.ceil(waitMs / 1000))).send({ error: 'too many attempts; retry later' })
    return undefined
  }
  const user = await find()
  const valid = await sessions.hashing.run(async () => await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH))
  if (valid === undefined) {
    await reply.code(429).header('retry-after', '1').send({ error: 'too many logins at once; retry later' })
    return undefined
  }
  if (!valid || user === undefined) {
    sessions.throttle.failed(keys)
    return null
  }
  sessions.throttle.succeed(keys)
  return user
}

/** Login, logout and the current session (with the CSRF token the UI sends on every change). */
export const sessionRoutes: ApiRoutes = (app, { db, guards, sessions }) => {
  app.post<{ Body: { username: string, password: string } }>('/api/login', {
    config: NOT_MONITORED,
    schema: {
      body: { type: 'object', properties: { username: { type: 'string', maxLength: 256 }, password: { type: 'string', maxLength: 1024 } }, required: ['username', 'password'], additionalProperties: false },
      response: replies(SESSION_REPLY)
    }
  }, async (request, reply) => {
    const { username, password } = request.body
    const user = await checkPassword(sessions, request, reply, async () => await findUser(db, username), username, password)
    if (user === undefined) return reply
    if (user === null) return await reply.code(401).send({ error: 'wrong username or password' })
    return { username: user.username, role: user.role, csrfToken: sessions.start(request, user), csrfHeader: CSRF_HEADER }
  })

  // ends every session of the user (a copied cookie too), not only this browser's
  app.post('/api/logout', {
    config: NOT_MONITORED,
    onRequest: guards.csrf,
    preHandler: guards.authenticate,
    schema: { response: replies(OK_REPLY) }
  }, async (request) => {
    await endSessions(db, dashboardUser(request).id)
    sessions.end(request)
    return { ok: true }
  })

  app.get('/api/session', {
    config: NOT_MONITORED,
    preHandler: guards.authenticate,
    schema: { response: replies(SESSION_REPLY) }
  }, async (request) => {
    const user = dashboardUser(request)
    return { username: user.username, role: user.role, csrfToken: sessions.csrfToken(request), csrfHeader: CSRF_HEADER }
  })
}
