import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest, type RouteOptions } from 'fastify'
import type { FromSchema, JSONSchema } from 'json-schema-to-ts'
import monitor, { type MonitorOptions } from '../lib/index.js'
import type * as S from '../lib/routes/schemas.js'
import type { EndpointOverview } from '../lib/queries/overview.js'
import type { LoadCell, statusCodesPerDay } from '../lib/queries/load.js'
import type { endpointPerformance, performanceByVersion, Breakdown } from '../lib/queries/performance.js'
import type { VersionUsage, dailyVersionUse } from '../lib/queries/versions.js'
import type { findEndpoint, TableSize } from '../lib/queries/admin.js'
import type { listOutliers, OutlierDetail } from '../lib/queries/outliers.js'
import type { HiddenRequestEvidence, PhaseEvidence, ProcessEvidence, RequestEvidence } from '../lib/collection/evidence.js'
import type { StackEvidence } from '../lib/profiling/sampler.js'
import type { findProfile, GroupedProfile, ProfileSummary } from '../lib/queries/profiles.js'
import type { RetentionResult } from '../lib/db/retention.js'
import type { listUsers } from '../lib/queries/users.js'
import type { endpointTests, testCoverage, TestBuildSummary } from '../lib/queries/tests.js'
import type { ExportedRequest, ExportedRollup } from '../lib/queries/export.js'
import type { Report } from '../lib/queries/reports.js'
import type { StoredGraph } from '../lib/queries/graphs.js'
import { DIALECTS, backend, until } from './helpers.js'

// The schemas in lib/routes/schemas.ts are the one definition of each reply's JSON (the UI's types derive
// from them). lib/ keeps its own types for the values its queries return: those hold Date objects and
// jsonb evidence typed where it is built, serve callers other than the API (the CLI's reports, the
// writer thread's grouped profiles), and lib/ does not import json-schema-to-ts (a devDependency). So that
// the two cannot drift, each query type, as JSON makes it, must be exactly its schema's type: a property
// the query returns and the schema does not declare (Fastify would drop it), or the reverse, fails
// `npm run typecheck`.

/** What JSON makes of a server value: dates become strings (tuples stay tuples). */
type Json<T> = T extends Date ? string : T extends readonly unknown[] ? { [K in keyof T]: Json<T[K]> } : T extends object ? { [K in keyof T]: Json<T[K]> } : T
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Exact<Server, Schema extends JSONSchema> = Same<Json<Server>, FromSchema<Schema>>
type Check<T extends true> = T
type Value<F extends (...args: any[]) => unknown> = NonNullable<Awaited<ReturnType<F>>>

