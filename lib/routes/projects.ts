import { dashboardUser } from '../auth/index.js'
import { newProjectToken, projectTokenHash, projectTokenHint } from '../auth/project-tokens.js'
import { addProjectToken, createProject, listProjectTokens, listProjects, projectName, revokeProjectToken } from '../queries/projects.js'
import { NOT_MONITORED, type ApiRoutes } from './context.js'
import { ID_PARAMS, OK_REPLY, PROJECTS_REPLY, PROJECT_NAME_SCHEMA, PROJECT_TOKEN_REPLY, replies } from './schemas.js'

const TOKEN_PARAMS = {
  type: 'object',
  properties: { id: { type: 'integer', minimum: 1 }, tokenId: { type: 'integer', minimum: 1 } },
  required: ['id', 'tokenId']
} as const

/**
 * Projects (the services that send to this collector or share its database) and their ingest tokens.
 * Everyone signed in lists the projects, for the picker; admins also see the tokens' hints, create projects,
 * make tokens (shown once, stored hashed: a rotation is a new token, then the old one revoked) and revoke them.
 */
export const projectRoutes: ApiRoutes = (app, { db, guards, projectTokens }) => {
  const admin = { config: NOT_MONITORED, onRequest: guards.csrf, preHandler: [guards.authenticate, guards.requireAdmin] }

  app.get('/api/projects', { config: NOT_MONITORED, preHandler: guards.authenticate, schema: { response: replies(PROJECTS_REPLY) } }, async (request) => ({
    projects: await listProjects(db),
    tokens: dashboardUser(request).role === 'admin' ? await listProjectTokens(db) : []
  }))

  /** A new token of a project, answered with the token itself. */
  const issue = async (projectId: number, project: string): Promise<{ projectId: number, project: string, tokenId: number, token: string, hint: string } | undefined> => {
    const token = newProjectToken()
    const tokenId = await addProjectToken(db, projectId, projectTokenHash(token), projectTokenHint(token))
    return tokenId === undefined ? undefined : { projectId, project, tokenId, token, hint: projectTokenHint(token) }
  }

  app.post<{ Body: { name: string } }>('/api/projects', {
    ...admin,
    schema: { body: { type: 'object', properties: { name: PROJECT_NAME_SCHEMA }, required: ['name'], additionalProperties: false }, response: replies(PROJECT_TOKEN_REPLY, 201) }
  }, async (request, reply) => {
    const id = await createProject(db, request.body.name)
    if (id === undefined) return await reply.code(409).send({ error: 'a project with that name exists' })
    return await reply.code(201).send(await issue(id, request.body.name))
  })

  app.post<{ Params: { id: number } }>('/api/projects/:id/tokens', {
    ...admin,
    schema: { params: ID_PARAMS, response: replies(PROJECT_TOKEN_REPLY, 201) }
  }, async (request, reply) => {
    const name = await projectName(db, request.params.id)
    const issued = name === undefined ? undefined : await issue(request.params.id, name)
    if (issued === undefined) return await reply.code(404).send({ error: 'no such project' })
    return await reply.code(201).send(issued)
  })

  app.delete<{ Params: { id: number, tokenId: number } }>('/api/projects/:id/tokens/:tokenId', {
    ...admin,
    schema: { params: TOKEN_PARAMS, response: replies(OK_REPLY) }
  }, async (request, reply) => {
    if (!await revokeProjectToken(db, request.params.id, request.params.tokenId)) return await reply.code(404).send({ error: 'no such token of that project, or revoked already' })
    // at once in this process; other collectors forget it within PROJECT_TOKEN_CACHE_MS
    projectTokens.clear()
    return { ok: true }
  })
}
