// #19's first part: `POST <prefix>/api/ingest` stores batches that other processes send (a service in
// another language, or another Node process without a database of its own), as this process stores its own:
// endpoints created at the default level, the sender's version and instance registered, rows of level-0
// endpoints kept only as their last request, the rest in one transaction under the sender's batch id, so a
// retried batch is stored once. Hostile bodies are refused with a clear answer and store nothing.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../lib/db/database.js'
import { INGEST_TOKEN_ENV } from '../lib/options.js'
import { INGEST_BATCH } from '../lib/routes/ingest.js'
import { DIALECTS, backend, buildApp, readyApp } from './helpers.js'

const TOKEN = 'ingest-token-0123456789'
const SERVICE_ROUTE = '/svc/items/:id'
const HOSTILE_ROUTE = '/svc/<script>alert(1)</script>'

function batchOf (id: string, now: number, overrides: Record<string, unknown> = {}): Record<string, any> {
  return {
    batch: id,
    version: 'svc-1.0',
    instance: { host: 'svc-a', pid: 42, token: 'svc-a-token' },
    endpoints: [{ method: 'GET', route: SERVICE_ROUTE }, { method: 'POST', route: HOSTILE_ROUTE }],
    requests: {
      endpoint: [0, 0, 1],
      time: [now - 1000, now - 500.25, now - 100],
      durationMs: [1.5, 2.25, 30],
      statusCode: [200, 404, 500],
      seq: [1, 2, 3],
      group: ['u1', null, 'x\u0000y'],
      ip: ['10.0.0.1', null, '::1']
    },
    ...overrides
  }
}