export type Checks = [
  Check<Exact<EndpointOverview[], typeof S.OVERVIEW_REPLY>>,
  Check<Exact<LoadCell[], typeof S.LOAD_REPLY>>,
  Check<Exact<Value<typeof endpointPerformance>, typeof S.PERFORMANCE_REPLY>>,
  Check<Exact<{ versions: VersionUsage[], daily: Value<typeof dailyVersionUse> }, typeof S.VERSIONS_REPLY>>,
  Check<Exact<{ endpoint: Value<typeof findEndpoint>, load: LoadCell[], byVersion: Value<typeof performanceByVersion>, statusCodes: Value<typeof statusCodesPerDay> }, typeof S.ENDPOINT_REPLY>>,
  Check<Exact<Breakdown, typeof S.BREAKDOWN_REPLY>>,
  Check<Exact<Value<typeof findEndpoint>, typeof S.ENDPOINT>>,
  Check<Exact<{ page: number, pageSize: number } & Value<typeof listOutliers> & { requestValues: boolean }, typeof S.OUTLIER_PAGE_REPLY>>,
  // the stored evidence is jsonb (unknown to the query): its types are where it is built
  Check<Exact<Omit<OutlierDetail, 'request' | 'phases' | 'process' | 'stacks'> & {
    // one object for both forms (see REQUEST_OR_HIDDEN_EVIDENCE): the guest's form has only these two
    request: Pick<RequestEvidence, 'method' | 'url'> & Partial<Omit<RequestEvidence, 'method' | 'url'> & Pick<HiddenRequestEvidence, 'hidden'>>
    phases: PhaseEvidence
    process: ProcessEvidence
    stacks: StackEvidence | null
  }, typeof S.OUTLIER_REPLY>>,
  Check<Exact<GroupedProfile & { latest: ProfileSummary[] }, typeof S.GROUPED_PROFILE_REPLY>>,
  Check<Exact<Value<typeof findProfile>, typeof S.PROFILE_REPLY>>,
  Check<Exact<{ version: string, database: string, tablePrefix: string, retentionDays: number, rollupRetentionDays: number, exportEnabled: boolean, tables: TableSize[] }, typeof S.CONFIG_REPLY>>,
  Check<Exact<RetentionResult, typeof S.RETENTION_REPLY>>,
  Check<Exact<Value<typeof listUsers>, typeof S.USERS_REPLY>>,
  Check<Exact<{ builds: TestBuildSummary[] }, typeof S.TEST_BUILDS_REPLY>>,
  Check<Exact<Value<typeof testCoverage>, typeof S.TEST_COVERAGE_REPLY>>,
  Check<Exact<Value<typeof endpointTests>, typeof S.ENDPOINT_TESTS_REPLY>>,
  Check<Exact<{ rows: ExportedRequest[], next: { afterTime: string, afterId: string } | null }, typeof S.EXPORT_REQUESTS_REPLY>>,
  Check<Exact<{ rows: ExportedRollup[], next: { offset: number } | null }, typeof S.EXPORT_ROLLUPS_REPLY>>,
  Check<Exact<Report, typeof S.REPORT_REPLY>>,
  Check<Exact<StoredGraph[], typeof S.GRAPHS_REPLY>>
]

/** Routes of the API that answer no JSON of their own, with the reason. */
const EXEMPT: Record<string, string> = {
  'OPTIONS /dashboard/api/*': 'the refusal of every cross-origin preflight: it only ever answers 403 (declared as 4xx)'
}

/**
 * The API routes (under /dashboard/api) that do not declare their replies: a success (200, or 201 for a
 * creation) and the error bodies (4xx, 5xx). Fastify serialises a reply with its schema, so an
 * undeclared route or property would go out unchecked, or not at all.
 */
function undeclared (routes: RouteOptions[]): string[] {
  const missing: string[] = []
  for (const route of routes) {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    for (const method of methods) {
      const name = `${method} ${route.url}`
      if (!route.url.startsWith('/dashboard/api/') || method === 'HEAD' || name in EXEMPT) continue
      const response = (route.schema?.response ?? {}) as Record<string, unknown>
      const ok = response[200] ?? response[201]
      if (ok === undefined || response['4xx'] === undefined || response['5xx'] === undefined) missing.push(name)
    }
  }
  return missing
}

const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const GUEST = { username: 'viewer', password: 'viewer-password', role: 'guest' as const }
const EXPORT_TOKEN = 'export-token-0123456789'
const TEST_TOKEN = 'tests-token-0123456789'

function burnCpu (ms: number): number {
  const end = performance.now() + ms
  let spins = 0
  while (performance.now() < end) spins++
  return spins
}

/**
 * An app with every route of the API, recording each route as it is registered, and for every JSON reply the
 * handler's value as `JSON.stringify` makes it next to what the route's serialiser sent.
 */
