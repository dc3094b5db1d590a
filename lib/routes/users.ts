import { dashboardUser } from '../auth/index.js'
import { hashPassword } from '../auth/passwords.js'
import { createUser, deleteUser, findUser, listUsers, setPassword, setRole } from '../queries/users.js'
import { NOT_MONITORED, type ApiRoutes } from './context.js'
import { checkPassword } from './session.js'
import { OK_REPLY, PASSWORD, ROLE, USERNAME, USER_CREATED_REPLY, USERS_REPLY, replies } from './schemas.js'

const USERNAME_PARAMS = { type: 'object', properties: { username: USERNAME }, required: ['username'] } as const

/**
 * Dashboard users: admins list, create, delete them and change roles; every user may change their
 * own password (giving the current one). A password or role change ends the user's other sessions.
 */
export const userRoutes: ApiRoutes = (app, { db, guards, sessions }) => {
  const admin = { config: NOT_MONITORED, onRequest: guards.csrf, preHandler: [guards.authenticate, guards.requireAdmin] }

  app.get('/api/users', { config: NOT_MONITORED, preHandler: [guards.authenticate, guards.requireAdmin], schema: { response: replies(USERS_REPLY) } }, async () => await listUsers(db))

  app.post<{ Body: { username: string, password: string, role: 'admin' | 'guest' } }>('/api/users', {
    ...admin,
    schema: { body: { type: 'object', properties: { username: USERNAME, password: PASSWORD, role: ROLE }, required: ['username', 'password', 'role'], additionalProperties: false }, response: replies(USER_CREATED_REPLY, 201) }
  }, async (request, reply) => {
    const { username, password, role } = request.body
    if (!await createUser(db, username, await hashPassword(password), role)) return await reply.code(409).send({ error: 'a user with that name exists' })
    return await reply.code(201).send({ username, role })
  })

  app.delete<{ Params: { username: string } }>('/api/users/:username', {
    ...admin,
    schema: { params: USERNAME_PARAMS, response: replies(OK_REPLY) }
  }, async (request, reply) => {
    const result = await deleteUser(db, request.params.username)
    if (result === 'missing') return await reply.code(404).send({ error: 'no such user' })
    if (result === 'last-admin') return await reply.code(409).send({ error: 'the last admin cannot be deleted' })
    return { ok: true }
  })

  app.put<{ Params: { username: string }, Body: { role: 'admin' | 'guest' } }>('/api/users/:username/role', {
    ...admin,
    schema: { params: USERNAME_PARAMS, body: { type: 'object', properties: { role: ROLE }, required: ['role'], additionalProperties: false }, response: replies(OK_REPLY) }
  }, async (request, reply) => {
    const result = await setRole(db, request.params.username, request.body.role)
    if (result === 'missing') return await reply.code(404).send({ error: 'no such user' })
    if (result === 'last-admin') return await reply.code(409).send({ error: 'the last admin cannot lose the admin role' })
    return { ok: true }
  })

  // admins set anyone's password; every user may set their own, giving the current one
  app.put<{ Params: { username: string }, Body: { password: string, currentPassword?: string } }>('/api/users/:username/password', {
    config: NOT_MONITORED,
    onRequest: guards.csrf,
    preHandler: [guards.authenticate, async (request, reply) => {
      const user = dashboardUser(request)
      if (user.role !== 'admin' && user.username !== (request.params as { username: string }).username) {
        await reply.code(403).send({ error: 'only an admin may change another user\'s password' })
      }
    }],
    schema: {
      params: USERNAME_PARAMS,
      body: { type: 'object', properties: { password: PASSWORD, currentPassword: { type: 'string', maxLength: 1024 } }, required: ['password'], additionalProperties: false },
      response: replies(OK_REPLY)
    }
  }, async (request, reply) => {
    const self = dashboardUser(request).username === request.params.username
    if (self) {
      // a stolen session alone must not be enough to take the account over
      const { currentPassword } = request.body
      if (currentPassword === undefined) return await reply.code(400).send({ error: 'currentPassword is required to change your own password' })
      const user = await checkPassword(sessions, request, reply, async () => await findUser(db, request.params.username), request.params.username, currentPassword)
      if (user === undefined) return reply
      if (user === null) return await reply.code(403).send({ error: 'the current password is wrong' })
    }
    const generation = await setPassword(db, request.params.username, await hashPassword(request.body.password))
    if (generation === undefined) return await reply.code(404).send({ error: 'no such user' })
    // every other session of the user ends; this one carries on
    if (self) sessions.renew(request, generation)
    return { ok: true }
  })
}
