import t from 'tap'
import { mkdirSync } from 'node:fs'
import Fastify, { type FastifyInstance } from 'fastify'
import monitor, { type MonitorOptions } from '../lib/index.js'
import { insertRequests, type SeedRequest } from '../lib/db/seed.js'
import { ONE_DIALECT, backend, until } from './helpers.js'
import { canvasesDrawn, launchChromium, logIn } from './browser.js'

const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const GUEST = { username: 'viewer', password: 'viewer-password', role: 'guest' as const }
const HOSTILE_ROUTE = '/x/<img src=x onerror="window.__xss=1">'
const HOSTILE_GROUP = '<script>window.__xss=2</script>'
const HOSTILE_VERSION = '<img src=x onerror="window.__xss=3">ünïcødé-版本-'.padEnd(90, 'ß')
const SCREENSHOTS = new URL('./screenshots/', import.meta.url).pathname
mkdirSync(SCREENSHOTS, { recursive: true })

async function uiApp (options: MonitorOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(monitor, { ...options, appVersion: 'v-ui', metrics: false, flushIntervalMs: 20, dashboard: { users: [ADMIN, GUEST], sessionSecret: 's'.repeat(40) } })
  app.get('/api/items/:id', async () => 'item')
  app.get(HOSTILE_ROUTE, async () => 'x')
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('id').execute()).length >= 2)
  return app
}

