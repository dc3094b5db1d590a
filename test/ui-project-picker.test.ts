import t from 'tap'
import { backend, buildApp, until } from './helpers.js'
import { openDashboard } from './browser.js'

// #19 in Chromium: with more than one project the header offers a project picker; picking one keeps the
// overview and the hourly load to that project's endpoints, and the choice follows the user across views.
t.setTimeout(300_000)
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const TOKEN = 'collector-token-0123456789'

t.test('pglite: the project picker keeps the views to one project', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40), ingestToken: TOKEN } })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('id').execute()).length >= 1)
  const now = Date.now()
  const sent = await app.inject({
    method: 'POST',
    url: '/dashboard/api/ingest',
    headers: { authorization: `Bearer ${TOKEN}` },
    payload: {
      batch: 'b1', project: 'billing', version: 'b-1', instance: { host: 'billing', pid: 1, token: 'billing-1' },
      endpoints: [{ method: 'GET', route: '/invoices/:id' }],
      requests: { endpoint: [0, 0, 0, 0, 0], time: [1, 2, 3, 4, 5].map((i) => now - i * 1000), durationMs: [1, 2, 3, 4, 5], statusCode: [200, 200, 200, 200, 500] }
    }
  })
  t.equal(sent.statusCode, 200)
  await app.inject({ url: '/users/1' })
  await app.monitor.flush()

  const page = await openDashboard(t, app, ADMIN, '#/overview')
  await page.waitForSelector('[data-testid=overview-table] tbody tr')
  const routes = async (): Promise<string[]> => (await page.$$eval('[data-testid=overview-table] tbody tr td:first-child a', (links) => links.map((a) => a.textContent!.replace(/\s+/g, ' ').trim()))).sort()
  t.ok((await routes()).includes('GET /invoices/:id') && (await routes()).includes('GET /users/:id'), 'all projects at first')
  const options = await page.$$eval('[data-testid=project] option', (opts) => opts.map((o) => o.textContent))
  t.same(options, ['All projects', 'billing', 'default'], 'the picker lists the projects')

  await page.selectOption('[data-testid=project]', { label: 'billing' })
  await page.waitForFunction(() => location.hash.includes('project='))
  await page.waitForFunction(() => !document.querySelector('[data-testid=overview-table]')?.textContent?.includes('/users/:id'))
  t.same(await routes(), ['GET /invoices/:id'], 'the overview keeps to billing')

  // the choice goes along to the hourly load, whose total is billing's five requests
  await page.click('nav a:has-text("Hourly load")')
  await page.waitForFunction(() => location.hash.startsWith('#/load') && location.hash.includes('project='))
  const total = await page.waitForFunction(() => document.querySelector('[data-testid=load-total]')?.textContent ?? null)
  t.match(String(await total.jsonValue()), /\b5\b/, 'the load view counts billing\'s requests only')

  await page.selectOption('[data-testid=project]', { label: 'All projects' })
  await page.waitForFunction(() => !location.hash.includes('project='))
})
