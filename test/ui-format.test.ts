import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { insertRequests, type SeedRequest } from '../lib/db/seed.js'
import { backend, buildApp } from './helpers.js'
import { launchChromium, logIn } from './browser.js'
import { bytes, count, ms, number, percent, pValue, shortVersion } from '../ui/src/lib/format.js'
import { logTickLabel, logTickValues, MAX_LOG_TICKS } from '../ui/src/lib/charts.js'
import { seeded } from './synthetic.js'

// Issue #15.6: versions that are full commit ids read as their first 7 digits (the full id on hover),
// log duration axes are labelled 1-2-5 without overlapping, and numbers read the same in every view.
t.setTimeout(300_000)
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const COMMIT_A = 'abcdef0123456789abcdef0123456789abcdef01'
const COMMIT_B = 'fedcba9876543210fedcba9876543210fedcba98'

/** Is `value` (ms) 1, 2 or 5 times a power of ten? */
const oneTwoFive = (value: number): boolean => {
  const significand = value / 10 ** Math.floor(Math.log10(value) + 1e-9)
  return [1, 2, 5].some((s) => Math.abs(significand - s) < 1e-6)
}
/** A tick label's value in ms: `500 ms`, `0.1 ms`, `2 s`. */
const labelMs = (label: string): number => {
  const match = /^(\d+(?:\.\d+)?) (ms|s)$/.exec(label)
  return match === null ? NaN : Number(match[1]) * (match[2] === 's' ? 1000 : 1)
}

t.test('format helpers', async (t) => {
  t.equal(shortVersion(COMMIT_A), 'abcdef0', 'a 40-hex commit id: its first 7 digits')
  t.equal(shortVersion(COMMIT_A.toUpperCase()), 'ABCDEF0', 'in either case')
  t.equal(shortVersion('a'.repeat(64)), 'aaaaaaa', 'a SHA-256 commit id (64 hex)')
  t.equal(shortVersion(`version:${COMMIT_A}`), 'version:abcdef0', 'inside a label (a report selector)')
  for (const unchanged of ['1.4.2', 'v-ui', 'abcdef0', `${COMMIT_A}0`, `${COMMIT_A.slice(0, 39)}g`, '']) {
    t.equal(shortVersion(unchanged), unchanged, `"${unchanged}" is not a commit id: unchanged`)
  }
  t.equal(shortVersion(null), '–')

  t.equal(bytes(512), '512 B')
  t.equal(bytes(48_000), '48.0 kB')
  t.equal(bytes(999_700), '1.00 MB', 'never "1000 kB"')
  t.equal(bytes(12_345_678), '12.3 MB')
  t.equal(bytes(1_500_000_000), '1.50 GB')
  t.equal(bytes(undefined), '–')

  t.equal(percent(12.34), '12.3%')
  t.equal(percent(0.034 * 100), '3.4%', 'given in percent, not as a fraction')
  t.equal(percent(3.25, { signed: true }), '+3.3%', 'a rise is signed')
  t.equal(percent(-1, { signed: true }), '-1.0%')
  t.equal(percent(-0.04, { signed: true }), '0.0%', 'no sign on what rounds to zero')
  t.equal(percent(null), '–')

  t.equal(ms(12.34), '12.3 ms')
  t.equal(ms(0.05), '0.05 ms')
  t.equal(ms(0.0042), '0.0042 ms', 'a sub-10 µs duration is not "0.00 ms"')
  t.equal(ms(1500), '1.50 s')
  t.equal(ms(2000, { trimZeros: true }), '2 s')
  t.equal(ms(0.5, { trimZeros: true }), '0.5 ms')
  t.equal(count(1234567), '1,234,567')
  t.equal(pValue(0.0123), '0.012')
  t.equal(pValue(3.2e-7), '3.2e-7')
  t.equal(number(1234), '1,234')
  t.equal(number(3.14159), '3.142')
})

t.test('log axis ticks: 1-2-5 per decade, decades when crowded, never more than the room', async (t) => {
  t.same(logTickValues(0.8, 600), [1, 2, 5, 10, 20, 50, 100, 200, 500])
  t.same(logTickValues(0.05, 3000), [0.1, 1, 10, 100, 1000], '15 values of 1-2-5 are too many: decades')
  t.same(logTickValues(0.01, 10_000, 6), [0.01, 1, 100, 10_000], '7 decades in room for 6: every second one')
  t.same(logTickValues(0.1, 0.5), [0.1, 0.2, 0.5], 'no floating-point noise (0.2, not 0.20000000000000004)')
  t.same(logTickValues(3, 4), [3, 4], 'inside one decade: its whole numbers')
  t.same(logTickValues(0, 10), [], 'no log ticks from zero')
  for (let decades = 1; decades <= 14; decades++) {
    for (const room of [2, 5, MAX_LOG_TICKS]) {
      const values = logTickValues(0.001, 0.001 * 10 ** decades, room)
      t.ok(values.length >= 2 && values.length <= room && values.every(oneTwoFive), `${decades} decades, room for ${room}: ${values.length} ticks, all 1-2-5`)
    }
  }
  t.same([0.1, 0.5, 1, 20, 500, 1000, 2000].map(logTickLabel), ['0.1 ms', '0.5 ms', '1 ms', '20 ms', '500 ms', '1 s', '2 s'], 'labelled with ms()')
})

