import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { Writable } from 'node:stream'
import monitor, { type MonitorOptions } from '../lib/index.js'
import { insertRequests, type SeedRequest } from '../lib/db/seed.js'
import { ROLLUP_RELATIVE_ERROR } from '../lib/db/rollup.js'
import { breakdown } from '../lib/queries/performance.js'
import { DIALECTS, backend, readyApp, until } from './helpers.js'

const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const GUEST = { username: 'viewer', password: 'viewer-password', role: 'guest' as const }
const EXPORT_TOKEN = 'export-token-0123456789'
const DAY_MS = 86_400_000

async function dashboardApp (options: MonitorOptions, dashboard: Record<string, unknown> = {}, logStream?: Writable, users = 2): Promise<FastifyInstance> {
  const app = Fastify({ logger: logStream === undefined ? false : { level: 'warn', stream: logStream } })
  await app.register(monitor, {
    flushIntervalMs: 20,
    levelPollIntervalMs: 100,
    appVersion: 'v-live',
    metrics: false,
    dashboard: { users: [ADMIN, GUEST], sessionSecret: 's'.repeat(40), exportToken: EXPORT_TOKEN, ...dashboard },
    ...options
  })
  app.get('/api/items/:id', async () => 'item')
  app.get('/api/orders', async () => 'orders')
  app.get('/other', async () => 'other')
  await app.ready()
  await app.monitor.ready
  // users are provisioned once the database is ready
  await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('id').execute()).length >= users)
  return app
}

interface Session { cookie: string, csrf: string }

async function login (app: FastifyInstance, user: { username: string, password: string }): Promise<Session> {
  const res = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: user.username, password: user.password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return { cookie: String(res.headers['set-cookie']).split(';')[0]!, csrf: res.json().csrfToken }
}

async function get (app: FastifyInstance, session: Session | undefined, url: string): Promise<{ status: number, body: any }> {
  const res = await app.inject({ url: `/dashboard/api${url}`, headers: session === undefined ? {} : { cookie: session.cookie } })
  return { status: res.statusCode, body: res.body.length > 0 ? res.json() : undefined }
}

async function endpointId (app: FastifyInstance, route: string): Promise<number> {
  const row = await app.monitor.db.selectFrom('endpoint').select('id').where('route', '=', route).executeTakeFirstOrThrow()
  return row.id
}

/** percentile_disc: the first value whose cumulative share reaches q. */
function percentileDisc (values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!
}

/** percentile_cont: linear interpolation between the closest ranks. */
function percentileCont (values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const pos = q * (sorted.length - 1)
  const lo = Math.floor(pos)
  return sorted[lo]! + (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!) * (pos - lo)
}

