// #19's sender: a service registered with `remote: { url, token }` records as before but its writer sends
// the batches to a collector's ingest route instead of writing to a database. Real parts only: the
// collector is the plugin on PGlite or PostgreSQL listening on a port, the services send over HTTP.
import t from 'tap'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { sql, type Kysely } from 'kysely'
import monitor from '../lib/index.js'
import type { Database } from '../lib/db/database.js'
import { resolveOptions, MAX_REMOTE_BATCH_SIZE, REMOTE_TOKEN_ENV, REMOTE_URL_ENV, type MonitorOptions } from '../lib/options.js'
import { IngestSender } from '../lib/writer/sender.js'
import { MAX_INGEST_ENDPOINTS } from '../lib/protocol.js'
import { DIALECTS, backend, buildApp, freePort, until } from './helpers.js'

const TOKEN = 'ingest-token-0123456789'

function burnCpuForRemoteTest (ms: number): number {
  const end = performance.now() + ms
  let spins = 0
  while (performance.now() < end) spins++
  return spins
}
type Test = { teardown: (fn: () => unknown) => void }

/** A collector: the plugin with its ingest route on, listening on `port` (any free one by default). */
async function startCollector (t: Test, options: MonitorOptions, port = 0): Promise<{ app: FastifyInstance, db: Kysely<Database>, url: string }> {
  const app = await buildApp({ metrics: false, ...options, dashboard: { ingestToken: TOKEN } })
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
  await app.monitor.ready
  return { app, db: app.monitor.db, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}/dashboard` }
}

/** A service sending to `url`, with its log lines kept. */
async function startService (t: Test, url: string, options: MonitorOptions = {}): Promise<{ app: FastifyInstance, logs: Array<{ level: number, msg: string, err?: { message: string } }> }> {
  const logs: Array<{ level: number, msg: string, err?: { message: string } }> = []
  const stream = new Writable({ write (chunk, _encoding, done) { logs.push(JSON.parse(String(chunk))); done() } })
  const app = Fastify({ logger: { level: 'debug', stream } })
  await app.register(monitor, { remote: { url, token: TOKEN }, flushIntervalMs: 20, retryMaxDelayMs: 200, levelPollIntervalMs: 100, ...options })
  app.get('/orders/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  app.get('/fail', async () => { throw new Error('boom') })
  app.get('/never', async () => 'never requested')
  app.get<{ Querystring: { ms?: string } }>('/burn', async (request) => ({ spins: burnCpuForRemoteTest(Number(request.query.ms ?? 0)) }))
  t.teardown(() => app.close())
  await app.ready()
  return { app, logs }
}

async function storedBy (db: Kysely<Database>, version: string): Promise<Array<{ route: string, status_code: number, group_by: string | null, ip: string | null }>> {
  const { rows } = await sql<{ route: string, status_code: number, group_by: string | null, ip: string | null }>`
    select e.route, r.status_code, r.group_by, r.ip from ${sql.table('request')} r
    join ${sql.table('endpoint')} e on e.id = r.endpoint_id join ${sql.table('version')} v on v.id = r.version_id
    where v.version = ${version} order by r.time_requested, r.seq`.execute(db)
  return rows
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: two services send to one collector; each one's requests are stored once, as sent`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const collector = await startCollector(t, store.options)
    const a = await startService(t, collector.url, { appVersion: 'svc-a', groupBy: (request) => request.headers['x-user'] as string | undefined })
    const b = await startService(t, collector.url, { appVersion: 'svc-b' })

    for (let i = 0; i < 30; i++) await a.app.inject({ url: `/orders/${i}`, headers: { 'x-user': i % 2 === 0 ? 'ann' : 'x\u0000<script>' } })
    for (let i = 0; i < 20; i++) await b.app.inject({ url: `/orders/${i}` })
    for (let i = 0; i < 5; i++) await b.app.inject({ url: '/fail' })
    await b.app.inject({ url: '/<img src=x>' })
    await Promise.all([a.app.monitor.flush(), b.app.monitor.flush()])

    const fromA = await storedBy(collector.db, 'svc-a')
    t.equal(fromA.length, 30, 'service A: every request, once')
    t.same(new Set(fromA.map((r) => r.group_by)), new Set(['ann', 'x\uFFFD<script>']), 'its group-by values, NUL made storable and markup kept as text')
    t.ok(fromA.every((r) => r.route === '/orders/:id' && r.status_code === 200 && r.ip === '127.0.0.1'), 'route, status and IP as the service saw them')
    const fromB = await storedBy(collector.db, 'svc-b')
    t.same([fromB.filter((r) => r.status_code === 200).length, fromB.filter((r) => r.status_code === 500).length, fromB.filter((r) => r.status_code === 404).length], [20, 5, 1],
      'service B: its 200s, 500s and its 404 (under the unmatched endpoint)')
    t.same([a.app.monitor.stats().written, b.app.monitor.stats().written, a.app.monitor.stats().dropped], [30, 26, 0], 'each service counts what the collector took')

    const { rows: endpoints } = await sql<{ route: string }>`select route from ${sql.table('endpoint')} order by route`.execute(collector.db)
    t.ok(endpoints.some((e) => e.route === '/never'), 'an endpoint never requested is registered with the collector')
    const { rows: instances } = await sql<{ n: number }>`select count(distinct r.instance_id)::int as n from ${sql.table('request')} r
      join ${sql.table('version')} v on v.id = r.version_id where v.version like 'svc-%'`.execute(collector.db)
    t.equal(instances[0]!.n, 2, 'each service is an instance of its own')

    // /metrics stays the service's own
    const metrics = (await a.app.inject({ url: '/metrics' })).body
    t.match(metrics, /http_request_duration_seconds_count\{[^}]*route="\/orders\/:id"[^}]*\} 30/, 'service A\'s /metrics counts its own 30 requests')
    t.match(metrics, /fastify_monitor_records_written_total 30/)
    t.notMatch(metrics, /route="\/fail"[^}]*\} [1-9]/, 'and none of service B\'s')

    // levels are the collector's: an admin's change there reaches the service
    await sql`update ${sql.table('endpoint')} set monitor_level = 0 where route = '/orders/:id'`.execute(collector.db)
    t.ok(await until(() => a.app.monitor.endpoints().find((e) => e.route === '/orders/:id')?.level === 0), 'level 0 set in the collector reaches the service')
    const before = Date.now()
    await a.app.inject({ url: '/orders/last' })
    await a.app.monitor.flush()
    t.equal((await storedBy(collector.db, 'svc-a')).length, 30, 'at level 0 no request is stored')
    t.ok(await until(async () => {
      const { rows: [seen] } = await sql<{ last: Date }>`select last_requested as last from ${sql.table('endpoint')} where route = '/orders/:id'`.execute(collector.db)
      return new Date(seen!.last).getTime() >= before - 1
    }), 'but its last-request time moves')
    await sql`update ${sql.table('endpoint')} set monitor_level = 3 where route = '/orders/:id'`.execute(collector.db)
    t.ok(await until(() => a.app.monitor.endpoints().find((e) => e.route === '/orders/:id')?.level === 3), 'level 3 set in the collector reaches the service')

    // what needs a database says where it is
    t.throws(() => a.app.monitor.db, /sends its records to the collector at http:\/\/127\.0\.0\.1:\d+\/dashboard\/api\/ingest/)
    await t.rejects(a.app.monitor.setMonitorLevel('GET', '/orders/:id', 2), /setMonitorLevel needs the database/)
    t.throws(() => a.app.monitor.addGraph('queue', () => 1, { everySeconds: 60 }), /addGraph\('queue'\) needs the database/)
    t.equal((await a.app.inject({ url: '/dashboard' })).statusCode, 404, 'no dashboard in the service')
    t.same(a.logs.filter((l) => l.level >= 40).map((l) => l.msg), [], 'nothing to warn about')
  })

  t.test(`${dialect}: levels 2 and 3 in a service: its outliers, with evidence redacted by both sides' rules, and its call trees are stored by the collector`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    // the collector's level for new endpoints is the service's; its own redaction rule names x-tenant
    const collector = await startCollector(t, { ...store.options, defaultMonitorLevel: 3, outliers: { redact: ['x-tenant'] } })
    const service = await startService(t, collector.url, { appVersion: 'svc-diag', outliers: { minSamples: 20, window: 100, profileShare: 1 } })
    await service.app.inject({ url: '/burn' })
    // on a loaded machine the collector's first answers can take seconds: the service's log says why on failure
    t.ok(await until(() => service.app.monitor.endpoints().find((e) => e.route === '/burn')?.level === 3), 'the service follows the collector\'s level 3',
      { logs: service.logs.map((l) => `${l.level} ${l.msg} ${l.err?.message ?? ''}`) })

    for (let i = 0; i < 30; i++) await service.app.inject({ url: '/burn?ms=0.2' })
    const secrets = { authorization: 'Bearer top-secret', 'x-tenant': 'acme-secret', 'x-request-id': 'kept-123' }
    await service.app.inject({ url: '/burn?ms=60&token=top-secret', headers: secrets })
    const burnId = (await collector.db.selectFrom('endpoint').select('id').where('route', '=', '/burn').executeTakeFirstOrThrow()).id
    const slow = async (): Promise<Array<{ request: any, duration_ms: number, version_id: number }>> =>
      await collector.db.selectFrom('outlier').select(['request', 'duration_ms', 'version_id']).where('endpoint_id', '=', burnId).where('duration_ms', '>=', 50).execute()
    t.ok(await until(async () => { await service.app.monitor.flush(); return (await slow()).length === 1 }, 20_000), 'the slow request is an outlier in the collector\'s database')
    const [outlier] = await slow()
    t.same([outlier!.request.headers.authorization, outlier!.request.headers['x-tenant'], outlier!.request.headers['x-request-id']], ['[redacted]', '[redacted]', 'kept-123'],
      'a secret the service redacts, one only the collector\'s rules name, and a plain header kept')
    t.match(outlier!.request.url, /token=\[redacted\]/, 'the query\'s secret too')
    const { id: versionId } = await collector.db.selectFrom('version').select('id').where('version', '=', 'svc-diag').executeTakeFirstOrThrow()
    t.equal(outlier!.version_id, versionId, 'under the service\'s version')
    const { rows: [hour] } = await sql<{ found: number, stored: number }>`select sum(found)::int as found, sum(stored)::int as stored
      from ${sql.table('outlier_hour')} where endpoint_id = ${burnId}`.execute(collector.db)
    t.ok(hour!.found >= 1 && hour!.stored === (await collector.db.selectFrom('outlier').select('id').where('endpoint_id', '=', burnId).execute()).length, 'counted per hour as found and stored')

    // call trees: a request the sampler got no tick in keeps none, so ask until one has one
    let sent = 0
    t.ok(await until(async () => {
      await service.app.monitor.flush()
      if ((await collector.db.selectFrom('profile').select('id').where('endpoint_id', '=', burnId).execute()).length > 0) return true
      if (sent++ < 40) await service.app.inject({ url: '/burn?ms=30' })
      return false
    }, 30_000, 20), 'level 3: call trees reach the collector')
    t.same(service.logs.filter((l) => l.level >= 40).map((l) => l.msg), [], 'nothing to warn about')
  })

  t.test(`${dialect}: the collector down for a while, then back: nothing lost, the outage logged once`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const port = await freePort()
    const service = await startService(t, `http://127.0.0.1:${port}/dashboard`, { appVersion: 'svc-outage' })
    for (let i = 0; i < 40; i++) t.equal((await service.app.inject({ url: `/orders/${i}` })).statusCode, 200)
    t.ok(await until(() => service.app.monitor.stats().writeErrors >= 3, 10_000), 'sends are retried')
    const during = service.app.monitor.stats()
    t.same([during.databaseUp, during.written, during.dropped, during.buffered], [false, 0, 0, 40], 'the records wait in the buffer; the outage shows as database_up 0')
    t.match((await service.app.inject({ url: '/metrics' })).body, /fastify_monitor_database_up 0/)

    const collector = await startCollector(t, store.options, port)
    t.ok(await until(async () => (await storedBy(collector.db, 'svc-outage')).length === 40, 15_000), 'once the collector is back, all 40 arrive')
    await service.app.monitor.flush()
    t.equal((await storedBy(collector.db, 'svc-outage')).length, 40, 'each once')
    t.same([service.app.monitor.stats().written, service.app.monitor.stats().dropped], [40, 0])
    const warnings = service.logs.filter((l) => l.level >= 40)
    t.equal(warnings.length, 1, 'one warning for the whole outage')
    t.match(warnings[0]?.err?.message, /cannot reach the collector at http:\/\/127\.0\.0\.1:\d+\/dashboard\/api\/ingest: ECONNREFUSED/, 'naming the URL and the cause')
    t.ok(service.logs.some((l) => l.level === 30 && /collector answers/.test(l.msg)), 'and one line when it answers')
  })
}

