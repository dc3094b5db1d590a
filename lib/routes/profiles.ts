import { findEndpoint } from '../queries/admin.js'
import { findProfile, listProfiles } from '../queries/profiles.js'
import { NOT_MONITORED, type ApiRoutes } from './context.js'
import { BIGINT_ID_PARAMS, GROUPED_PROFILE_REPLY, ID_PARAMS, PROFILE_REPLY, replies } from './schemas.js'

/** Level 3: an endpoint's grouped profile over its latest call trees, and one request's call tree. */
export const profileRoutes: ApiRoutes = (app, { db, guards, groupedProfile }) => {
  const reader = { config: NOT_MONITORED, preHandler: guards.authenticate }

  app.get<{ Params: { id: number }, Querystring: { n?: number, libraries?: 'fold' | 'expand' } }>('/api/endpoints/:id/profile', {
    ...reader,
    schema: {
      params: ID_PARAMS,
      querystring: { type: 'object', properties: { n: { type: 'integer', minimum: 1, maximum: 1000 }, libraries: { type: 'string', enum: ['fold', 'expand'] } }, additionalProperties: false },
      response: replies(GROUPED_PROFILE_REPLY)
    }
  }, async (request, reply) => {
    const endpoint = await findEndpoint(db, request.params.id)
    if (endpoint === undefined) return await reply.code(404).send({ error: 'no such endpoint' })
    // merged on the writer's thread: up to 1,000 call trees never block the app's requests
    const [grouped, latest] = await Promise.all([groupedProfile(endpoint.id, request.query.n ?? 100, request.query.libraries !== 'expand'), listProfiles(db, endpoint.id, 20)])
    return { ...grouped, latest }
  })

  app.get<{ Params: { id: string } }>('/api/profiles/:id', {
    ...reader,
    schema: { params: BIGINT_ID_PARAMS, response: replies(PROFILE_REPLY) }
  }, async (request, reply) => {
    const profile = await findProfile(db, request.params.id)
    if (profile === undefined) return await reply.code(404).send({ error: 'no such profile' })
    return profile
  })
}