function within (t: { ok: (value: boolean, message: string) => unknown }, actual: number, exact: number, message: string): void {
  t.ok(Math.abs(actual - exact) <= exact * ROLLUP_RELATIVE_ERROR + 1e-9, `${message}: ${actual} within ${ROLLUP_RELATIVE_ERROR * 100}% of ${exact}`)
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: every API route against ground truth`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await dashboardApp(store.options)
    t.teardown(() => app.close())
    const items = await endpointId(app, '/api/items/:id')
    const orders = await endpointId(app, '/api/orders')
    const other = await endpointId(app, '/other')

    const now = Date.now()
    const todayStart = Math.floor(now / DAY_MS) * DAY_MS
    const todayTime = new Date(Math.max(todayStart + 1_000, now - 60_000))
    // deterministic log-normal-ish durations
    let seed = 7
    const random = (): number => { seed = (seed * 48271) % 2147483647; return seed / 2147483647 }
    const rows: SeedRequest[] = []
    const itemsToday: number[] = []
    const itemsWeek: number[] = []
    const itemsAll: number[] = []
    const ago = (i: number): number => i % 3 === 0 ? 0 : i % 3 === 1 ? 3 : 20 // days
    for (let i = 0; i < 600; i++) {
      const durationMs = Math.exp(1 + 2 * random())
      const daysAgo = ago(i)
      const time = daysAgo === 0 ? todayTime : new Date(todayStart - daysAgo * DAY_MS + (i % 24) * 3_600_000)
      const statusCode = i % 10 === 0 ? 500 : i % 10 === 1 ? 404 : 200
      rows.push({ endpointId: items, time, durationMs, statusCode, version: i < 300 ? 'v1' : 'v2', groupBy: `user${i % 4}`, ip: `10.0.0.${i % 3}` })
      if (daysAgo === 0) itemsToday.push(durationMs)
      if (daysAgo <= 3) itemsWeek.push(durationMs)
      itemsAll.push(durationMs)
    }
    rows.push({ endpointId: orders, time: todayTime, durationMs: 5, statusCode: 201, version: 'v1', groupBy: '<script>alert(1)</script>', ip: '::1' })
    await insertRequests(app.monitor.db, rows)
    const admin = await login(app, ADMIN)

    // overview: counts exact, medians within the rollups' error
    const overview = await get(app, admin, '/overview?tz=UTC')
    t.equal(overview.status, 200)
    const itemRow = overview.body.find((e: { id: number }) => e.id === items)
    const count = (filter: (i: number) => boolean): number => rows.filter((r, i) => r.endpointId === items && filter(i)).length
    t.equal(itemRow.today.hits, itemsToday.length)
    t.equal(itemRow.week.hits, itemsWeek.length)
    t.equal(itemRow.allTime.hits, 600)
    t.equal(itemRow.allTime.serverErrors, count((i) => i % 10 === 0))
    t.equal(itemRow.allTime.clientErrors, count((i) => i % 10 === 1))
    t.equal(itemRow.today.serverErrors, count((i) => i % 10 === 0 && i % 3 === 0))
    within(t, itemRow.today.median, percentileDisc(itemsToday, 0.5), 'median today')
    within(t, itemRow.week.median, percentileDisc(itemsWeek, 0.5), 'median of 7 days')
    within(t, itemRow.allTime.median, percentileDisc(itemsAll, 0.5), 'median of all time')
    t.equal(overview.body.find((e: { id: number }) => e.id === other).allTime.hits, 0, 'an endpoint without requests is listed with zeros')
    t.equal(overview.body.find((e: { id: number }) => e.id === other).allTime.median, null)
    const filtered = await get(app, admin, '/overview?prefix=/api/')
    t.same(filtered.body.map((e: { route: string }) => e.route).sort(), ['/api/items/:id', '/api/orders'], 'route prefix filter')
    const literal = await get(app, admin, `/overview?prefix=${encodeURIComponent('%')}`)
    t.same(literal.body, [], 'the prefix is literal: % matches nothing')

    // performance: every quantile within the documented error of percentile_disc on the raw rows
    const from = new Date(todayStart - 30 * DAY_MS).toISOString()
    const to = new Date(now + 60_000).toISOString()
    const performance = await get(app, admin, `/performance?from=${from}&to=${to}`)
    const itemPerf = performance.body.find((e: { endpointId: number }) => e.endpointId === items)
    t.equal(itemPerf.count, 600)
    for (const [name, q] of [['q1', 0.25], ['median', 0.5], ['q3', 0.75], ['p95', 0.95], ['p99', 0.99], ['max', 1]] as const) {
      within(t, itemPerf[name], percentileDisc(itemsAll, q), name)
    }
    within(t, itemPerf.min, Math.min(...itemsAll), 'min')

    // endpoint detail: per-version distributions from rollups, statuses per day
    const detail = await get(app, admin, `/endpoints/${items}?from=${from}&to=${to}`)
    t.equal(detail.status, 200)
    const v1 = rows.filter((r) => r.endpointId === items && r.version === 'v1').map((r) => r.durationMs)
    const byVersion = Object.fromEntries(detail.body.byVersion.map((v: { version: string }) => [v.version, v]))
    t.equal(byVersion.v1.count, 300)
    t.equal(byVersion.v2.count, 300)
    within(t, byVersion.v1.median, percentileDisc(v1, 0.5), 'v1 median')
    t.equal(detail.body.statusCodes.reduce((sum: number, s: { hits: number }) => sum + s.hits, 0), 600)
    t.equal(detail.body.load.reduce((sum: number, s: { hits: number }) => sum + s.hits, 0), 600)
    t.equal((await get(app, admin, `/endpoints/999999?from=${from}&to=${to}`)).status, 404)

    // breakdowns from raw rows are exact
    const groups = await get(app, admin, `/endpoints/${items}/breakdown?by=group_by&from=${from}&to=${to}`)
    const user0 = rows.filter((r, i) => r.endpointId === items && i % 4 === 0).map((r) => r.durationMs)
    const user0Row = groups.body.distributions.find((d: { key: string }) => d.key === 'user0')
    t.equal(user0Row.count, user0.length)
    t.ok(Math.abs(user0Row.median - percentileCont(user0, 0.5)) < 1e-6, 'group median is exact')
    t.equal(groups.body.matrix.length, 8, '2 versions × 4 users')
    t.equal(groups.body.requests, 600)
    t.equal(groups.body.limited, false)
    // capped: only the newest requests of the range are read
    const newest = [...rows.keys()].filter((i) => rows[i]!.endpointId === items)
      .sort((a, b) => rows[b]!.time.getTime() - rows[a]!.time.getTime())
    const capped = await breakdown(app.monitor.db, { from: new Date(from), to: new Date(to), tz: 'UTC' }, items, 'group_by', 200)
    t.equal(capped.requests, 200)
    t.equal(capped.limited, true)
    t.equal(capped.distributions.reduce((sum, d) => sum + d.count, 0), 200, 'the distributions cover the 200 read')
    t.ok(newest.slice(0, 200).every((i) => rows[i]!.time.getTime() === todayTime.getTime() || ago(i) === 3), 'which are the newest (today and 3 days ago)')
    const cell = groups.body.matrix.find((c: { version: string, key: string }) => c.version === 'v2' && c.key === 'user1')
    const cellValues = rows.filter((r, i) => r.endpointId === items && r.version === 'v2' && i % 4 === 1).map((r) => r.durationMs)
    t.equal(cell.hits, cellValues.length)
    t.ok(Math.abs(cell.median - percentileCont(cellValues, 0.5)) < 1e-6, 'matrix median is exact')
    const ips = await get(app, admin, `/endpoints/${items}/breakdown?by=ip&from=${from}&to=${to}`)
    t.same(ips.body.distributions.map((d: { key: string }) => d.key).sort(), ['10.0.0.0', '10.0.0.1', '10.0.0.2'])
    const hostile = await get(app, admin, `/endpoints/${orders}/breakdown?by=group_by&from=${from}&to=${to}`)
    t.equal(hostile.body.distributions[0].key, '<script>alert(1)</script>', 'stored and returned as data')

    // versions
    const versions = await get(app, admin, `/versions?from=${from}&to=${to}`)
    const byName = Object.fromEntries(versions.body.versions.map((v: { version: string }) => [v.version, v]))
    t.equal(byName.v1.hits, 301)
    t.equal(byName.v2.hits, 300)
    t.ok(typeof byName.v1.firstSeen === 'string')
    t.equal(versions.body.daily.reduce((sum: number, d: { hits: number }) => sum + d.hits, 0), 601)

    // admin: level change reaches the running instance; config; delete old data
    const level = await app.inject({ method: 'PUT', url: `/dashboard/api/endpoints/${items}/level`, headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf }, payload: { level: 0 } })
    t.equal(level.statusCode, 200)
    t.equal(app.monitor.endpoints().find((e) => e.route === '/api/items/:id')?.level, 0, 'the running instance uses the new level at once')
    const config = await get(app, admin, '/config')
    t.equal(config.body.version, 'v-live')
    t.equal(config.body.database, dialect)
    t.ok(config.body.tables.some((table: { table: string }) => table.table === 'request'))
    // a real figure on PGlite (no statistics: reltuples stays -1) and on a server before its first ANALYZE
    const counted = await app.monitor.db.selectFrom('request').select(({ fn }) => fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
    const endpoints = await app.monitor.db.selectFrom('endpoint').select(({ fn }) => fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
    const tableRow = (name: string): { rows: number, rowsEstimated: boolean } => config.body.tables.find((table: { table: string }) => table.table === name)
    t.equal(tableRow('request').rows, Number(counted.n), 'request rows: the exact count of a small table')
    t.equal(tableRow('request').rowsEstimated, false, 'labelled exact')
    t.equal(tableRow('endpoint').rows, Number(endpoints.n), 'endpoint rows too')
    const cutoff = new Date(todayStart - 10 * DAY_MS).toISOString()
    const deleted = await app.inject({ method: 'POST', url: '/dashboard/api/retention/delete', headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf }, payload: { before: cutoff } })
    t.equal(deleted.statusCode, 200)
    t.equal(deleted.json().deletedRequests + 0, deleted.json().deletedRequests)
    const after = await get(app, admin, '/overview?tz=UTC')
    t.equal(after.body.find((e: { id: number }) => e.id === items).allTime.hits, 400, 'the 200 rows from 20 days ago are gone from the rollups')
    const raw = await app.monitor.db.selectFrom('request').select(({ fn }) => fn.countAll<string>().as('n')).where('endpoint_id', '=', items).executeTakeFirstOrThrow()
    t.equal(Number(raw.n), 400, 'and from the raw rows')
    t.ok(deleted.json().droppedPartitions >= 1, 'whole days went by dropping their partitions')
    const oldDay = new Date(todayStart - 20 * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')
    const partitions = await app.monitor.db.selectFrom(sql<{ relname: string }>`pg_class`.as('c')).select('relname')
      .where('relname', '=', `${store.prefix}request_p${oldDay}`).execute()
    t.same(partitions, [], `the partition of the day 20 days ago is gone`)
  })

  t.test(`${dialect}: hourly load counts local days and hours, across a DST change`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await dashboardApp(store.options)
    t.teardown(() => app.close())
    const items = await endpointId(app, '/api/items/:id')
    // Berlin leaves summer time on 2026-10-25 at 01:00 UTC: 02:30 local happens twice
    const times = ['2026-10-24T22:30:00Z', '2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', '2026-10-25T23:30:00Z']
    await insertRequests(app.monitor.db, times.map((time) => ({ endpointId: items, time: new Date(time), durationMs: 10, statusCode: 200, version: 'v1' })))
    const admin = await login(app, ADMIN)
    const range = 'from=2026-10-20T00:00:00Z&to=2026-10-30T00:00:00Z'
    const berlin = await get(app, admin, `/load?${range}&tz=Europe/Berlin`)
    t.same(berlin.body, [
      { day: '2026-10-25', hour: 0, hits: 1 }, // 22:30 UTC on the 24th is already the 25th in Berlin
      { day: '2026-10-25', hour: 2, hits: 2 }, // 02:30 CEST and 02:30 CET
      { day: '2026-10-26', hour: 0, hits: 1 }
    ])
    const utc = await get(app, admin, `/load?${range}&endpoint=${items}`)
    t.same(utc.body, [
      { day: '2026-10-24', hour: 22, hits: 1 },
      { day: '2026-10-25', hour: 0, hits: 1 },
      { day: '2026-10-25', hour: 1, hits: 1 },
      { day: '2026-10-25', hour: 23, hits: 1 }
    ], 'UTC by default')
    const kolkata = await get(app, admin, `/load?${range}&tz=Asia/Kolkata`)
    t.equal(kolkata.body.reduce((sum: number, c: { hits: number }) => sum + c.hits, 0), 4)
    t.equal((await get(app, admin, `/load?${range}&tz=Mars/Olympus`)).status, 400, 'an unknown time zone is a 400')
  })

  t.test(`${dialect}: authorisation matrix, CSRF, rate limit, hostile parameters`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await dashboardApp(store.options, { loginRateLimit: { max: 3, timeWindowMs: 60_000 } })
    t.teardown(() => app.close())
    const items = await endpointId(app, '/api/items/:id')
    const admin = await login(app, ADMIN)
    const guest = await login(app, GUEST)
    const reads = ['/session', '/overview', '/load', '/versions', '/performance', `/endpoints/${items}`, `/endpoints/${items}/breakdown?by=ip`, '/config']
    for (const url of reads) {
      t.equal((await get(app, undefined, url)).status, 401, `anonymous GET ${url}`)
      t.equal((await get(app, guest, url)).status, 200, `guest GET ${url}`)
      t.equal((await get(app, admin, url)).status, 200, `admin GET ${url}`)
    }
    t.equal((await get(app, guest, '/users')).status, 403, 'guests cannot list users')
    t.equal((await get(app, admin, '/users')).status, 200)
    const writes: Array<[string, string, Record<string, unknown>]> = [
      ['PUT', `/endpoints/${items}/level`, { level: 2 }],
      ['POST', '/retention/delete', { before: '2000-01-01T00:00:00Z' }],
      ['POST', '/users', { username: 'newbie', password: 'newbie-password', role: 'guest' }],
      ['PUT', '/users/newbie/password', { password: 'another-password' }],
      ['DELETE', '/users/newbie', {}]
    ]
    for (const [method, url, payload] of writes) {
      const send = async (session: Session | undefined, csrf?: string): Promise<number> => (await app.inject({
        method: method as 'PUT',
        url: `/dashboard/api${url}`,
        headers: { ...(session === undefined ? {} : { cookie: session.cookie }), ...(csrf === undefined ? {} : { 'x-csrf-token': csrf }) },
        ...(method === 'DELETE' ? {} : { payload })
      })).statusCode
      t.equal(await send(undefined), 403, `anonymous ${method} ${url} (no CSRF token)`)
      t.equal(await send(admin), 403, `admin ${method} ${url} without a CSRF token`)
      t.equal(await send(admin, 'forged-token'), 403, `admin ${method} ${url} with a wrong CSRF token`)
      t.equal(await send(admin, guest.csrf), 403, `admin ${method} ${url} with another session's CSRF token`)
      t.equal(await send(guest, guest.csrf), 403, `guest ${method} ${url}`)
      t.equal(await send(admin, admin.csrf), method === 'POST' && url === '/users' ? 201 : 200, `admin ${method} ${url}`)
    }
    // a guest may change their own password, not others'
    const own = await app.inject({ method: 'PUT', url: '/dashboard/api/users/viewer/password', headers: { cookie: guest.cookie, 'x-csrf-token': guest.csrf }, payload: { password: 'viewer-password', currentPassword: 'viewer-password' } })
    t.equal(own.statusCode, 200)
    const lastAdmin = await app.inject({ method: 'DELETE', url: '/dashboard/api/users/root', headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf } })
    t.equal(lastAdmin.statusCode, 409, 'the last admin cannot be deleted')

    // logout ends the session
    const other = await login(app, GUEST)
    await app.inject({ method: 'POST', url: '/dashboard/api/logout', headers: { cookie: other.cookie, 'x-csrf-token': other.csrf } })
    const cookie = String((await app.inject({ method: 'POST', url: '/dashboard/api/logout', headers: { cookie: other.cookie, 'x-csrf-token': other.csrf } })).headers['set-cookie'] ?? '')
    t.ok(cookie === '' || /Max-Age=0|Expires=Thu, 01 Jan 1970/.test(cookie), 'logout clears the cookie')

    // hostile parameters: rejected by schema or inert; no SQL error reaches the client
    const injection = "'; drop table fmd_request; --"
    const attempts = [
      `/overview?tz=${encodeURIComponent(injection)}`,
      `/overview?prefix=${encodeURIComponent(injection)}`,
      `/load?from=${encodeURIComponent(injection)}`,
      `/endpoints/${encodeURIComponent('1 or 1=1')}`,
      `/endpoints/${items}/breakdown?by=${encodeURIComponent('ip; select 1')}`,
      `/load?tz=${encodeURIComponent('UTC\' or \'1')}`
    ]
    for (const url of attempts) {
      const res = await get(app, admin, url)
      t.ok(res.status === 400 || res.status === 200, `${url} → ${res.status}`)
      t.notMatch(JSON.stringify(res.body), /syntax|relation|postgres|pglite|SELECT/i, 'no database internals in the reply')
    }
    // (from another client: the three logins above used up this one's allowance)
    const login404 = await app.inject({ method: 'POST', url: '/dashboard/api/login', remoteAddress: '198.51.100.7', payload: { username: injection, password: injection } })
    t.equal(login404.statusCode, 401)
    t.ok((await app.monitor.db.selectFrom('request').select('id').limit(1).execute()) !== undefined, 'the requests table is still there')

    // brute force: the limit counts every attempt of a client in the window
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      statuses.push((await app.inject({ method: 'POST', url: '/dashboard/api/login', remoteAddress: '203.0.113.9', payload: { username: 'root', password: `guess-${i}` } })).statusCode)
    }
    t.same(statuses, [401, 401, 401, 429, 429], 'the fourth attempt on the account must wait')
  })
}