async function serviceRows (db: Kysely<Database>): Promise<Array<{ route: string, duration_ms: number, status_code: number, seq: string | null, group_by: string | null, ip: string | null, version: string, host: string }>> {
  const { rows } = await sql<any>`select e.route, r.duration_ms, r.status_code, r.seq, r.group_by, r.ip, v.version, i.host
    from ${sql.table('request')} r join ${sql.table('endpoint')} e on e.id = r.endpoint_id
    join ${sql.table('version')} v on v.id = r.version_id join ${sql.table('instance')} i on i.id = r.instance_id
    where e.route like '/svc/%' order by r.time_requested`.execute(db)
  return rows
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: batches from another process are stored once, as its own requests would be`, async (t) => {
    const { app, db } = await readyApp(t, dialect, { dashboard: { ingestToken: TOKEN }, metrics: {} })
    const post = async (body: unknown, headers: Record<string, string> = {}): Promise<{ statusCode: number, json: () => any }> =>
      await app.inject({ method: 'POST', url: '/dashboard/api/ingest', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers }, payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) })
    const now = Date.now()

    const first = await post(batchOf('batch-1', now))
    t.equal(first.statusCode, 200)
    t.same(first.json(), { stored: true, levels: [{ method: 'GET', route: SERVICE_ROUTE, level: 1 }, { method: 'POST', route: HOSTILE_ROUTE, level: 1 }] })
    const stored = await serviceRows(db)
    t.same(stored.map((r) => [r.route, r.duration_ms, r.status_code, r.seq, r.group_by, r.ip, r.version, r.host]), [
      [SERVICE_ROUTE, 1.5, 200, '1', 'u1', '10.0.0.1', 'svc-1.0', 'svc-a'],
      [SERVICE_ROUTE, 2.25, 404, '2', null, null, 'svc-1.0', 'svc-a'],
      [HOSTILE_ROUTE, 30, 500, '3', 'x\uFFFDy', '::1', 'svc-1.0', 'svc-a']
    ], 'every value as sent (NUL as U+FFFD), under the sender\'s version and instance')
    const { rows: [hours] } = await sql<{ hits: string }>`select sum(h.hits) as hits from ${sql.table('endpoint_hour')} h
      join ${sql.table('endpoint')} e on e.id = h.endpoint_id where e.route like '/svc/%'`.execute(db)
    t.equal(Number(hours!.hits), 3, 'the rollups count them')
    const { rows: [seen] } = await sql<{ last: Date }>`select last_requested as last from ${sql.table('endpoint')} where route = ${SERVICE_ROUTE}`.execute(db)
    t.equal(new Date(seen!.last).getTime(), Math.floor(now - 500.25), 'last requested at its latest request (to the ms)')
    const { rows: [version] } = await sql<{ first: Date }>`select first_seen as first from ${sql.table('version')} where version = 'svc-1.0'`.execute(db)
    t.equal(new Date(version!.first).getTime(), now - 1000, "the sender's version is first seen at its oldest request, not when the batch came")

    // a retry after a lost answer: stored once
    const retry = await post(batchOf('batch-1', now))
    t.same(retry.json().stored, false, 'a batch id seen before is not stored again')
    t.equal((await serviceRows(db)).length, 3)

    // compressed
    const gz = await post(gzipSync(JSON.stringify(batchOf('batch-2', now, { requests: { endpoint: [0], time: [now - 50], durationMs: [7], statusCode: [201] } }))), { 'content-encoding': 'gzip' })
    t.same([gz.statusCode, gz.json().stored], [200, true], 'a gzip body is stored')
    t.same((await serviceRows(db)).at(-1), { route: SERVICE_ROUTE, duration_ms: 7, status_code: 201, seq: null, group_by: null, ip: null, version: 'svc-1.0', host: 'svc-a' }, 'optional columns absent: null')

    // an endpoint an admin set to level 0 (through another collector on this database): its requests move its
    // last-request time only. This collector remembers levels for levelPollIntervalMs (100 ms here)
    await sql`update ${sql.table('endpoint')} set monitor_level = 0 where route = ${SERVICE_ROUTE}`.execute(db)
    await new Promise((resolve) => setTimeout(resolve, 150))
    const quiet = await post(batchOf('batch-3', now, { requests: { endpoint: [0], time: [now - 10], durationMs: [3], statusCode: [200] } }))
    t.same(quiet.json(), { stored: true, levels: [{ method: 'GET', route: SERVICE_ROUTE, level: 0 }, { method: 'POST', route: HOSTILE_ROUTE, level: 1 }] }, 'the sender learns the level')
    t.equal((await serviceRows(db)).length, 4, 'no row for a level-0 endpoint')
    const { rows: [moved] } = await sql<{ last: Date }>`select last_requested as last from ${sql.table('endpoint')} where route = ${SERVICE_ROUTE}`.execute(db)
    t.equal(new Date(moved!.last).getTime(), now - 10, 'its last request moved')

    // no request: the endpoints are registered and their levels answered (how a sender polls them); `seen`
    // moves a level-0 endpoint's last request
    const poll = await post(batchOf('poll-1', now, {
      endpoints: [{ method: 'GET', route: SERVICE_ROUTE }, { method: 'DELETE', route: '/svc/never-requested' }],
      requests: { endpoint: [], time: [], durationMs: [], statusCode: [] },
      seen: { endpoint: [0], time: [now - 5] }
    }))
    t.same(poll.json(), { stored: true, levels: [{ method: 'GET', route: SERVICE_ROUTE, level: 0 }, { method: 'DELETE', route: '/svc/never-requested', level: 1 }] }, 'a poll answers the levels')
    const { rows: polled } = await sql<{ route: string, last: Date | null }>`select route, last_requested as last from ${sql.table('endpoint')}
      where route in (${SERVICE_ROUTE}, '/svc/never-requested') order by route`.execute(db)
    t.same(polled.map((e) => [e.route, e.last === null ? null : new Date(e.last).getTime()]), [['/svc/items/:id', now - 5], ['/svc/never-requested', null]], 'registers the new endpoint, moves the seen one')
    const ids = (await db.selectFrom('endpoint').select(['id', 'route']).orderBy('id').execute())
    t.equal(ids.at(-1)!.route, '/svc/never-requested')
    t.equal(ids.at(-1)!.id, ids.at(-2)!.id + 1, 'the known endpoints registered again took no id from the sequence: the new one has the next')
    t.equal((await serviceRows(db)).length, 4, 'and stores no request')

    // refused, and nothing stored
    const refused: Array<[string, Promise<{ statusCode: number, json: () => any }>, number, RegExp]> = [
      ['no token', app.inject({ method: 'POST', url: '/dashboard/api/ingest', payload: batchOf('x1', now) }), 401, /token/],
      ['a wrong token', post(batchOf('x2', now), { authorization: `Bearer ${TOKEN}x` }), 401, /token/],
      ['columns of different lengths', post(batchOf('x3', now, { requests: { endpoint: [0, 0], time: [now, now], durationMs: [1], statusCode: [200, 200] } })), 400, /requests\.durationMs must have as many values/],
      ['an index past the endpoints', post(batchOf('x4', now, { requests: { endpoint: [2], time: [now], durationMs: [1], statusCode: [200] } })), 400, /requests\.endpoint\[0\] is 2/],
      ['a time before retention', post(batchOf('x5', now, { requests: { endpoint: [0], time: [now - 40 * 86_400_000], durationMs: [1], statusCode: [200] } })), 400, /requests\.time\[0\]/],
      ['a time in seconds', post(batchOf('x6', now, { requests: { endpoint: [0], time: [now / 1000], durationMs: [1], statusCode: [200] } })), 400, /requests\.time\[0\]/],
      ['a wrong type', post(batchOf('x7', now, { requests: { endpoint: [0], time: [now], durationMs: [1], statusCode: ['<b>'] } })), 400, /statusCode/],
      ['a seen index past the endpoints', post(batchOf('x8', now, { seen: { endpoint: [5], time: [now] } })), 400, /seen\.endpoint\[0\] is 5/],
      ['seen columns of different lengths', post(batchOf('x11', now, { seen: { endpoint: [0], time: [] } })), 400, /seen\.time must have as many values as seen\.endpoint/],
      ['a group past its length', post(batchOf('x9', now, { requests: { endpoint: [0], time: [now], durationMs: [1], statusCode: [200], group: ['g'.repeat(300)] } })), 400, /group/],
      ['a body not JSON', post('{"batch":'), 400, /JSON|Unexpected|Body/i],
      ['an encoding other than gzip', post(JSON.stringify(batchOf('x10', now)), { 'content-encoding': 'br' }), 415, /gzip/],
      ['a gzip bomb', post(gzipSync(Buffer.alloc(9 * 1024 * 1024, 32)), { 'content-encoding': 'gzip' }), 413, /larger than/],
      ['a body that is not gzip', post('not gzip at all', { 'content-encoding': 'gzip' }), 400, /not valid gzip/]
    ]
    for (const [name, response, status, message] of refused) {
      const r = await response
      t.equal(r.statusCode, status, `${name}: ${status}`)
      t.match(JSON.stringify(r.json()), message, `${name}: says why`)
    }
    t.equal((await serviceRows(db)).length, 4, 'nothing refused was stored')
    const { rows: [batches] } = await sql<{ n: string }>`select count(*) as n from ${sql.table('batch')} where id like 'x%'`.execute(db)
    t.equal(Number(batches!.n), 0, 'and no batch id claimed')

    // /metrics counts every answer: by project (none known for a refused one) and outcome
    const metrics = (await app.inject('/metrics')).body
    t.match(metrics, /fastify_monitor_ingest_batches_total\{project="default",outcome="stored"\} 4\n/, 'four batches stored (the poll too)')
    t.match(metrics, /fastify_monitor_ingest_batches_total\{project="default",outcome="duplicate"\} 1\n/, 'the retry')
    t.match(metrics, new RegExp(`fastify_monitor_ingest_batches_total\\{project="",outcome="refused"\\} ${refused.length}\\n`), 'every refusal, the 401s, 413 and 415 included')
    t.match(metrics, /fastify_monitor_ingest_rows_total\{project="default"\} 5\n/, 'the requests of the stored batches, the retry not counted again')
  })
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: outliers and call trees from another process: redacted by this collector's rules, counted, stored once; hostile ones refused`, async (t) => {
    const { app, db } = await readyApp(t, dialect, { dashboard: { ingestToken: TOKEN } })
    const post = async (body: unknown): Promise<{ statusCode: number, json: () => any }> =>
      await app.inject({ method: 'POST', url: '/dashboard/api/ingest', headers: { authorization: `Bearer ${TOKEN}` }, payload: body as Record<string, unknown> })
    const now = Date.now()
    const hour = Math.floor(now / 3_600_000) * 3_600_000
    const outlier = {
      endpoint: 0,
      time: now - 100,
      durationMs: 900,
      thresholdMs: 40,
      statusCode: 200,
      // as a sender in another language might send it: nothing redacted
      request: { method: 'GET', url: '/svc/items/1?api_key=k-123', params: { id: '1' }, query: { api_key: 'k-123' }, headers: { authorization: 'Bearer abc', cookie: 'sid=1', 'x-ok': '<b>fine</b>' }, body: '{"password":"hunter2","n":1}', bodyTruncated: false, ip: '10.0.0.9' },
      phases: { beforeHandler: 1, handler: 890, afterHandler: 9, total: 900 },
      process: { cpuPercent: 50, rssBytes: 1, heapUsedBytes: 1, eventLoopDelayMaxMs: 0, env: {} },
      stacks: null
    }
    const diagnostics = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      keepPerHour: 10,
      outliers: [outlier],
      overflow: [{ endpoint: 0, hour, count: 5 }],
      profiles: [{ endpoint: 1, time: now - 50, durationMs: 12, tree: { intervalUs: 1000, samples: 3, frames: [], nodes: [] } }],
      ...extra
    })
    const empty = { endpoint: [], time: [], durationMs: [], statusCode: [] }
    const first = await post(batchOf('diag-1', now, { requests: empty, diagnostics: diagnostics() }))
    t.same([first.statusCode, first.json().stored], [200, true])
    const stored = await db.selectFrom('outlier').innerJoin('endpoint', 'endpoint.id', 'outlier.endpoint_id').select(['outlier.request', 'outlier.duration_ms', 'endpoint.route']).execute()
    t.equal(stored.length, 1)
    const request = stored[0]!.request as any
    t.same([stored[0]!.route, request.headers.authorization, request.headers.cookie, request.headers['x-ok'], request.query.api_key], [SERVICE_ROUTE, '[redacted]', '[redacted]', '<b>fine</b>', '[redacted]'],
      'secret headers and query values redacted here, markup kept as text')
    t.notMatch(JSON.stringify(request), /hunter2|k-123/, 'nothing of the secrets left in the body or the URL')
    const counts = async (): Promise<number[]> => {
      const { rows: [row] } = await sql<{ found: number, stored: number, profiles: number }>`select (select sum(found)::int from ${sql.table('outlier_hour')}) as found,
        (select sum(stored)::int from ${sql.table('outlier_hour')}) as stored, (select count(*)::int from ${sql.table('profile')}) as profiles`.execute(db)
      return [row!.found, row!.stored, row!.profiles]
    }
    t.same(await counts(), [6, 1, 1], 'the outlier and the 5 past the cap found, one stored; the call tree stored')
    const again = await post(batchOf('diag-1', now, { requests: empty, diagnostics: diagnostics() }))
    t.same([again.statusCode, again.json().stored], [200, false], 'a replayed batch is answered as seen before')
    t.same(await counts(), [6, 1, 1], 'and stores nothing twice')

    const refused: Array<[string, Record<string, unknown>, RegExp]> = [
      ['an outlier of an endpoint past the batch\'s', diagnostics({ outliers: [{ ...outlier, endpoint: 2 }] }), /diagnostics\.outliers\[0\]\.endpoint is 2/],
      ['a count of an hour before retention', diagnostics({ overflow: [{ endpoint: 0, hour: now - 40 * 86_400_000, count: 1 }] }), /diagnostics\.overflow\[0\]\.hour/],
      ['a request without its URL', diagnostics({ outliers: [{ ...outlier, request: { method: 'GET', headers: {} } }] }), /url/],
      ['a header that is not text', diagnostics({ outliers: [{ ...outlier, request: { ...outlier.request, headers: { a: { b: 1 } } } }] }), /headers/],
      ['more outliers than a batch may hold', diagnostics({ outliers: Array.from({ length: 1_001 }, () => outlier) }), /outliers/],
      ['a call tree that is not an object', diagnostics({ profiles: [{ endpoint: 0, time: now, durationMs: 1, tree: 'x' }] }), /tree/]
    ]
    for (const [name, body, message] of refused) {
      const r = await post(batchOf(`bad-${name.length}`, now, { requests: empty, diagnostics: body }))
      t.equal(r.statusCode, 400, `${name}: 400`)
      t.match(JSON.stringify(r.json()), message, `${name}: says why`)
    }
    t.same(await counts(), [6, 1, 1], 'nothing refused was stored')
  })
}

