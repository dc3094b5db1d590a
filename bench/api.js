// npm run bench:api: p50/p95 latency of every dashboard API route on a seeded database (the one
// `npm run seed` fills: BENCH_DATABASE_URL, prefix fmdbench_), PostgreSQL with 10M requests and PGlite
// with 1M (override with --postgres N --pglite N, 0 skips), of the shape given as seed takes it
// (--endpoints --versions --users --ips --days --history), seeded first if the database holds fewer rows;
// --only overview,load measures only the routes whose URL contains one of those.
import { mkdirSync } from 'node:fs'
import { describeShape, seededApp, shapeFromArgs, storedShape } from './seed-lib.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const ROUNDS = Number(arg('rounds', 20))
const USER = { username: 'bench', password: 'bench-password', role: 'admin' }

function percentile (sorted, q) { return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] }

async function measure (label, options) {
  const app = await seededApp({ ...options, dashboard: { users: [USER], sessionSecret: 'x'.repeat(32) } })
  console.log(`${label}: ran on ${describeShape(await storedShape(app.monitor.db))}`)
  await new Promise((resolve) => setTimeout(resolve, 1000)) // users are provisioned once the database is ready
  const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: USER.username, password: USER.password } })
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.body}`)
  const cookie = login.headers['set-cookie'].split(';')[0]
  const overview = JSON.parse((await app.inject({ url: '/dashboard/api/overview', headers: { cookie } })).body)
  const busiest = overview.sort((a, b) => b.allTime.hits - a.allTime.hits)[0]
  const routes = [
    '/dashboard/api/overview',
    '/dashboard/api/overview?tz=Asia/Kolkata',
    '/dashboard/api/load',
    '/dashboard/api/versions',
    '/dashboard/api/performance',
    `/dashboard/api/endpoints/${busiest.id}`,
    `/dashboard/api/endpoints/${busiest.id}/breakdown?by=group_by`,
    `/dashboard/api/endpoints/${busiest.id}/breakdown?by=ip`,
    '/dashboard/api/config',
    // reports merge the rollup sketches of each side's hours (lib/queries/reports.ts)
    '/dashboard/api/reports?baseline=version:1.0.0&candidate=version:1.0.1',
    '/dashboard/api/reports?baseline=last-week&candidate=this-week'
  ]
  const rows = []
  // --only overview,load: the routes whose URL contains one of these
  const only = arg('only', undefined)?.split(',')
  for (const url of routes.filter((u) => only === undefined || only.some((part) => u.includes(part)))) {
    const times = []
    for (let i = 0; i < ROUNDS; i++) {
      const start = process.hrtime.bigint()
      const res = await app.inject({ url, headers: { cookie } })
      times.push(Number(process.hrtime.bigint() - start) / 1e6)
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
    }
    times.sort((a, b) => a - b)
    rows.push({ backend: label, route: url.replace('/dashboard/api', ''), 'p50 ms': percentile(times, 0.5).toFixed(1), 'p95 ms': percentile(times, 0.95).toFixed(1) })
  }
  await app.close()
  return rows
}

const results = []
const shape = shapeFromArgs(argv)
const postgresRequests = Number(arg('postgres', shape.rows))
const pgliteRequests = Number(arg('pglite', 1_000_000))
if (postgresRequests > 0) results.push(...await measure(`postgres ${postgresRequests}`, { prefix: arg('prefix', undefined), shape: { ...shape, rows: postgresRequests } }))
if (pgliteRequests > 0) {
  mkdirSync('bench/results', { recursive: true })
  results.push(...await measure(`pglite ${pgliteRequests}`, { dataDir: 'bench/results/pglite-api', shape: { ...shape, rows: pgliteRequests } }))
}
console.table(results)