t.test('two services with their projects\' tokens: each project\'s views show its own requests only', async (t) => {
  const store = await backend(DIALECTS.includes('postgres') ? 'postgres' : 'pglite')
  t.teardown(store.cleanup)
  const ADMIN = { username: 'admin', password: 'admin-password-1', role: 'admin' as const }
  const app = await buildApp({ ...store.options, metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('id').execute()).length >= 1)
  const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: ADMIN.username, password: ADMIN.password } })
  const headers = { cookie: String(login.headers['set-cookie']).split(';')[0]!, 'x-csrf-token': login.json().csrfToken as string }
  const token = async (name: string): Promise<{ projectId: number, token: string }> => (await app.inject({ method: 'POST', url: '/dashboard/api/projects', headers, payload: { name } })).json()
  const billing = await token('billing')
  const search = await token('search')
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/dashboard`
  const services = []
  for (const project of [billing, search]) {
    const service = Fastify()
    await service.register(monitor, { remote: { url, token: project.token }, appVersion: `v-${project.projectId}`, flushIntervalMs: 20, levelPollIntervalMs: 100 })
    service.get('/health', async () => 'ok')
    service.get(project === billing ? '/invoices/:id' : '/search', async () => 'ok')
    t.teardown(() => service.close())
    await service.ready()
    services.push(service)
  }
  for (let i = 0; i < 7; i++) await services[0]!.inject({ url: `/invoices/${i}` })
  for (let i = 0; i < 3; i++) await services[0]!.inject({ url: '/health' })
  for (let i = 0; i < 5; i++) await services[1]!.inject({ url: '/search' })
  await Promise.all(services.map(async (s) => { await s.monitor.flush() }))

  const overview = async (projectId: number): Promise<Record<string, number>> => Object.fromEntries((await app.inject({ url: `/dashboard/api/overview?project=${projectId}`, headers })).json()
    .map((e: { route: string, today: { hits: number } }) => [e.route, e.today.hits]))
  t.same(await overview(billing.projectId), { '/health': 3, '/invoices/:id': 7, __unmatched__: 0 }, 'billing\'s project: its requests, its /health')
  t.same(await overview(search.projectId), { '/health': 0, '/search': 5, __unmatched__: 0 }, 'search\'s project: its own, and its /health apart from billing\'s')
})

t.test('a wrong token: 401, nothing stored, the service logs it once and keeps serving; close counts what was not sent', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const collector = await startCollector(t, store.options)
  const logs: Array<{ level: number, msg: string, err?: { message: string } }> = []
  const stream = new Writable({ write (chunk, _encoding, done) { logs.push(JSON.parse(String(chunk))); done() } })
  const service = Fastify({ logger: { level: 'debug', stream } })
  await service.register(monitor, { remote: { url: collector.url, token: `${TOKEN}-revoked` }, appVersion: 'svc-badtoken', flushIntervalMs: 20, retryMaxDelayMs: 1_000, levelPollIntervalMs: 100, closeTimeoutMs: 200 })
  service.get('/orders/:id', async () => 'ok')
  await service.ready()
  for (let i = 0; i < 25; i++) t.equal((await service.inject({ url: `/orders/${i}` })).statusCode, 200, 'the app answers')
  t.ok(await until(() => service.monitor.stats().writeErrors >= 5, 10_000), 'it keeps trying')
  const before = service.monitor.stats().writeErrors
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  // with the sends' and the polls' waits doubling to retryMaxDelayMs (1 s here): about 3 + 3 in 3 s, where a
  // poll every levelPollIntervalMs (100 ms) would make 30
  t.ok(service.monitor.stats().writeErrors - before <= 12, `and backs off: ${service.monitor.stats().writeErrors - before} tries in 3 s`)
  t.equal((await storedBy(collector.db, 'svc-badtoken')).length, 0, 'the collector stored nothing')
  const { rows: [endpoints] } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table('endpoint')} where route = '/orders/:id'`.execute(collector.db)
  t.equal(endpoints!.n, 0, 'not even its endpoints')
  const warnings = logs.filter((l) => l.level >= 40)
  t.equal(warnings.length, 1, 'logged once')
  t.match(warnings[0]!.err!.message, /refused the token: remote\.token must be a project's token not revoked, or the collector's FASTIFY_MONITOR_INGEST_TOKEN \(HTTP 401\)/)
  t.same([service.monitor.stats().buffered, service.monitor.stats().dropped], [25, 0], 'the records are held, not dropped, while the token may still be fixed')
  await service.close()
  t.same(logs.filter((l) => l.level >= 50).map((l) => l.msg), ['fastify-monitoring-dashboard: 25 records could not be written before close'], 'close says once what it could not send')
})