t.test('without a collector token the ingest route refuses a request without a project\'s token, and a short token fails at register', async (t) => {
  const { app } = await readyApp(t, DIALECTS[0]!)
  const res = await app.inject({ method: 'POST', url: '/dashboard/api/ingest', headers: { authorization: `Bearer ${TOKEN}` }, payload: {} })
  t.equal(res.statusCode, 401)
  await t.rejects(buildApp({ dataDir: 'memory://', dashboard: { ingestToken: 'short' } }), /dashboard\.ingestToken/)
  t.equal(INGEST_TOKEN_ENV, 'FASTIFY_MONITOR_INGEST_TOKEN')
})

t.test('postgres: two collectors on one database store a batch sent to both once', { skip: !DIALECTS.includes('postgres') && 'needs the PostgreSQL server' }, async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  const collectors = [await buildApp({ ...store.options, metrics: false, dashboard: { ingestToken: TOKEN } }), await buildApp({ ...store.options, metrics: false, dashboard: { ingestToken: TOKEN } })]
  for (const app of collectors) {
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
  }
  // a sender whose first answer was lost retries through the load balancer and reaches the other collector
  const now = Date.now()
  const answers = await Promise.all(collectors.map(async (app) => (await app.inject({
    method: 'POST', url: '/dashboard/api/ingest', headers: { authorization: `Bearer ${TOKEN}` }, payload: batchOf('shared-1', now)
  })).json()))
  t.same(answers.map((a) => a.stored).sort(), [false, true], 'one stored it, the other found it stored')
  t.equal((await serviceRows(collectors[0]!.monitor.db)).length, 3, 'its requests once')
})

t.test('the README\'s JSON Schema of an ingest batch is the one the route validates with', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const block = /<summary>The ingest batch's JSON Schema[^\n]*\n\n```json\n([\s\S]*?)\n```/.exec(readme)
  t.ok(block, 'the README has the schema')
  const { $schema, ...documented } = JSON.parse(block![1]!) as Record<string, unknown>
  t.equal($schema, 'https://json-schema.org/draft-07/schema')
  t.same(documented, JSON.parse(JSON.stringify(INGEST_BATCH)), 'equal to INGEST_BATCH')
})
