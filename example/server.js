// The demo app: a small API with the plugin on the embedded database (PGlite in ./.fastify-monitor).
// npm run demo            → http://127.0.0.1:3000
// DATABASE_URL=postgres://… npm run demo  → the same on a PostgreSQL server
import { existsSync } from 'node:fs'
import Fastify from 'fastify'
import monitor from 'fastify-monitoring-dashboard'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
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
app.get('/error', async () => { throw new Error('something broke') })
app.get('/health', { config: { monitor: false } }, async () => ({ ok: true }))

await app.listen({ port, host })
await app.monitor.ready
app.log.info(`demo app on http://${host}:${port} — try /users, /users/1, /reports/2026, /error, /nope; Prometheus metrics on http://${host}:${port}/metrics`)
app.log.info(`dashboard API on http://${host}:${port}/dashboard/api (log in as demo / ${process.env.DEMO_PASSWORD === undefined ? 'demo-password' : '$DEMO_PASSWORD'})`)
app.log.info(`monitoring: ${app.monitor.endpoints().length} endpoints, version ${app.monitor.version.slice(0, 12)}; requests are stored in ${process.env.DATABASE_URL ? 'PostgreSQL' : `embedded PGlite (${process.env.FMD_DATA_DIR ?? './.fastify-monitor'})`}`)
if (process.env.DEMO_TRAFFIC !== '0') {
  // a trickle of traffic so there is something to look at
  const paths = ['/users', '/users/1', '/users/2', '/users/9', '/reports/2025', '/reports/2026', '/error', '/nope']
  setInterval(() => {
    const path = paths[Math.floor(Math.random() * paths.length)]
    fetch(`http://${host}:${port}${path}`, { headers: { 'x-user-id': `user-${1 + Math.floor(Math.random() * 5)}` } })
      .then((res) => res.arrayBuffer()).catch(() => {})
  }, 250).unref()
}
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