/** Records what chart.js draws on each canvas (texts and where), reset when the canvas is cleared. */
async function recordCanvasTexts (page: Page): Promise<void> {
  await page.addInitScript(() => {
    type Drawn = { text: string, x: number, width: number, align: string }
    const proto = CanvasRenderingContext2D.prototype
    const fillText = proto.fillText
    proto.fillText = function (this: CanvasRenderingContext2D, text: string, x: number, y: number, maxWidth?: number) {
      const m = this.getTransform()
      const drawn = ((this.canvas as unknown as { drawn?: Drawn[] }).drawn ??= [])
      drawn.push({ text: String(text), x: m.a * x + m.c * y + m.e, width: this.measureText(String(text)).width * m.a, align: this.textAlign })
      return maxWidth === undefined ? fillText.call(this, text, x, y) : fillText.call(this, text, x, y, maxWidth)
    }
    const clearRect = proto.clearRect
    proto.clearRect = function (this: CanvasRenderingContext2D, x: number, y: number, w: number, h: number) {
      if (w >= this.canvas.width && h >= this.canvas.height) (this.canvas as unknown as { drawn?: Drawn[] }).drawn = []
      return clearRect.call(this, x, y, w, h)
    }
  })
}

type Drawn = { text: string, x: number, width: number, align: string }
/** The texts drawn on the chart labelled `label` (its wrapper's aria-label), once it has drawn. */
async function drawnTexts (page: Page, label: string): Promise<Drawn[]> {
  const selector = `[role=img][aria-label="${label}"] canvas`
  await page.waitForFunction((s) => ((document.querySelector(s) as unknown as { drawn?: unknown[] } | null)?.drawn ?? []).length > 0, selector)
  return await page.$eval(selector, (canvas) => (canvas as unknown as { drawn: Drawn[] }).drawn)
}

/** Checks a log duration axis's drawn tick labels: ms values of 1-2-5, at most 12, none overlapping. */
function checkLogAxis (t: Test, drawn: Drawn[], what: string): number[] {
  const ticks = drawn.filter((d) => /^[\d.,]+(?: ?(?:µs|ms|s))?$/.test(d.text))
  const values = ticks.map((d) => labelMs(d.text))
  t.ok(ticks.length >= 2 && ticks.length <= MAX_LOG_TICKS, `${what}: ${ticks.length} tick labels (${ticks.map((d) => d.text).join(', ')})`)
  t.ok(values.every((v) => Number.isFinite(v) && oneTwoFive(v)), `${what}: every label is a 1-2-5 duration formatted by ms()`)
  t.same(ticks.map((d) => d.align), ticks.map(() => 'center'), `${what}: labels are horizontal, centred on their ticks`)
  const sorted = [...ticks].sort((a, b) => a.x - b.x)
  const overlaps = sorted.slice(1).filter((d, i) => d.x - d.width / 2 < sorted[i]!.x + sorted[i]!.width / 2 + 2)
  t.same(overlaps.map((d) => d.text), [], `${what}: no label overlaps its neighbour`)
  return values
}