t.test('the first start without users creates an admin with a random password, logged once', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } })
  const app = await dashboardApp(store.options, { users: [] }, stream, 1)
  t.teardown(() => app.close())
  t.ok(await until(() => lines.some((line) => line.includes('created dashboard user'))), 'the password is logged')
  const logged = lines.filter((line) => line.includes('created dashboard user'))
  t.equal(logged.length, 1, 'once')
  const password = /password (\S+) \(shown once/.exec(logged[0]!)![1]!
  t.ok(password.length >= 20, 'a long random password')
  const res = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: 'admin', password } })
  t.equal(res.statusCode, 200, 'and it logs in')
  const wrong = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: 'admin', password: 'admin' } })
  t.equal(wrong.statusCode, 401, 'there is no default password')
})

t.test('export API: bearer token, JSON and CSV, keyset paging', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const app = await dashboardApp(store.options)
  t.teardown(() => app.close())
  const items = await endpointId(app, '/api/items/:id')
  const base = Date.parse('2026-11-01T00:00:00Z')
  await insertRequests(app.monitor.db, Array.from({ length: 25 }, (_, i) => ({
    endpointId: items, time: new Date(base + i * 1000), durationMs: i + 1, statusCode: 200, version: 'v1', groupBy: i === 0 ? '=cmd|calc' : `u${i}`, ip: '10.1.1.1'
  })))
  const url = '/dashboard/api/export/requests?from=2026-10-31T00:00:00Z&to=2026-11-02T00:00:00Z&limit=10'
  t.equal((await app.inject({ url })).statusCode, 401, 'no token')
  t.equal((await app.inject({ url, headers: { authorization: 'Bearer wrong-token-0123456789' } })).statusCode, 401, 'wrong token')
  const auth = { authorization: `Bearer ${EXPORT_TOKEN}` }
  const seen: number[] = []
  let next = ''
  for (let page = 0; page < 5; page++) {
    const res = await app.inject({ url: url + next, headers: auth })
    t.equal(res.statusCode, 200)
    const body = res.json()
    seen.push(...body.rows.map((r: { durationMs: number }) => r.durationMs))
    if (body.next === null) break
    next = `&afterTime=${encodeURIComponent(body.next.afterTime)}&afterId=${body.next.afterId}`
  }
  t.same(seen, Array.from({ length: 25 }, (_, i) => i + 1), 'every row exactly once, in order')
  const csv = await app.inject({ url: `${url}&format=csv`, headers: auth })
  t.match(csv.headers['content-type'], /text\/csv/)
  const lines = csv.body.trim().split('\r\n')
  t.equal(lines[0], 'id,method,route,timeRequested,durationMs,statusCode,version,groupBy,ip,project')
  t.match(lines[1], /,default$/, 'each row names its project')
  t.equal(lines.length, 11)
  t.match(lines[1], /,'=cmd\|calc,/, 'a formula-looking value is neutralised for spreadsheets')
  const rollups = await app.inject({ url: '/dashboard/api/export/rollups?from=2026-10-31T00:00:00Z&to=2026-11-02T00:00:00Z', headers: auth })
  t.same(rollups.json().rows.map((r: { hits: number, project: string }) => [r.hits, r.project]), [[25, 'default']])
  // another project's rows: kept apart by `project`
  await app.monitor.db.insertInto('project').values({ name: 'billing' }).execute()
  const { id: billingId } = await app.monitor.db.selectFrom('project').select('id').where('name', '=', 'billing').executeTakeFirstOrThrow()
  const { id: billingItems } = await app.monitor.db.insertInto('endpoint').values({ project_id: billingId, method: 'GET', route: '/api/items/:id', monitor_level: 1 }).returning('id').executeTakeFirstOrThrow()
  await insertRequests(app.monitor.db, [{ endpointId: billingItems, time: new Date(base + 30_000), durationMs: 99, statusCode: 200, version: 'v1', groupBy: null, ip: null }])
  const billing = await app.inject({ url: `${url}&project=${billingId}`, headers: auth })
  t.same(billing.json().rows.map((r: { durationMs: number, project: string, route: string }) => [r.project, r.route, r.durationMs]), [['billing', '/api/items/:id', 99]], 'project=<billing\'s id>: its one request')
  t.equal((await app.inject({ url: `${url}&project=1`, headers: auth })).json().rows.length, 10, 'project=1 (default): the first page of its 25')
  const billingRollups = await app.inject({ url: `/dashboard/api/export/rollups?from=2026-10-31T00:00:00Z&to=2026-11-02T00:00:00Z&project=${billingId}`, headers: auth })
  t.same(billingRollups.json().rows.map((r: { hits: number, project: string }) => [r.hits, r.project]), [[1, 'billing']])
  t.equal((await app.inject({ url: `${url}&project=${encodeURIComponent('<b>')}`, headers: auth })).statusCode, 400, 'a project that is not an id is refused')
  t.equal((await app.inject({ url: '/dashboard/api/session' })).statusCode, 401, 'the token opens nothing but the export')
})

