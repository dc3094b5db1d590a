import t from 'tap'
import type { Page } from 'playwright-core'
import { insertRequests, type SeedRequest } from '../lib/db/seed.js'
import { backend, buildApp } from './helpers.js'
import { launchChromium, logIn } from './browser.js'

// Issue #15.7: the overview and the endpoint view read at a phone's width (390 px) in real Chromium.
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }

/** Cells squeezed to a sliver (names and dates a few characters per line) and whether the page itself overflows. */
async function layout (page: Page): Promise<{ pageWidth: number, squeezed: string[] }> {
  return await page.evaluate(() => {
    const squeezed: string[] = []
    for (const cell of document.querySelectorAll<HTMLElement>('table td, table th')) {
      const lineHeight = parseFloat(getComputedStyle(cell).lineHeight) || 20
      const text = (cell.textContent ?? '').trim()
      // a cell taller than three lines, or narrower than its longest word, wraps what should not be wrapped
      if (text !== '' && cell.getBoundingClientRect().height > 3.2 * lineHeight + 12) squeezed.push(text.slice(0, 40))
    }
    return { pageWidth: document.documentElement.scrollWidth, squeezed }
  })
}

t.test('the overview and an endpoint view at 390 px: no page overflow, no squeezed cells', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, appVersion: 'c3a1f0e9b7d24f6a8e1c5b9d0a7f3e2c1b4d6f8a', dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
  app.get('/api/v2/organisations/:organisationId/projects/:projectId/members', async () => 'ok')
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  await app.monitor.flush()
  const ids = Object.fromEntries((await app.monitor.db.selectFrom('endpoint').select(['id', 'route']).execute()).map((e) => [e.route, e.id]))
  const long = ids['/api/v2/organisations/:organisationId/projects/:projectId/members']!
  const rows: SeedRequest[] = []
  for (let i = 0; i < 200; i++) {
    rows.push({ endpointId: i % 2 === 0 ? long : ids['/users/:id']!, time: new Date(Date.now() - (i % 4) * 86_400_000 - 60_000), durationMs: 3 + (i % 11), statusCode: i % 9 === 0 ? 500 : 200, version: i < 100 ? 'c3a1f0e9b7d24f6a8e1c5b9d0a7f3e2c1b4d6f8a' : '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432', groupBy: `user-${i % 7}`, ip: `10.0.0.${i % 5}` })
  }
  await insertRequests(app.monitor.db, rows)

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await logIn(page, base, ADMIN)
  await page.goto(`${base}/dashboard/#/overview?tz=UTC`)
  await page.waitForSelector(`tr[data-endpoint="${long}"]`)
  const overview = await layout(page)
  t.ok(overview.pageWidth <= 390, `the overview fits the screen (${overview.pageWidth} px); wide tables scroll inside it`)
  t.same(overview.squeezed, [], 'no cell of the overview is squeezed into a column of characters')
  await page.screenshot({ path: new URL('./screenshots/phone-overview.png', import.meta.url).pathname, fullPage: true })

  for (const tab of ['load', 'versions', 'status']) {
    await page.goto(`${base}/dashboard/#/endpoint/${long}?range=30d&tz=UTC&tab=${tab}`)
    await page.waitForSelector('canvas')
    const endpoint = await layout(page)
    t.ok(endpoint.pageWidth <= 390, `endpoint ${tab} tab fits the screen (${endpoint.pageWidth} px)`)
    t.same(endpoint.squeezed, [], `endpoint ${tab} tab: no squeezed cell`)
    await page.screenshot({ path: new URL(`./screenshots/phone-endpoint-${tab}.png`, import.meta.url).pathname, fullPage: true })
  }
})
