import { CSRF_HEADER } from '../auth/index.js'
import { DUMMY_HASH, verifyPassword } from '../auth/passwords.js'
import { findUser } from '../queries/users.js'
import { NOT_MONITORED, type ApiRoutes } from './context.js'
import { ERROR_REPLY } from './schemas.js'

const SESSION_REPLY = {
  type: 'object',
  properties: { username: { type: 'string' }, role: { type: 'string' }, csrfToken: { type: 'string' }, csrfHeader: { type: 'string' } }
} as const

/** Login, logout and the current session (with the CSRF token the UI sends on every change). */
export const sessionRoutes: ApiRoutes = (app, { db, options, guards }) => {
  app.post<{ Body: { username: string, password: string } }>('/api/login', {
    config: { ...NOT_MONITORED, rateLimit: { max: options.loginRateLimit.max, timeWindow: options.loginRateLimit.timeWindowMs } },
    schema: {
      body: { type: 'object', properties: { username: { type: 'string', maxLength: 256 }, password: { type: 'string', maxLength: 1024 } }, required: ['username', 'password'], additionalProperties: false },
      response: { 200: SESSION_REPLY, 401: ERROR_REPLY }
    }
  }, async (request, reply) => {
    const user = await findUser(db, request.body.username)
    const valid = await verifyPassword(request.body.password, user?.passwordHash ?? DUMMY_HASH)
    if (user === undefined || !valid) return await reply.code(401).send({ error: 'wrong username or password' })
    // a fresh session: nothing from before the login carries over (session fixation)
    request.session.regenerate()
    request.session.set('userId', user.id)
    return { username: user.username, role: user.role, csrfToken: reply.generateCsrf(), csrfHeader: CSRF_HEADER }
  })

  app.post('/api/logout', {
    config: NOT_MONITORED,
    onRequest: guards.csrf,
    preHandler: guards.authenticate,
    schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } }
  }, async (request) => {
    request.session.delete()
    return { ok: true }
  })

  app.get('/api/session', {
    config: NOT_MONITORED,
    preHandler: guards.authenticate,
    schema: { response: { 200: SESSION_REPLY } }
  }, async (request, reply) => {
    const user = request.dashboardUser!
    return { username: user.username, role: user.role, csrfToken: reply.generateCsrf(), csrfHeader: CSRF_HEADER }
  })
}