t.test('the dashboard can be turned off, and its options are checked', async (t) => {
  const app = Fastify()
  await app.register(monitor, { dataDir: 'memory://', dashboard: false, metrics: false })
  t.teardown(() => app.close())
  await app.ready()
  t.equal((await app.inject('/dashboard/api/overview')).statusCode, 404)
  for (const [dashboard, message] of [
    [{ prefix: 'dash' }, /"dashboard.prefix" option/],
    [{ users: [{ username: 'a b', password: 'long-enough' }] }, /"dashboard.users\[0\].username" option/],
    [{ users: [{ username: 'ann', password: 'short' }] }, /"dashboard.users\[0\].password" option/],
    [{ users: [{ username: 'ann', passwordEnv: 'FMD_TEST_UNSET_PASSWORD' }] }, /FMD_TEST_UNSET_PASSWORD is unset/],
    [{ sessionSecret: 'too-short' }, /"dashboard.sessionSecret" option/],
    [{ exportToken: 'short' }, /"dashboard.exportToken" option/],
    [{ colour: 'red' }, /"dashboard.colour" option is not an option/]
  ] as const) {
    const bad = Fastify()
    await t.rejects(async () => { await bad.register(monitor, { dataDir: 'memory://', dashboard: dashboard as never }); await bad.ready() }, message)
  }
})

for (const dialect of DIALECTS) {
  t.test(`${dialect}: the version × group matrix counts requests without a group as one row, as the distributions do`, async (t) => {
    const { app, endpoints: [id] } = await readyApp(t, dialect)
    const time = new Date()
    const request = (groupBy: string | null, version: string, durationMs: number): SeedRequest => ({ endpointId: id!, time, durationMs, statusCode: 200, version, groupBy, ip: null })
    await insertRequests(app.monitor.db, [request('alice', 'v1', 10), request(null, 'v1', 20), request(null, 'v1', 40), request(null, 'v2', 5)])
    const found = await breakdown(app.monitor.db, { from: new Date(time.getTime() - 60_000), to: new Date(time.getTime() + 60_000), tz: 'UTC' }, id!, 'group_by')
    t.same(found.distributions.map((d) => [d.key, d.count]), [[null, 3], ['alice', 1]])
    t.same(found.matrix.map((c) => [c.version, c.key, c.hits, c.median]), [['v1', 'alice', 1, 10], ['v1', null, 2, 30], ['v2', null, 1, 5]],
      'every request of the distributions is in the matrix (a trial found the matrix short of them)')
  })
}