async function recordingApp (options: MonitorOptions, routes: RouteOptions[], replies: Array<{ url: string, status: number, sent: string, value: string }>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  app.addHook('onRoute', (route) => { routes.push(route) })
  const values = new WeakMap<FastifyRequest, string>()
  app.addHook('preSerialization', async (request, _reply, payload) => {
    values.set(request, JSON.stringify(payload))
    return payload
  })
  app.addHook('onSend', async (request, reply, payload) => {
    const value = values.get(request)
    if (value !== undefined && typeof payload === 'string') replies.push({ url: `${request.method} ${request.url}`, status: reply.statusCode, sent: payload, value })
    return payload
  })
  await app.register(monitor, {
    ...options,
    flushIntervalMs: 20,
    levelPollIntervalMs: 100,
    appVersion: 'v-schemas',
    defaultMonitorLevel: 3,
    metrics: false,
    outliers: { minSamples: 20, window: 100, profileShare: 1, adminOnlyRequestValues: true },
    dashboard: { users: [ADMIN, GUEST], sessionSecret: 's'.repeat(40), exportToken: EXPORT_TOKEN, testResultsToken: TEST_TOKEN }
  })
  app.post<{ Querystring: { ms?: string } }>('/work', async (request) => ({ spins: burnCpu(Number(request.query.ms ?? 0)) }))
  app.monitor.addGraph('answer', () => 42, { everySeconds: 1 })
  await app.ready()
  await app.monitor.ready
  await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('id').execute()).length >= 2)
  return app
}

t.test('the route walk finds a route without a response schema', async (t) => {
  const bare = { method: 'GET', url: '/dashboard/api/new-thing', handler: () => ({}) } as unknown as RouteOptions
  const only200 = { method: 'GET', url: '/dashboard/api/half', schema: { response: { 200: { type: 'object' } } }, handler: () => ({}) } as unknown as RouteOptions
  const full = { method: ['GET', 'HEAD'], url: '/dashboard/api/full', schema: { response: { 200: { type: 'object' }, '4xx': {}, '5xx': {} } }, handler: () => ({}) } as unknown as RouteOptions
  const elsewhere = { method: 'GET', url: '/dashboard/assets/x', handler: () => ({}) } as unknown as RouteOptions
  t.same(undeclared([bare, only200, full, elsewhere]), ['GET /dashboard/api/new-thing', 'GET /dashboard/api/half'])
})