t.test('a batch of rows naming more endpoints than one ingest batch may is sent in parts with stable ids', async (t) => {
  const sender = new IngestSender({ ingestUrl: 'http://127.0.0.1:1/dashboard/api/ingest', token: TOKEN, project: undefined, timeoutMs: 1_000, compress: true }, { version: 'v', instanceToken: 'instance-token' })
  const keys = Array.from({ length: 1_500 }, (_, index) => ({ index, method: 'GET', route: `/r${index}` }))
  const n = 1_600
  const unit = {
    id: 'unit-1',
    endpointId: Array.from({ length: n }, (_, i) => i % 1_500),
    timeMs: Array.from({ length: n }, (_, i) => 1_000 + i),
    durationMs: Array.from({ length: n }, (_, i) => i / 10),
    statusCode: Array.from({ length: n }, () => 200),
    seq: Array.from({ length: n }, (_, i) => i + 1),
    group: Array.from({ length: n }, () => null),
    ip: Array.from({ length: n }, () => '::1')
  }
  const parts = sender.batches(unit, keys)
  t.same(parts.map((p) => p.body.batch), ['unit-1/1', 'unit-1/2'], 'ids derived from the unit\'s, so a retry carries the same ones')
  t.ok(parts.every((p) => p.body.endpoints.length <= MAX_INGEST_ENDPOINTS), 'each within the limit')
  t.same(parts.flatMap((p) => p.body.requests.time), unit.timeMs, 'every row once, in order')
  t.same(parts.flatMap((p) => p.body.requests.endpoint.map((position) => p.indexes[position])), unit.endpointId, 'each row under its own endpoint')
  t.same(sender.batches({ ...unit, endpointId: unit.endpointId.map(() => 7) }, keys).map((p) => [p.body.batch, p.body.endpoints]), [['unit-1', [{ method: 'GET', route: '/r7' }]]], 'one batch when it fits')
  const polls = sender.polls(keys, new Map([[1_200, 5_000]]))
  t.same(polls.map((p) => [p.body.endpoints.length, p.body.requests.endpoint.length, p.body.seen]), [[1_000, 0, undefined], [500, 0, { endpoint: [200], time: [5_000] }]],
    'the endpoint poll in parts too, a level-0 endpoint\'s last request in the part that names it')
})

