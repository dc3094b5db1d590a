import type { FastifyReply, FastifyRequest } from 'fastify'
import { hashPassword } from '../auth/passwords.js'
import { createUser, deleteUser, listUsers, setPassword } from '../queries/users.js'
import { NOT_MONITORED, type ApiRoutes } from './context.js'
import { PASSWORD, USERNAME } from './schemas.js'

const USERNAME_PARAMS = { type: 'object', properties: { username: USERNAME }, required: ['username'] } as const

/** Dashboard users: admins list, create and delete them; every user may change their own password. */
export const userRoutes: ApiRoutes = (app, { db, guards }) => {
  const admin = { config: NOT_MONITORED, onRequest: guards.csrf, preHandler: [guards.authenticate, guards.requireAdmin] }

  app.get('/api/users', { config: NOT_MONITORED, preHandler: [guards.authenticate, guards.requireAdmin] }, async () => await listUsers(db))

  app.post<{ Body: { username: string, password: string, role: 'admin' | 'guest' } }>('/api/users', {
    ...admin,
    schema: { body: { type: 'object', properties: { username: USERNAME, password: PASSWORD, role: { type: 'string', enum: ['admin', 'guest'] } }, required: ['username', 'password', 'role'], additionalProperties: false } }
  }, async (request, reply) => {
    const { username, password, role } = request.body
    if (!await createUser(db, username, await hashPassword(password), role)) return await reply.code(409).send({ error: 'a user with that name exists' })
    return await reply.code(201).send({ username, role })
  })

  app.delete<{ Params: { username: string } }>('/api/users/:username', {
    ...admin,
    schema: { params: USERNAME_PARAMS }
  }, async (request, reply) => {
    const result = await deleteUser(db, request.params.username)
    if (result === 'missing') return await reply.code(404).send({ error: 'no such user' })
    if (result === 'last-admin') return await reply.code(409).send({ error: 'the last admin cannot be deleted' })
    return { ok: true }
  })

  // admins set anyone's password; every user may set their own
  app.put<{ Params: { username: string }, Body: { password: string } }>('/api/users/:username/password', {
    config: NOT_MONITORED,
    onRequest: guards.csrf,
    preHandler: [guards.authenticate, async (request: FastifyRequest<{ Params: { username: string } }>, reply: FastifyReply) => {
      if (request.dashboardUser?.role !== 'admin' && request.dashboardUser?.username !== request.params.username) {
        await reply.code(403).send({ error: 'only an admin may change another user\'s password' })
      }
    }],
    schema: { params: USERNAME_PARAMS, body: { type: 'object', properties: { password: PASSWORD }, required: ['password'], additionalProperties: false } }
  }, async (request, reply) => {
    if (!await setPassword(db, request.params.username, await hashPassword(request.body.password))) return await reply.code(404).send({ error: 'no such user' })
    return { ok: true }
  })
}
