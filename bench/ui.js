// npm run bench:ui: the dashboard's first view in Debian's Chromium, on PGlite holding 1M requests
// (seeded once into bench/results/pglite-api, shared with bench:api), and the JS it loads, gzipped.
import { readdirSync, readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { chromium } from 'playwright-core'
import { seededApp } from './seed-lib.js'
import { median } from './stats.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const REQUESTS = Number(arg('requests', 1_000_000))
const ROUNDS = Number(arg('rounds', 7))
const USER = { username: 'bench', password: 'bench-password', role: 'admin' }

const assets = new URL('../ui/dist/assets/', import.meta.url)
const allJs = readdirSync(assets).filter((f) => f.endsWith('.js'))
const gzipped = (file) => gzipSync(readFileSync(new URL(file, assets))).length

const app = await seededApp({ dataDir: arg('data-dir', 'bench/results/pglite-api'), requests: REQUESTS, dashboard: { users: [USER], sessionSecret: 'x'.repeat(32) } })
await app.listen({ port: 0, host: '127.0.0.1' })
await new Promise((resolve) => setTimeout(resolve, 1000)) // users are provisioned once the database is ready
const base = `http://127.0.0.1:${app.server.address().port}`
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] })
const context = await browser.newContext()
const login = await context.request.post(`${base}/dashboard/api/login`, { data: { username: USER.username, password: USER.password } })
if (!login.ok()) throw new Error(`login failed: ${login.status()}`)

const painted = []
const contentful = []
let firstViewJs = []
for (let i = 0; i < ROUNDS; i++) {
  const page = await context.newPage()
  await page.goto(`${base}/dashboard/#/overview`)
  await page.waitForSelector('[data-testid=overview-table] tbody tr')
  // time from navigation start until the overview table (the first view's content) is in the page
  painted.push(await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())))))
  contentful.push(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN))
  const api = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/')).map((e) => `${e.name.split('/api/')[1].split('?')[0]} ${e.startTime.toFixed(0)}→${e.responseEnd.toFixed(0)}`))
  if (process.env.BENCH_VERBOSE) console.log(api.join(', '))
  firstViewJs = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name).filter((name) => name.endsWith('.js')).map((name) => name.split('/').pop()))
  await page.close()
}
await browser.close()
await app.close()
console.table([{
  'stored requests': REQUESTS,
  'JS for the first view, gzipped (KB)': (firstViewJs.reduce((sum, f) => sum + gzipped(f), 0) / 1024).toFixed(1),
  'all JS, gzipped (KB)': (allJs.reduce((sum, f) => sum + gzipped(f), 0) / 1024).toFixed(1),
  'first contentful paint, median (ms)': median(contentful).toFixed(0),
  'overview table painted, median (ms)': median(painted).toFixed(0),
  'overview table painted, max (ms)': Math.max(...painted).toFixed(0)
}])