t.test('remote options are checked at register, naming the option', async (t) => {
  const url = 'http://collector:3300/dashboard'
  const cases: Array<[string, MonitorOptions, RegExp]> = [
    ['a database too', { remote: { url, token: TOKEN }, database: 'postgres://x@y/z' }, /"remote" option cannot be combined with database/],
    ['a dataDir too', { remote: { url, token: TOKEN }, dataDir: './x' }, /"remote" option cannot be combined with dataDir/],
    ['a dashboard', { remote: { url, token: TOKEN }, dashboard: '/dash' }, /"dashboard" option is served by the collector/],
    ['no url', { remote: { token: TOKEN } }, /"remote\.url" option must be the collector's dashboard URL/],
    ['another scheme', { remote: { url: 'ftp://collector/dashboard', token: TOKEN } }, /"remote\.url"/],
    ['credentials in the url', { remote: { url: 'http://user:secret@collector/dashboard', token: TOKEN } }, /"remote\.url".*\/\/\*\*\*@collector/],
    ['a short token', { remote: { url, token: 'short' } }, /"remote\.token" option must be a project's token from the collector's dashboard/],
    ['an unknown key', { remote: { url, token: TOKEN, retries: 3 } as never }, /"remote\.retries" option is not an option/],
    ['a project id beside the token', { remote: { url, token: TOKEN, projectId: 7 } as never }, /"remote\.projectId" option is not needed: a project's token names its project/],
    ['a bad timeout', { remote: { url, token: TOKEN, timeoutMs: 5 } }, /"remote\.timeoutMs" option must be an integer from 100/]
  ]
  for (const [name, options, message] of cases) {
    const resolved = resolveOptions(options, {})
    t.match(resolved instanceof Error ? resolved.message : 'accepted', message, name)
    t.notMatch(resolved instanceof Error ? resolved.message : '', /secret/, `${name}: no secret in the message`)
  }
  const fromEnv = resolveOptions({}, { [REMOTE_URL_ENV]: `${url}/`, [REMOTE_TOKEN_ENV]: TOKEN })
  t.same(fromEnv instanceof Error ? fromEnv.message : [fromEnv.remote, fromEnv.dashboard, fromEnv.maxBatchSize],
    [{ ingestUrl: `${url}/api/ingest`, token: TOKEN, project: undefined, timeoutMs: 10_000, compress: true }, false, MAX_REMOTE_BATCH_SIZE], 'from the environment; no dashboard; batches the ingest route takes whatever they hold')
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(monitor, { remote: { url, token: 'short' } }); await app.ready() }, /remote\.token/, 'register fails')
})
