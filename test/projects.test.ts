// #19's projects: every endpoint belongs to a project; a collector keeps the services that send to it apart.
// Admins make projects and their ingest tokens (shown once, stored hashed, revocable); a project's token
// sends into that project only; the collector's own token names any project.
import t from 'tap'
import { sql } from 'kysely'
import type { FastifyInstance } from 'fastify'
import { projectTokenHash } from '../lib/auth/project-tokens.js'
import { DIALECTS, backend, buildApp, ingestBatch, until } from './helpers.js'

const ADMIN = { username: 'admin', password: 'admin-password-1', role: 'admin' as const }
const GUEST = { username: 'guest', password: 'guest-password-1', role: 'guest' as const }
const COLLECTOR_TOKEN = 'collector-token-0123456789'

interface Session { cookie: string, csrf: string }

async function login (app: FastifyInstance, user: { username: string, password: string }): Promise<Session> {
  const res = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: user.username, password: user.password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return { cookie: String(res.headers['set-cookie']).split(';')[0]!, csrf: res.json().csrfToken }
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: projects and their tokens`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await buildApp({ ...store.options, metrics: false, dashboard: { users: [ADMIN, GUEST], sessionSecret: 's'.repeat(40), ingestToken: COLLECTOR_TOKEN } })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    const db = app.monitor.db
    await until(async () => (await db.selectFrom('dashboard_user').select('id').execute()).length >= 2)
    const admin = await login(app, ADMIN)
    const guest = await login(app, GUEST)
    const api = async (session: Session, method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, payload?: Record<string, unknown>): Promise<{ status: number, body: any }> => {
      const res = await app.inject({ method, url: `/dashboard/api${url}`, headers: { cookie: session.cookie, 'x-csrf-token': session.csrf }, ...(payload === undefined ? {} : { payload }) })
      return { status: res.statusCode, body: res.body.length > 0 ? res.json() : undefined }
    }
    const ingest = async (token: string, body: unknown): Promise<{ status: number, body: any }> => {
      const res = await app.inject({ method: 'POST', url: '/dashboard/api/ingest', headers: { authorization: `Bearer ${token}` }, payload: body as Record<string, unknown> })
      return { status: res.statusCode, body: res.json() }
    }
    const projectOf = async (route: string): Promise<string[]> => (await sql<{ name: string }>`select p.name from ${sql.table('endpoint')} e
      join ${sql.table('project')} p on p.id = e.project_id where e.route = ${route} order by p.name`.execute(db)).rows.map((r) => r.name)

    // made by an admin; the token is answered once
    const made = await api(admin, 'POST', '/projects', { name: 'billing' })
    t.equal(made.status, 201)
    t.match(made.body, { project: 'billing', token: /^fmdp_[A-Za-z0-9_-]{43}$/, hint: made.body.token.slice(-4) })
    t.equal((await api(admin, 'POST', '/projects', { name: 'billing' })).status, 409, 'a name is taken once')
    t.equal((await api(admin, 'POST', '/projects', { name: '<script>' })).status, 400, 'a name is letters, digits, _ . -')
    t.equal((await api(guest, 'POST', '/projects', { name: 'guests' })).status, 403, 'guests make none')
    const { rows: stored } = await sql<{ token_hash: string, hint: string }>`select token_hash, hint from ${sql.table('project_token')}`.execute(db)
    t.same(stored, [{ token_hash: projectTokenHash(made.body.token), hint: made.body.token.slice(-4) }], 'only its hash is stored')

    // the project's token sends into that project, with or without naming it
    const billingToken: string = made.body.token
    t.same((await ingest(billingToken, ingestBatch('b1', '/users/:id'))).status, 200)
    t.same((await ingest(billingToken, ingestBatch('b2', '/invoices', { project: 'billing' }))).status, 200)
    t.same(await projectOf('/users/:id'), ['billing', 'default'], 'the service\'s /users/:id is an endpoint of its own beside this app\'s')
    t.same(await projectOf('/invoices'), ['billing'])
    const other = await ingest(billingToken, ingestBatch('b3', '/search', { project: 'search' }))
    t.same([other.status, other.body.error], [403, 'the token belongs to project billing; the batch names project search'], 'a project\'s token names no other project')
    t.same(await projectOf('/search'), [], 'and stores nothing')
    // the collector's token names any project, created if new
    t.equal((await ingest(COLLECTOR_TOKEN, ingestBatch('c1', '/search', { project: 'search', version: 'search-1' }))).status, 200)
    t.same(await projectOf('/search'), ['search'])
    t.equal((await ingest(COLLECTOR_TOKEN, ingestBatch('c2', '/untagged'))).status, 200)
    t.same(await projectOf('/untagged'), ['default'], 'without a project: default')

    // listed for everyone (the picker); tokens for admins only
    const listed = await api(guest, 'GET', '/projects')
    t.same(listed.body.projects.map((p: { name: string, endpoints: number }) => [p.name, p.endpoints]), [['billing', 2], ['default', 6], ['search', 1]])
    t.same(listed.body.tokens, [], 'a guest sees no token')
    const tokens = (await api(admin, 'GET', '/projects')).body.tokens
    t.match(tokens, [{ projectId: made.body.projectId, hint: made.body.token.slice(-4), lastUsedAt: String, revokedAt: null }], 'an admin sees its hint and when it was last used')

    // rotation: a second token, then the first revoked; the revoked one is refused at once
    const second = await api(admin, 'POST', `/projects/${made.body.projectId as number}/tokens`)
    t.equal(second.status, 201)
    t.not(second.body.token, billingToken)
    t.equal((await api(admin, 'DELETE', `/projects/${made.body.projectId as number}/tokens/${made.body.tokenId as number}`)).status, 200)
    t.equal((await api(admin, 'DELETE', `/projects/${made.body.projectId as number}/tokens/${made.body.tokenId as number}`)).status, 404, 'revoked once')
    const revoked = await ingest(billingToken, ingestBatch('b4', '/refunds'))
    t.same([revoked.status, revoked.body.error], [401, 'a valid ingest token is required: a project\'s, or the collector\'s (dashboard.ingestToken)'])
    t.same(await projectOf('/refunds'), [], 'nothing stored with a revoked token')
    t.equal((await ingest(second.body.token, ingestBatch('b5', '/refunds'))).status, 200, 'the new token works')
    t.same(await projectOf('/refunds'), ['billing'])
    t.equal((await ingest(`fmdp_${'x'.repeat(43)}`, ingestBatch('b6', '/x'))).status, 401, 'an unknown token')
    t.equal((await api(admin, 'POST', '/projects/999/tokens')).status, 404, 'no token for a project that is not there')

    // the endpoint page names its project; a level set there does not touch this app's endpoint of the same route
    const billingUsers = (await sql<{ id: number }>`select e.id from ${sql.table('endpoint')} e join ${sql.table('project')} p on p.id = e.project_id
      where p.name = 'billing' and e.route = '/users/:id'`.execute(db)).rows[0]!.id
    t.equal((await api(guest, 'GET', `/endpoints/${billingUsers}`)).body.endpoint.project, 'billing')
    t.equal((await api(admin, 'PUT', `/endpoints/${billingUsers}/level`, { level: 0 })).status, 200)
    t.equal(app.monitor.endpoints().find((e) => e.route === '/users/:id')?.level, 1, 'this app\'s own /users/:id keeps its level')
    const level0 = await ingest(second.body.token, ingestBatch('b7', '/users/:id'))
    t.same(level0.body.levels, [{ method: 'GET', route: '/users/:id', level: 0 }], 'the service learns its endpoint\'s level')

    // the views keep to one project when asked
    for (let i = 0; i < 3; i++) await app.inject({ url: `/users/${i}` })
    await app.monitor.flush()
    const billingId: number = made.body.projectId
    const searchId = listed.body.projects.find((p: { name: string }) => p.name === 'search').id as number
    const routes = async (project?: number): Promise<string[]> => (await api(guest, 'GET', `/overview${project === undefined ? '' : `?project=${project}`}`)).body.map((e: { route: string }) => e.route)
    t.same(await routes(billingId), ['/invoices', '/refunds', '/users/:id'], 'overview: billing\'s endpoints only')
    t.same(await routes(searchId), ['/search'])
    t.ok((await routes()).includes('/untagged') && (await routes()).filter((r) => r === '/users/:id').length === 2, 'without a project: every project\'s')
    const billingIds = new Set((await api(guest, 'GET', `/overview?project=${billingId}`)).body.map((e: { id: number }) => e.id))
    const performance = (await api(guest, 'GET', `/performance?project=${billingId}`)).body
    t.ok(performance.length === 3 && performance.every((p: { endpointId: number }) => billingIds.has(p.endpointId)), 'performance: billing\'s three endpoints')
    const hits = (cells: Array<{ hits: number }>): number => cells.reduce((sum, c) => sum + c.hits, 0)
    t.equal(hits((await api(guest, 'GET', `/load?project=${billingId}`)).body), 6, 'load: billing\'s six stored requests')
    t.equal(hits((await api(guest, 'GET', '/load')).body), 6 + 2 + 2 + 3, 'every project\'s: billing, search, untagged and this app\'s three')
    const versions = (await api(guest, 'GET', `/versions?project=${searchId}`)).body
    t.same(versions.versions.map((v: { version: string, hits: number }) => [v.version, v.hits]), [['search-1', 2]], 'versions: those that served the project')
    t.equal(hits(versions.daily), 2, 'and its requests per day')
    t.equal((await api(guest, 'GET', '/overview?project=Infinity')).status, 400, 'a project is an id')
    const window = `range:${new Date(Date.now() - 3_600_000).toISOString()}/${new Date(Date.now() + 60_000).toISOString()}`
    const reported = async (project?: number): Promise<string[]> => (await api(guest, 'GET', `/reports?baseline=${encodeURIComponent(window)}&candidate=${encodeURIComponent(window)}${project === undefined ? '' : `&project=${project}`}`))
      .body.endpoints.map((e: { route: string }) => e.route).sort()
    t.same(await reported(searchId), ['/search'], 'reports: the project\'s endpoints only')
    t.ok((await reported()).length > 3, 'and every project\'s without one')
  })
}

t.test('without a collector token, the ingest route takes projects\' tokens only; the project option names an app\'s own', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, metrics: false, project: 'shop', dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  t.ok(await until(async () => (await sql<{ name: string }>`select distinct p.name from ${sql.table('endpoint')} e
    join ${sql.table('project')} p on p.id = e.project_id`.execute(app.monitor.db)).rows.map((r) => r.name).join() === 'shop'), 'this app\'s endpoints are in project shop')
  const res = await app.inject({ method: 'POST', url: '/dashboard/api/ingest', payload: ingestBatch('x', '/x') })
  t.equal(res.statusCode, 401)
  await t.rejects(buildApp({ dataDir: 'memory://', project: 'a b' }), /"project" option must be 1 to 64 letters/)
})
