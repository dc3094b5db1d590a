import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import monitor, { type MonitorOptions } from '../../lib/index.js'
import { CookieJar, dashboardLogin } from '../cookie-jar.js'
import { DIALECTS, backend, until } from '../helpers.js'
import { TcpProxy } from '../tcp-proxy.js'
import { openDashboard } from '../browser.js'

// Issue #12.3: while the database was not ready or down, the dashboard answered
// 500 {"error":"internal error"}; and the configured users could not log in for ~0.4 s after `ready`.
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }

async function dashboardApp (options: MonitorOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(monitor, { ...options, flushIntervalMs: 20, retryMaxDelayMs: 200, metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
  await app.ready()
  return app
}

function expectUnavailable (t: Test, res: { statusCode: number, headers: Record<string, unknown>, body: string }, what: string): void {
  t.equal(res.statusCode, 503, `${what}: 503`)
  t.ok(Number(res.headers['retry-after']) > 0, `${what}: with Retry-After`)
  t.match(res.body, /monitoring database is unavailable/, `${what}: saying why`)
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: before the database is ready the API answers 503, and configured users log in as soon as ready resolves`, async (t) => {
    // PGlite takes seconds to open; a PostgreSQL server is kept away by a cut proxy
    const proxy = dialect === 'postgres' ? await new TcpProxy().start() : undefined
    t.teardown(async () => await proxy?.close())
    proxy?.cut()
    const store = await backend(dialect, proxy === undefined ? {} : { database: proxy.url() })
    t.teardown(store.cleanup)
    const app = await dashboardApp(store.options)
    t.teardown(() => app.close())
    let ready = false
    void app.monitor.ready.then(() => { ready = true })
    const early = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: ADMIN })
    if (ready) t.pass('(the database opened before the first login: nothing to check there)')
    else expectUnavailable(t, early, 'a login before the database is ready')
    proxy?.restore()
    await app.monitor.ready
    const jar = new CookieJar()
    await dashboardLogin(app, jar, ADMIN.username, ADMIN.password)
    t.pass('the configured user logs in right when ready resolves')
    t.equal((await jar.inject(app, { url: '/dashboard/api/overview' })).statusCode, 200)
  })
}

t.test('postgres: during an outage the API answers 503 and recovers with the database', { skip: !DIALECTS.includes('postgres') && 'needs the PostgreSQL backend' }, async (t) => {
  const proxy = await new TcpProxy().start()
  t.teardown(() => proxy.close())
  const store = await backend('postgres', { database: proxy.url() })
  t.teardown(store.cleanup)
  const app = await dashboardApp(store.options)
  t.teardown(() => app.close())
  await app.monitor.ready
  const jar = new CookieJar()
  await dashboardLogin(app, jar, ADMIN.username, ADMIN.password)
  proxy.cut()
  for (const url of ['/overview', '/versions', '/config']) {
    expectUnavailable(t, await jar.inject(app, { url: `/dashboard/api${url}` }), `GET ${url} during the outage`)
  }
  expectUnavailable(t, await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: ADMIN }), 'a login during the outage')
  await t.rejects(app.monitor.db.selectFrom('endpoint').selectAll().execute(), { code: 'FST_MONITORING_DATABASE_UNAVAILABLE', statusCode: 503 }, 'app.monitor.db says so with a coded error')
  proxy.restore()
  t.ok(await until(async () => (await jar.inject(app, { url: '/dashboard/api/overview' })).statusCode === 200, 30_000, 200), 'the API answers again once the database is back')
  t.equal((await jar.inject(app, { url: '/dashboard/api/session' })).statusCode, 200, 'the session survived the outage')
})

t.test('postgres: the dashboard says plainly that the database is unavailable, and recovers by itself', { skip: !DIALECTS.includes('postgres') && 'needs the PostgreSQL backend' }, async (t) => {
  const proxy = await new TcpProxy().start()
  t.teardown(() => proxy.close())
  const store = await backend('postgres', { database: proxy.url() })
  t.teardown(store.cleanup)
  const app = await dashboardApp(store.options)
  t.teardown(() => app.close())
  await app.monitor.ready
  const page = await openDashboard(t, app, ADMIN, '#/overview')
  await page.waitForSelector('[data-testid=overview-table], [data-testid=empty]')
  proxy.cut()
  await page.goto(page.url().replace('#/overview', '#/versions'))
  const notice = await page.waitForSelector('[data-testid=unavailable]', { timeout: 60_000 })
  t.match(await notice.textContent(), /monitoring database is unavailable/i, 'the view says the database is unavailable, not "internal error"')
  proxy.restore()
  // the view asks again after Retry-After, without a reload
  await page.waitForSelector('[data-testid=unavailable]', { state: 'detached', timeout: 60_000 })
  t.equal(await page.locator('text=internal error').count(), 0)
  t.equal(await page.locator('input[name=username]').count(), 0, 'still logged in')
})