for (const dialect of ONE_DIALECT) {
  t.test(`${dialect}: the dashboard in Chromium shows the API's numbers, draws every chart and keeps hostile data inert`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await uiApp(store.options)
    t.teardown(() => app.close())
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

    const ids = Object.fromEntries((await app.monitor.db.selectFrom('endpoint').select(['id', 'route']).execute()).map((e) => [e.route, e.id]))
    const now = Date.now()
    const rows: SeedRequest[] = []
    for (let i = 0; i < 240; i++) {
      rows.push({
        endpointId: ids['/api/items/:id']!,
        time: new Date(now - (i % 5) * 86_400_000 - 60_000),
        durationMs: 5 + (i % 17) * 3,
        statusCode: i % 12 === 0 ? 500 : i % 12 === 1 ? 404 : 200,
        version: i < 120 ? 'v1' : HOSTILE_VERSION,
        groupBy: i % 3 === 0 ? HOSTILE_GROUP : `user${i % 3}`,
        ip: `10.0.0.${i % 4}`
      })
    }
    rows.push({ endpointId: ids[HOSTILE_ROUTE]!, time: new Date(now - 60_000), durationMs: 3, statusCode: 200, version: 'v1', groupBy: HOSTILE_GROUP })
    await insertRequests(app.monitor.db, rows)

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    const page = await context.newPage()
    const dialogs: string[] = []
    page.on('dialog', (dialog) => { dialogs.push(dialog.message()); void dialog.dismiss() })
    const pageErrors: string[] = []
    page.on('pageerror', (err) => pageErrors.push(err.message))

    // login, then the overview's numbers are the API's
    await logIn(page, base, ADMIN)
    await page.waitForSelector('[data-testid=overview-table]')
    const api = await (await page.request.get(`${base}/dashboard/api/overview?tz=UTC`)).json() as Array<{ id: number, route: string, allTime: { hits: number }, today: { hits: number }, week: { hits: number } }>
    const items = api.find((e) => e.route === '/api/items/:id')!
    t.equal(items.allTime.hits, 240, 'the API counts what was stored')
    await page.goto(`${base}/dashboard/#/overview?tz=UTC`)
    await page.waitForSelector(`tr[data-endpoint="${items.id}"]`)
    for (const window of ['today', 'week', 'all'] as const) {
      const shown = await page.textContent(`tr[data-endpoint="${items.id}"] td[data-window=${window}] [data-testid=hits]`)
      const expected = window === 'all' ? items.allTime.hits : items[window].hits
      t.equal(Number(shown!.replace(/,/g, '')), expected, `overview ${window} hits`)
    }
    t.match(await page.textContent(`tr[data-endpoint="${items.id}"] td[data-window=all]`), /20 5xx/, '5xx badge')
    t.equal(await page.locator('[data-testid=level-select]').count(), api.length, 'an admin gets a level selector per endpoint')
    await page.screenshot({ path: `${SCREENSHOTS}${dialect}-overview.png`, fullPage: true })

    // sorting and filtering are in the URL
    await page.click('th button:has-text("All time")')
    await page.waitForFunction(() => location.hash.includes('sort=all'))
    await page.fill('[data-testid=filter]', 'items')
    t.equal(await page.locator('tbody tr').count(), 1, 'the filter keeps matching routes')

    // every view: charts drawn
    const views: Array<[string, string]> = [
      ['load', '#/load?range=30d&tz=UTC'],
      ['versions', '#/versions?range=30d&tz=UTC'],
      ['performance', '#/performance?range=30d&tz=UTC'],
      ['endpoint-load', `#/endpoint/${items.id}?range=30d&tz=UTC&tab=load`],
      ['endpoint-versions', `#/endpoint/${items.id}?range=30d&tz=UTC&tab=versions`],
      ['endpoint-users', `#/endpoint/${items.id}?range=30d&tz=UTC&tab=users`],
      ['endpoint-ips', `#/endpoint/${items.id}?range=30d&tz=UTC&tab=ips`],
      ['endpoint-status', `#/endpoint/${items.id}?range=30d&tz=UTC&tab=status`]
    ]
    for (const [name, hash] of views) {
      await page.goto(`${base}/dashboard/${hash}`)
      await page.waitForSelector('canvas')
      await page.waitForTimeout(150)
      const drawn = await canvasesDrawn(page)
      t.ok(drawn.length > 0 && drawn.every(Boolean), `${name}: ${drawn.length} chart(s) drawn`)
      await page.screenshot({ path: `${SCREENSHOTS}${dialect}-${name}.png`, fullPage: true })
    }
    // numbers in the tables equal the API's and the ground truth (the browser's own /favicon.ico
    // request is real traffic too: it is counted under the unmatched endpoint)
    const range = `from=${new Date(now - 30 * 86_400_000).toISOString()}&to=${new Date(now + 86_400_000).toISOString()}&tz=UTC`
    const apiLoad = await (await page.request.get(`${base}/dashboard/api/load?${range}`)).json() as Array<{ hits: number }>
    await page.goto(`${base}/dashboard/#/load?range=30d&tz=UTC`)
    await page.waitForSelector('[data-testid=load-total]')
    t.equal(Number((await page.textContent('[data-testid=load-total]'))!.replace(/,/g, '')), apiLoad.reduce((sum, c) => sum + c.hits, 0), 'hourly load total is the API\'s')
    await page.goto(`${base}/dashboard/#/endpoint/${items.id}?range=30d&tz=UTC&tab=load`)
    await page.waitForSelector('[data-testid=load-total]')
    t.equal(Number((await page.textContent('[data-testid=load-total]'))!.replace(/,/g, '')), 240, 'the endpoint\'s hourly load total is what was stored')
    const apiVersions = await (await page.request.get(`${base}/dashboard/api/versions?${range}`)).json() as { versions: Array<{ version: string, hits: number }> }
    await page.goto(`${base}/dashboard/#/versions?range=30d&tz=UTC`)
    await page.waitForSelector('[data-testid=version-hits]')
    const shownVersions = await page.locator('[data-testid=versions-table] tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('code')!.textContent, Number(tr.querySelector('[data-testid=version-hits]')!.textContent!.replace(/,/g, ''))]))
    t.same(Object.fromEntries(shownVersions), Object.fromEntries(apiVersions.versions.filter((v) => v.hits > 0).map((v) => [v.version, v.hits])), 'versions table is the API\'s')
    t.equal(Object.fromEntries(shownVersions)[HOSTILE_VERSION], 120, 'a hostile version string is shown as text with its count')
    await page.goto(`${base}/dashboard/#/endpoint/${items.id}?range=30d&tz=UTC&tab=users`)
    await page.waitForSelector('[data-testid=breakdown-key]')
    const keys = await page.locator('[data-testid=breakdown-key]').allTextContents()
    t.ok(keys.includes(HOSTILE_GROUP), 'a <script> group-by value is shown as text')
    // an endpoint at level 1 has no outliers and no profiles: the tabs say why, not "no requests"
    await page.goto(`${base}/dashboard/#/endpoint/${items.id}?range=30d&tz=UTC&tab=outliers`)
    t.match(await (await page.waitForSelector('[data-testid=empty]:has-text("outliers")')).textContent(), /No outliers in this range.*level 2 or 3/, 'the outliers tab explains its empty state')
    await page.goto(`${base}/dashboard/#/endpoint/${items.id}?range=30d&tz=UTC&tab=profiler`)
    t.match(await (await page.waitForSelector('[data-testid=empty]:has-text("profiled")')).textContent(), /No profiled requests yet.*level 3/, 'and so does the profiler tab')
    await page.goto(`${base}/dashboard/#/overview?tz=UTC`)
    await page.waitForSelector('[data-testid=overview-table]')
    t.ok((await page.textContent('[data-testid=overview-table]'))!.includes(HOSTILE_ROUTE), 'an <img onerror> route is shown as text')
    t.equal(await page.locator('[data-testid=overview-table] img').count(), 0, 'and makes no element')
    await page.goto(`${base}/dashboard/#/settings`)
    await page.waitForSelector('[data-testid=users-table]')
    t.equal(await page.textContent('[data-testid=database-kind]'), dialect)
    await page.screenshot({ path: `${SCREENSHOTS}${dialect}-settings.png`, fullPage: true })

    // the level selector changes the level in the running app
    await page.goto(`${base}/dashboard/#/overview?tz=UTC`)
    await page.selectOption(`tr[data-endpoint="${items.id}"] [data-testid=level-select]`, '3')
    t.ok(await until(() => app.monitor.endpoints().find((e) => e.route === '/api/items/:id')?.level === 3), 'level 3 set from the UI')

    // the overview's windows are fixed: no range picker there, which would do nothing
    t.equal(await page.locator('[role=group][aria-label="Time range"]').count(), 0, 'no range picker on the overview')
    // keyboard: the time-range buttons and tabs are reachable and work with Enter
    await page.goto(`${base}/dashboard/#/load?tz=UTC`)
    await page.focus('button:has-text("30 days")')
    await page.keyboard.press('Enter')
    await page.waitForFunction(() => location.hash.includes('range=30d'))
    // back button returns to the previous view
    await page.goto(`${base}/dashboard/#/load?tz=UTC`)
    await page.goto(`${base}/dashboard/#/versions?tz=UTC`)
    await page.goBack()
    await page.waitForFunction(() => location.hash.startsWith('#/load'))
    // dark theme
    await page.click('button[aria-label^="Switch to"]')
    t.ok(['dark', 'light'].includes(await page.evaluate(() => document.documentElement.dataset.theme ?? '')))

    t.same(dialogs, [], 'no dialog opened')
    t.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined, 'no injected script ran')
    t.same(pageErrors, [], 'no script errors')

    // an expired session returns to the login page
    await context.clearCookies()
    await page.goto(`${base}/dashboard/#/performance?tz=UTC`)
    await page.click('a:has-text("Overview")').catch(() => {})
    await page.waitForSelector('input[name=username]')
    t.pass('back at the login page')
    await context.close()

    // a guest sees no admin controls
    const guestContext = await browser.newContext()
    const guestPage = await guestContext.newPage()
    await logIn(guestPage, base, GUEST)
    await guestPage.waitForSelector('[data-testid=overview-table]')
    t.equal(await guestPage.locator('[data-testid=level-select]').count(), 0, 'no level selectors for a guest')
    t.ok(await guestPage.locator('[data-testid=level]').count() > 0, 'levels shown as text')
    await guestPage.goto(`${base}/dashboard/#/settings`)
    await guestPage.waitForSelector('[data-testid=tables]')
    t.equal(await guestPage.locator('[data-testid=users-table]').count(), 0, 'no user admin for a guest')
    t.equal(await guestPage.locator('[data-testid=delete-form]').count(), 0, 'no delete for a guest')
    t.match(await guestPage.textContent('[data-testid=who]'), /read-only/)
    await guestContext.close()
  })
}