t.test('postgres: commit ids as versions, log axes and numbers in Chromium', async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, appVersion: COMMIT_A, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
  app.get('/narrow', async () => 'ok')
  app.get('/wide', async () => 'ok')
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  // requests recorded the ordinary way, under the app's version (the full commit id)
  for (let i = 0; i < 5; i++) t.equal((await app.inject(`/users/${i}`)).statusCode, 200)
  await app.monitor.flush()
  const ids = Object.fromEntries((await app.monitor.db.selectFrom('endpoint').select(['id', 'route']).execute()).map((e) => [e.route, e.id]))
  const recorded = await app.monitor.db.selectFrom('version').select('version').execute()
  t.same(recorded.map((v) => v.version), [COMMIT_A], 'the plugin records the full commit id')

  // /narrow spans 1–300 ms (room for every 1-2-5 label), /wide 0.05 ms – 3 s (only decades fit)
  const random = seeded(15)
  const rows: SeedRequest[] = []
  for (let i = 0; i < 300; i++) {
    const time = new Date(Date.now() - (i % 3) * 86_400_000 - 60_000)
    const version = i % 2 === 0 ? COMMIT_A : COMMIT_B
    rows.push({ endpointId: ids['/narrow']!, time, durationMs: i === 0 ? 1 : i === 1 ? 300 : 10 ** (random() * Math.log10(300)), statusCode: 200, version, groupBy: `user-${i % 4}` })
    rows.push({ endpointId: ids['/wide']!, time, durationMs: i === 0 ? 0.05 : i === 1 ? 3000 : 0.05 * 10 ** (random() * Math.log10(60_000)), statusCode: 200, version, groupBy: `user-${i % 4}` })
  }
  await insertRequests(app.monitor.db, rows)

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await recordCanvasTexts(page)
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await logIn(page, base, ADMIN)

  /** The `Version` elements of `selector`: [shown text, title]. */
  const versionsIn = async (selector: string): Promise<string[][]> =>
    await page.$$eval(`${selector} [data-testid=version]`, (codes) => codes.map((c) => [c.textContent ?? '', c.getAttribute('title') ?? '']))

  // the Versions view: the table shows short ids, the full id on hover; the charts draw the short ids
  await page.goto(`${base}/dashboard/#/versions?range=30d&tz=UTC`)
  await page.waitForSelector('[data-testid=version-hits]')
  t.same((await versionsIn('[data-testid=versions-table]')).sort(), [['abcdef0', COMMIT_A], ['fedcba9', COMMIT_B]], 'versions table: 7 characters, full id in title')
  const heatmap = (await drawnTexts(page, 'Requests per version and endpoint')).map((d) => d.text)
  t.ok(heatmap.includes('abcdef0') && heatmap.includes('fedcba9'), 'the heatmap\'s axis shows the short ids')
  t.notOk(heatmap.some((text) => text.includes(COMMIT_A) || text.includes(COMMIT_B)), 'and never a full id')
  const daily = (await drawnTexts(page, 'Requests per day and version')).map((d) => d.text)
  t.ok(daily.includes('abcdef0') && !daily.some((text) => text.includes(COMMIT_A)), 'the daily chart\'s legend shows the short id')

  // an endpoint's Versions tab: box plots labelled by short id on a 1-2-5 log axis
  await page.goto(`${base}/dashboard/#/endpoint/${ids['/narrow']}?range=30d&tz=UTC&tab=versions`)
  const boxes = await drawnTexts(page, 'Duration per version')
  t.ok(boxes.some((d) => d.text === 'abcdef0') && boxes.some((d) => d.text === 'fedcba9'), 'box plots labelled by short id')
  t.notOk(boxes.some((d) => d.text.includes(COMMIT_A)), 'not by the full id')
  const narrow = checkLogAxis(t, boxes, '1–300 ms box plots')
  t.ok(narrow.some((v) => !Number.isInteger(Math.log10(v))), `with room, 2s and 5s are labelled too (${narrow.join(', ')})`)
  t.ok(narrow.includes(1) && narrow.includes(100), 'from the first decade to the last')

  // the Users tab: user × version heatmap and table headers
  await page.goto(`${base}/dashboard/#/endpoint/${ids['/narrow']}?range=30d&tz=UTC&tab=users`)
  await page.waitForSelector('[data-testid=breakdown-table]')
  t.same((await versionsIn('main table thead')).sort(), [['abcdef0', COMMIT_A], ['fedcba9', COMMIT_B]], 'user × version table headers: short id, full id in title')
  const matrix = (await drawnTexts(page, 'Requests per version and user')).map((d) => d.text)
  t.ok(matrix.includes('abcdef0') && !matrix.some((text) => text.includes(COMMIT_A)), 'user × version heatmap: short ids')
  checkLogAxis(t, await drawnTexts(page, 'Duration per user'), 'per-user box plots')

  // the performance view spans 0.05 ms to 3 s: only decades, still no overlap
  await page.goto(`${base}/dashboard/#/performance?range=30d&tz=UTC`)
  const wide = checkLogAxis(t, await drawnTexts(page, 'Duration per endpoint'), 'performance box plots (0.05 ms – 3 s)')
  t.ok(wide.length <= 7 && wide.every((v) => Number.isInteger(Math.log10(v))), `crowded: decades only (${wide.join(', ')})`)

  // settings: the app's version
  await page.goto(`${base}/dashboard/#/settings`)
  await page.waitForSelector('[data-testid=tables]')
  t.same(await versionsIn('dl.facts'), [['abcdef0', COMMIT_A]], 'settings: short id, full id in title')

  // a phone-wide axis has room for fewer labels: still 1-2-5 and none overlapping
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto(`${base}/dashboard/#/endpoint/${ids['/narrow']}?range=30d&tz=UTC&tab=versions`)
  const phone = await drawnTexts(page, 'Duration per version')
  t.ok(await page.$eval('[role=img] canvas', (canvas) => canvas.clientWidth < 390), 'drawn at the phone\'s width')
  const few = checkLogAxis(t, phone, 'at 390 px')
  t.ok(few.length < narrow.length, `fewer labels than at 1280 px (${few.join(', ')})`)
  t.same(pageErrors, [], 'no page errors')
})