for (const [i, dialect] of DIALECTS.entries()) {
  t.test(`${dialect}: every API route declares its replies, and they carry all the handler returned`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const routes: RouteOptions[] = []
    const replies: Array<{ url: string, status: number, sent: string, value: string }> = []
    const app = await recordingApp(store.options, routes, replies)
    t.teardown(() => app.close())

    const api = routes.filter((route) => route.url.startsWith('/dashboard/api/')).map((route) => `${String(route.method)} ${route.url}`)
    t.ok(api.length >= 30, `${api.length} API routes registered`)
    t.ok(api.includes('GET /dashboard/api/export/requests') && api.includes('POST /dashboard/api/test-results'), 'with the export and test-results routes')
    t.same(undeclared(routes), [], 'every JSON route of the API has a response schema for its success and its errors')
    if (i > 0) return

    const db = app.monitor.db
    for (let n = 0; n < 30; n++) await app.inject({ method: 'POST', url: '/work?ms=0.2', payload: { n } })
    await app.inject({ method: 'POST', url: '/work?ms=120', headers: { 'x-request-id': 'slow-1' }, payload: { n: 'slow' } })
    const work = async (): Promise<number | undefined> => (await db.selectFrom('endpoint').select('id').where('route', '=', '/work').executeTakeFirst())?.id
    t.ok(await until(async () => {
      await app.monitor.flush()
      const id = await work()
      if (id === undefined) return false
      const [outlier, profile, graph] = await Promise.all([
        db.selectFrom('outlier').select('id').where('endpoint_id', '=', id).executeTakeFirst(),
        db.selectFrom('profile').select('id').where('endpoint_id', '=', id).executeTakeFirst(),
        db.selectFrom('graph_run').select('tick').where('error', 'is', null).executeTakeFirst()
      ])
      return outlier !== undefined && profile !== undefined && graph !== undefined
    }, 30_000), 'an outlier, a call tree and a graph value are stored')
    const id = (await work())!

    const login = async (user: { username: string, password: string }): Promise<{ cookie: string, csrf: string }> => {
      const res = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: user.username, password: user.password } })
      return { cookie: String(res.headers['set-cookie']).split(';')[0]!, csrf: res.json().csrfToken }
    }
    const admin = await login(ADMIN)
    const guest = await login(GUEST)
    const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, session = admin, payload?: object): Promise<{ status: number, body: any }> => {
      const headers: Record<string, string> = { cookie: session.cookie }
      if (method !== 'GET') headers['x-csrf-token'] = session.csrf
      const res = await app.inject({ method, url: `/dashboard/api${url}`, headers, ...(payload === undefined ? {} : { payload }) })
      return { status: res.statusCode, body: res.body.length > 0 ? res.json() : undefined }
    }
    const hour = 3_600_000
    const range = `from=${new Date(Date.now() - 24 * hour).toISOString()}&to=${new Date(Date.now() + hour).toISOString()}&tz=Europe/Paris`
    const window = `range:${new Date(Date.now() - 24 * hour).toISOString()}/${new Date(Date.now() + hour).toISOString()}`

    const gets = [
      '/session', `/overview?tz=Europe/Paris`, `/load?${range}`, `/load?${range}&endpoint=${id}`, `/performance?${range}`, `/versions?${range}`,
      `/endpoints/${id}?${range}`, `/endpoints/${id}/breakdown?${range}&by=ip`, `/endpoints/${id}/breakdown?${range}&by=group_by`,
      `/endpoints/${id}/outliers?${range}`, `/endpoints/${id}/profile`, `/endpoints/${id}/profile?libraries=expand`,
      `/graphs?${range}`, `/reports?baseline=${encodeURIComponent(window)}&candidate=${encodeURIComponent(window)}`, '/config', '/users'
    ]
    for (const url of gets) t.equal((await call('GET', url)).status, 200, `GET ${url.split('?')[0]}`)
    const page = (await call('GET', `/endpoints/${id}/outliers?${range}`)).body
    t.ok(page.rows.length >= 1 && page.resources.rssMb.count >= 1, 'an outlier with its resources')
    const outlier = (await call('GET', `/outliers/${page.rows[0].id}`)).body
    t.equal(outlier.request.headers['x-request-id'], 'slow-1', 'the outlier\'s request evidence, headers and all')
    t.ok(outlier.stacks === null || Array.isArray(outlier.stacks.hot), 'and its stacks')
    const hidden = await call('GET', `/outliers/${page.rows[0].id}`, guest)
    t.same(Object.keys(hidden.body.request).sort(), ['hidden', 'method', 'url'], 'a guest sees the request without its values')
    t.equal((await call('GET', `/endpoints/${id}/outliers?${range}`, guest)).body.requestValues, false)
    const profile = (await call('GET', `/endpoints/${id}/profile`)).body
    t.ok(profile.nodes.length > 0 && profile.latest.length > 0, 'a grouped profile')
    const tree = (await call('GET', `/profiles/${profile.latest[0].id}`)).body
    t.ok(tree.tree.nodes.length > 0 && tree.tree.nodes.every((node: number[]) => node.length === 4), 'a call tree of 4-tuples')

    const submission = {
      build: 'b-1', commit: 'abc', branch: null, batch: 'run-1', repeat: 1,
      tests: [{ file: 'a.test.js', name: 'works', durationMs: 12, outcome: 'pass', hits: [{ method: 'POST', route: '/work', statusCode: 200, requests: 3, totalMs: 6, maxMs: 3 }] }]
    }
    const submit = async (): Promise<number> => (await app.inject({ method: 'POST', url: '/dashboard/api/test-results', headers: { authorization: `Bearer ${TEST_TOKEN}` }, payload: submission })).statusCode
    t.equal(await submit(), 201, 'test results stored')
    t.equal(await submit(), 200, 'and not twice')
    t.equal((await call('GET', '/tests/builds')).body.builds[0].build, 'b-1')
    t.equal((await call('GET', '/tests/coverage')).body.endpoints.find((e: { route: string }) => e.route === '/work').tests, 1)
    t.equal((await call('GET', '/tests/endpoint?method=POST&route=/work')).body.tests[0].builds[0].requests, 3)

    const exported = async (url: string): Promise<any> => (await app.inject({ url: `/dashboard/api/export/${url}`, headers: { authorization: `Bearer ${EXPORT_TOKEN}` } }))
    t.equal((await exported('requests?limit=5')).json().rows.length, 5, 'requests exported as JSON')
    t.ok((await exported('rollups?limit=1')).json().next !== null, 'rollups exported as JSON')
    const csv = await exported('requests?limit=2&format=csv')
    t.match(csv.body, /^id,method,route,timeRequested/, 'CSV is sent as text, past the JSON schema')

    t.same((await call('PUT', `/endpoints/${id}/level`, admin, { level: 2 })).body, { id, method: 'POST', route: '/work', level: 2, project: 'default' })
    const made = await call('POST', '/projects', admin, { name: 'billing' })
    t.match(made, { status: 201, body: { project: 'billing', token: /^fmdp_/ } }, 'a project and its token')
    t.match(await call('POST', `/projects/${made.body.projectId as number}/tokens`), { status: 201, body: { projectId: made.body.projectId } })
    t.match((await call('GET', '/projects')).body, { projects: [{ name: 'billing' }, { name: 'default' }], tokens: [{ hint: made.body.hint }, {}] }, 'projects and their tokens\' hints')
    t.same((await call('DELETE', `/projects/${made.body.projectId as number}/tokens/${made.body.tokenId as number}`)).body, { ok: true })
    t.same((await call('POST', '/users', admin, { username: 'someone', password: 'some-password', role: 'guest' })), { status: 201, body: { username: 'someone', role: 'guest' } })
    t.same((await call('PUT', '/users/someone/role', admin, { role: 'admin' })).body, { ok: true })
    t.same((await call('PUT', '/users/someone/password', admin, { password: 'other-password' })).body, { ok: true })
    t.same((await call('DELETE', '/users/someone')).body, { ok: true })
    t.same(await call('GET', '/endpoints/999999'), { status: 404, body: { error: 'no such endpoint' } }, 'an error reply')
    t.same(await call('GET', '/outliers/999999'), { status: 404, body: { error: 'no such outlier' } })
    t.equal((await call('GET', '/load?tz=Nowhere/Else')).status, 400)
    t.same((await call('GET', '/users', guest)).body, { error: 'admin role required' })
    const deleted = (await call('POST', '/retention/delete', admin, { before: new Date(Date.now() - 400 * 24 * hour).toISOString() })).body
    t.same(Object.keys(deleted), ['droppedPartitions', 'deletedRequests', 'deletedRollupRows'])
    t.same((await call('POST', '/logout')).body, { ok: true })

    // every reply: what the route's serialiser sent is the handler's whole value (no property dropped,
    // no number rounded, dates as JSON.stringify writes them), in the same bytes
    t.ok(replies.length >= 40, `${replies.length} JSON replies compared`)
    for (const reply of replies) {
      t.strictSame(JSON.parse(reply.sent), JSON.parse(reply.value), `${reply.status} ${reply.url.slice(0, 90)}: nothing lost`)
    }
    // in the same bytes, but where the order of properties differs from the handler's object: /performance has
    // always sent `endpointId` after the figures and /reports its schema's order (both schemas are older than
    // this check); an outlier page's resources come busiest first; fast-json-stringify writes an optional
    // property (a grouped node's `library`, a call tree's `concurrent`, an outlier request's fields but
    // `method` and `url`: one schema serves the request and its guest form) after the required ones
    const ordered = /^\/dashboard\/api\/(performance|reports|endpoints\/[0-9]+\/(outliers|profile)|profiles\/[0-9]+|outliers\/[0-9]+)$/
    const reordered = replies.filter((reply) => reply.sent !== reply.value && !ordered.test(reply.url.split(' ')[1]!.split('?')[0]!))
    t.same(reordered.map((reply) => reply.url), [], 'and in the same bytes as JSON.stringify')
  })
}
