// The demo app: a small API with the plugin on the embedded database (PGlite in ./.fastify-monitor).
// npm run demo            → http://127.0.0.1:3000
// DATABASE_URL=postgres://… npm run demo  → the same on a PostgreSQL server
// DEMO_SEED=0 skips the few days of generated history stored at the first start; DEMO_TRAFFIC=0 the live trickle
import { existsSync } from 'node:fs'
import Fastify from 'fastify'
import monitor from 'fastify-monitoring-dashboard'
// the plugin's own seeding module (tests and benchmarks use it too): stores requests and their rollups
import { insertRequests } from '../dist/db/seed.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
// quiet: warnings and errors only, no line per request (LOG_LEVEL=info brings them back)
const app = Fastify({ logger: { level: process.env.LOG_LEVEL || 'warn' } })
// the version is this checkout's commit when there is one (git wins over appVersion, as in FMD)
const gitDir = new URL('../.git', import.meta.url).pathname

await app.register(monitor, {
  database: process.env.DATABASE_URL,
  dataDir: process.env.FMD_DATA_DIR,
  git: process.env.APP_VERSION === undefined && existsSync(gitDir) ? gitDir : undefined,
  appVersion: process.env.APP_VERSION ?? '0.1.0-demo',
  // the group-by key: who made the request (here a header; in a real app, request.user.id)
  groupBy: (request) => request.headers['x-user-id'],
  // a known login for the demo only (it listens on 127.0.0.1); a real app leaves `users` out, so the
  // first start creates "admin" with a random password, or takes passwords from env vars (passwordEnv)
  dashboard: { users: [{ username: 'demo', password: process.env.DEMO_PASSWORD ?? 'demo-password', role: 'admin' }] }
})

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const users = new Map([[1, { id: 1, name: 'Ada' }], [2, { id: 2, name: 'Grace' }], [3, { id: 3, name: 'Linus' }]])

app.get('/users', async () => [...users.values()])
app.get('/users/:id', async (request, reply) => {
  const user = users.get(Number(request.params.id))
  if (user === undefined) return reply.code(404).send({ error: 'no such user' })
  return user
})
app.post('/users', async (request, reply) => {
  const id = users.size + 1
  users.set(id, { id, name: String(request.body?.name ?? 'anonymous') })
  return reply.code(201).send(users.get(id))
})
// async work with varied latency: mostly fast, sometimes slow
app.get('/reports/:year', async (request) => {
  await sleep(Math.random() < 0.1 ? 200 + Math.random() * 300 : 5 + Math.random() * 40)
  return { year: request.params.year, total: 42 }
})
// a 500 on purpose, every few seconds: not worth a stack trace in the log each time
app.get('/error', { logLevel: 'silent' }, async () => { throw new Error('something broke') })
app.get('/health', { config: { monitor: false } }, async () => ({ ok: true }))

await app.listen({ port, host })
await app.monitor.ready
const base = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${app.server.address().port}`
const seeded = process.env.DEMO_SEED === '0' ? 0 : await seedHistory()
// at the first start, slow /reports requests become outliers with their evidence (level 2), and a tenth of
// them keep their call tree (level 3); later starts keep whatever level an admin chose
if (seeded > 0) await app.monitor.setMonitorLevel('GET', '/reports/:year', 3)
const password = process.env.DEMO_PASSWORD === undefined ? 'demo-password' : '$DEMO_PASSWORD'
console.log(`
  dashboard  ${base}/dashboard/   (log in as demo / ${password})
  metrics    ${base}/metrics
  demo API   ${base}/users, /users/1, /reports/2026, /error, /nope
  storage    ${process.env.DATABASE_URL ? 'PostgreSQL' : `embedded PGlite (${process.env.FMD_DATA_DIR ?? './.fastify-monitor'})`}, version ${app.monitor.version.slice(0, 12)}${seeded > 0 ? `, ${seeded} requests of history generated` : ''}
`)

/**
 * At the first start (no request stored yet), a few days of varied history, so every view has something
 * to show: earlier versions, users, client IPs, 4xx and 5xx, slow spells.
 */
async function seedHistory () {
  const db = app.monitor.db
  if (await db.selectFrom('request').select('endpoint_id').limit(1).executeTakeFirst() !== undefined) return 0
  await app.monitor.flush()
  const ids = Object.fromEntries((await db.selectFrom('endpoint').select(['id', 'method', 'route']).execute()).map((e) => [`${e.method} ${e.route}`, e.id]))
  const DAY_MS = 86_400_000
  const days = 4
  const now = Date.now()
  // versions in succession, the running one last
  const versions = ['1.0.0', '1.1.0', '1.2.0', app.monitor.version]
  // endpoint, share of traffic, typical ms, and how its answers go
  const routes = [
    ['GET /users', 0.25, 3, () => 200],
    ['GET /users/:id', 0.3, 2, () => (Math.random() < 0.08 ? 404 : 200)],
    ['POST /users', 0.1, 6, () => (Math.random() < 0.05 ? 400 : 201)],
    ['GET /reports/:year', 0.2, 25, () => 200],
    ['GET /error', 0.05, 1, () => 500],
    ['* __unmatched__', 0.1, 0.5, () => 404]
  ].filter(([key]) => ids[key] !== undefined)
  const rows = []
  for (let i = 0; i < 6000; i++) {
    // a fifth of the traffic at night (UTC), so the hourly heatmap has a shape
    let time
    do time = now - Math.random() * days * DAY_MS; while (new Date(time).getUTCHours() < 7 && Math.random() > 0.2)
    let pick = Math.random() * routes.reduce((sum, r) => sum + r[1], 0)
    const [key, , typicalMs, status] = routes.find((r) => (pick -= r[1]) < 0) ?? routes[0]
    // log-normal durations; version 1.1.0 was a slow release, and 1% of requests are outliers
    const version = versions[Math.min(versions.length - 1, Math.floor((1 - (now - time) / (days * DAY_MS)) * versions.length))]
    let durationMs = typicalMs * Math.exp(0.6 * Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()))
    if (version === '1.1.0') durationMs *= 1.8
    if (Math.random() < 0.01) durationMs *= 10 + Math.random() * 30
    const user = Math.floor(Math.random() ** 2 * 12)
    rows.push({
      endpointId: ids[key],
      time: new Date(time),
      durationMs,
      statusCode: status(),
      version,
      groupBy: `user-${user + 1}`,
      ip: `10.0.${user % 3}.${10 + user}`
    })
  }
  await insertRequests(db, rows)
  return rows.length
}

if (process.env.DEMO_TRAFFIC !== '0') {
  // a trickle of traffic so there is something to look at
  const paths = ['/users', '/users/1', '/users/2', '/users/9', '/reports/2025', '/reports/2026', '/error', '/nope']
  setInterval(() => {
    const path = paths[Math.floor(Math.random() * paths.length)]
    fetch(base + path, { headers: { 'x-user-id': `user-${1 + Math.floor(Math.random() * 5)}` } })
      .then((res) => res.arrayBuffer()).catch(() => {})
  }, 250).unref()
}
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
