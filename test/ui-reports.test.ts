import t from 'tap'
import Fastify from 'fastify'
import monitor from '../lib/index.js'
import { insertRequests } from '../lib/db/seed.js'
import { backend, until } from './helpers.js'
import { canvasesDrawn, openDashboard } from './browser.js'
import { syntheticRequests } from './synthetic.js'

// Issue #16 in Chromium: the Reports view flags the changed endpoints and draws their distributions;
// the Custom graphs view lists graphs, draws their values, and shows a hostile name as text.
t.setTimeout(300_000)
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const HOSTILE = '<img src=x onerror="window.pwned=1">'

t.test('postgres: the Reports and Custom graphs views', async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  const app = Fastify()
  await app.register(monitor, { ...store.options, flushIntervalMs: 20, metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
  for (const route of ['/slower', '/same', '/failing', '/quiet']) app.get(route, async () => 'ok')
  let n = 0
  app.monitor.addGraph(HOSTILE, () => ++n, { everySeconds: 1 })
  app.monitor.addGraph('queue depth', () => { throw new Error('queue <b>down</b>') }, { everySeconds: 1 })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  await until(async () => (await app.monitor.db.selectFrom('endpoint').select('id').execute()).length >= 4)
  const endpoints = Object.fromEntries((await app.monitor.db.selectFrom('endpoint').select(['id', 'route']).execute()).map((r) => [r.route, r.id]))
  await insertRequests(app.monitor.db, syntheticRequests(endpoints, Date.now() - 30 * 3_600_000))
  t.ok(await until(async () => n >= 3, 30_000), 'the graph ran')

  const page = await openDashboard(t, app, ADMIN, '#/reports?baseline=version:v1&candidate=version:v2')
  await page.waitForSelector('[data-testid=report-row]')
  const verdicts = await page.$$eval('[data-testid=report-row]', (rows) => rows.map((row) => [row.querySelector('code')!.textContent, row.querySelector('[data-testid=verdict] strong')!.textContent]))
  t.same(verdicts.slice(0, 2).map(([, v]) => v), ['regression', 'regression'], 'flagged rows first')
  t.same(new Map(verdicts as Array<[string, string]>).get('GET /same'), 'no change')
  t.match(await page.textContent('[data-testid=report-summary]'), /2 regressions/)
  await page.waitForSelector('canvas')
  const drawn = await canvasesDrawn(page)
  t.equal(drawn.length, 2, 'one CDF chart per flagged endpoint')
  t.ok(drawn.every(Boolean), 'both drawn')
  // the form: a preset replaces both sides in the URL
  await page.click('text=Yesterday → today')
  await page.waitForFunction(() => location.hash.includes('baseline=yesterday'))

  await page.goto(page.url().replace(/#.*/, '#/graphs?range=today'))
  await page.waitForSelector('[data-testid=graph-row]')
  const names = await page.$$eval('[data-testid=graph-name]', (cells) => cells.map((c) => c.textContent))
  t.same(names.sort(), [HOSTILE, 'queue depth'].sort(), 'names shown as text')
  t.equal(await page.$$eval('main img', (imgs) => imgs.length), 0, 'no element made from a name')
  t.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined)
  t.match(await page.textContent('[data-testid=graphs-table]'), /queue <b>down<\/b>/, 'an error shown as text')
  await page.waitForSelector('canvas')
  t.same(await canvasesDrawn(page), [true], 'the graph with values drawn; the failing one says it has none')
})
