import t from 'tap'
import type { Page } from 'playwright-core'
import { backend, buildApp, until } from './helpers.js'
import { openDashboard } from './browser.js'
import { CustomGraphs } from '../lib/graphs/custom-graphs.js'

// #19 in Chromium: with more than one project the header offers a project picker; picking one keeps the
// overview, the hourly load, the Tests view and the custom graphs to that project, and the choice follows
// the user across views.
t.setTimeout(300_000)
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const TOKEN = 'collector-token-0123456789'
const TEST_RESULTS_TOKEN = 'test-results-token-0123456789'
const BUILDS = '[data-testid=test-builds] tbody td:first-child'

/** The text of every element `selector` finds, once the view shows `expected` (or the time is up). */
async function shown (page: Page, selector: string, expected: string[]): Promise<string[]> {
  const read = async (): Promise<string[]> => await page.$$eval(selector, (cells) => cells.map((c) => c.textContent!.replace(/\s+/g, ' ').trim()))
  await until(async () => JSON.stringify(await read()) === JSON.stringify(expected), 10_000)
  return await read()
}

t.test('pglite: the project picker keeps the views to one project', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40), ingestToken: TOKEN, testResultsToken: TEST_RESULTS_TOKEN } })
  t.teardown(() => app.close())
  app.monitor.addGraph('default graph', () => 1, { everySeconds: 60 })
  await app.ready()
  await app.monitor.ready
  await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('id').execute()).length >= 1)
  // an app of project billing adding its graph to the same database
  const billingGraphs = new CustomGraphs({ db: app.monitor.db, log: app.log, ready: app.monitor.ready, instanceToken: 'billing-graphs', project: 'billing' })
  t.teardown(() => billingGraphs.close())
  billingGraphs.add('billing graph', () => 2, { everySeconds: 60 })
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
  // each project's CI build: billing's tests reach its one endpoint, default's one of the app's four
  for (const [build, project, route] of [['ci-billing', 'billing', '/invoices/:id'], ['ci-default', undefined, '/users/:id']] as const) {
    const res = await app.inject({
      method: 'POST',
      url: '/dashboard/api/test-results',
      headers: { authorization: `Bearer ${TEST_RESULTS_TOKEN}` },
      payload: { build, ...(project === undefined ? {} : { project }), commit: null, branch: null, batch: 'run-1', repeat: 1, tests: [{ file: 'a.test.js', name: `${build} test`, durationMs: 5, outcome: 'pass', hits: [{ method: 'GET', route, statusCode: 200, requests: 1, totalMs: 2, maxMs: 2 }] }] }
    })
    t.equal(res.statusCode, 201)
  }
  t.ok(await until(async () => (await app.monitor.db.selectFrom('graph').select('name').execute()).length === 2), 'both graphs registered')

  const page = await openDashboard(t, app, ADMIN, '#/overview')
  await page.waitForSelector('[data-testid=overview-table] tbody tr')
  const routes = async (): Promise<string[]> => (await page.$$eval('[data-testid=overview-table] tbody tr td:first-child a', (links) => links.map((a) => a.textContent!.replace(/\s+/g, ' ').trim()))).sort()
  t.ok((await routes()).includes('GET /invoices/:id') && (await routes()).includes('GET /users/:id'), 'all projects at first')
  const owners = await page.$$eval('[data-testid=overview-table] tbody tr', (rows) => rows.map((row) => [row.querySelector('td a')!.textContent!.replace(/\s+/g, ' ').trim(), row.querySelector('[data-testid=row-project]')?.textContent]))
  t.same(owners.filter(([route]) => route === 'GET /invoices/:id' || route === 'GET /users/:id').sort(), [['GET /invoices/:id', 'billing'], ['GET /users/:id', 'default']], 'each row names its project')
  const options = await page.$$eval('[data-testid=project] option', (opts) => opts.map((o) => o.textContent))
  t.same(options, ['All projects', 'billing', 'default'], 'the picker lists the projects')

  await page.selectOption('[data-testid=project]', { label: 'billing' })
  await page.waitForFunction(() => location.hash.includes('project='))
  await page.waitForFunction(() => !document.querySelector('[data-testid=overview-table]')?.textContent?.includes('/users/:id'))
  t.same(await routes(), ['GET /invoices/:id'], 'the overview keeps to billing')
  t.equal(await page.getByTestId('row-project').count(), 0, 'one project shown: no project on its rows')

  // the choice goes along to the hourly load, whose total is billing's five requests
  await page.click('nav a:has-text("Hourly load")')
  await page.waitForFunction(() => location.hash.startsWith('#/load') && location.hash.includes('project='))
  const total = await page.waitForFunction(() => document.querySelector('[data-testid=load-total]')?.textContent ?? null)
  t.match(String(await total.jsonValue()), /\b5\b/, 'the load view counts billing\'s requests only')

  // the Tests view: billing's build, compared with billing's endpoint only
  await page.click('nav a:has-text("Tests")')
  await page.waitForFunction(() => location.hash.startsWith('#/tests') && location.hash.includes('project='))
  await page.getByTestId('test-builds').waitFor()
  t.same(await shown(page, BUILDS, ['ci-billing']), ['ci-billing'], 'the Tests view lists billing\'s build only')
  t.same(await page.$$eval('[data-testid=covered] code', (cells) => cells.map((c) => c.textContent)), ['GET /invoices/:id'], 'billing\'s endpoint is covered')
  t.equal(await page.getByTestId('uncovered').count(), 0, 'and no other project\'s endpoint is listed as untested')

  // the custom graphs: billing's
  await page.click('nav a:has-text("Custom graphs")')
  await page.waitForFunction(() => location.hash.startsWith('#/graphs') && location.hash.includes('project='))
  t.same(await shown(page, '[data-testid=graph-name]', ['billing graph']), ['billing graph'], 'the Graphs view lists billing\'s graph only')
  // picking default there: its graph, then its Tests
  await page.selectOption('[data-testid=project]', { label: 'default' })
  t.same(await shown(page, '[data-testid=graph-name]', ['default graph']), ['default graph'], 'the Graphs view follows the picker')
  await page.click('nav a:has-text("Tests")')
  await page.waitForFunction(() => location.hash.startsWith('#/tests'))
  t.same(await shown(page, BUILDS, ['ci-default']), ['ci-default'], 'the Tests view follows the picker')
  t.same(await page.$$eval('[data-testid=covered] code', (cells) => cells.map((c) => c.textContent)), ['GET /users/:id'])
  t.same((await page.$$eval('[data-testid=uncovered] code', (cells) => cells.map((c) => c.textContent))).sort(), ['GET /fail', 'GET /slow', 'POST /users'], 'default\'s untested endpoints, none of billing\'s')

  await page.selectOption('[data-testid=project]', { label: 'All projects' })
  await page.waitForFunction(() => !location.hash.includes('project='))
  t.same(await shown(page, '[data-testid=build-project]', ['default', 'billing']), ['default', 'billing'], 'every project\'s builds, each with its project')
  await page.click('nav a:has-text("Custom graphs")')
  t.same(await shown(page, '[data-testid=graph-project]', ['billing', 'default']), ['billing', 'default'], 'every project\'s graphs, each with its project')
})