t.test('the dashboard page is served with a strict CSP, and /dashboard redirects to /dashboard/', async (t) => {
  const app = Fastify()
  await app.register(monitor, { dataDir: 'memory://', metrics: false, dashboard: { sessionSecret: 's'.repeat(40), users: [ADMIN] } })
  t.teardown(() => app.close())
  await app.ready()
  const redirect = await app.inject('/dashboard')
  t.equal(redirect.statusCode, 302)
  t.equal(redirect.headers.location, '/dashboard/')
  const page = await app.inject('/dashboard/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-security-policy'], /script-src 'self'/)
  t.match(page.body, /<div id="app">/)
  t.same(app.monitor.endpoints().filter((e) => e.route.startsWith('/dashboard')), [], 'the dashboard\'s own routes are not monitored')
})

t.test('a visitor gets the login page without asking the API (no 401 in the console); a reload stays logged in until logout', async (t) => {
  const app = await uiApp({ dataDir: 'memory://' })
  t.teardown(() => app.close())
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const page = await (await browser.newContext()).newPage()
  const asked: string[] = []
  const consoleErrors: string[] = []
  page.on('request', (request) => { if (request.url().includes('/dashboard/api/')) asked.push(new URL(request.url()).pathname) })
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()) })

  await page.goto(`${base}/dashboard/`)
  await page.waitForSelector('input[name=username]')
  t.same(asked, [], 'the first visit asks the API nothing before the login')
  await logIn(page, base, ADMIN)
  asked.length = 0
  await page.reload()
  await page.waitForSelector('[data-testid=overview-table]')
  t.ok(asked.includes('/dashboard/api/session'), 'a reload after the login asks for its session, and is still logged in')
  await page.click('button:has-text("Log out")')
  await page.waitForSelector('input[name=username]')
  asked.length = 0
  await page.reload()
  await page.waitForSelector('input[name=username]')
  t.same(asked, [], 'after logging out, none again')
  t.same(consoleErrors, [], 'and no error in the console on the way')
})
