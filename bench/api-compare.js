// node bench/api-compare.js --baseline <dir of another build's dist/index.js> [--baseline-prefix fmdold_] [--prefix fmdnew_] [--rounds 20]
// p50/p95 of every dashboard API route, this build against another (e.g. main's) on databases `npm run seed`
// filled with the same shape, with the calls interleaved (one call to each, in turn), so both see the
// same machine load: the way to compare a change on a shared, noisy machine.
import Fastify from 'fastify'
import monitor from '../dist/index.js'
import { BENCH_DATABASE_URL } from './postgres.js'
import { describeShape, storedShape } from './seed-lib.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const ROUNDS = Number(arg('rounds', 20))
const USER = { username: 'bench', password: 'bench-password', role: 'admin' }
const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]

async function start (plugin, prefix) {
  const app = Fastify({ logger: false })
  await app.register(plugin, { database: BENCH_DATABASE_URL, tablePrefix: prefix, appVersion: 'bench', metrics: false, dashboard: { users: [USER], sessionSecret: 'x'.repeat(32) } })
  await app.ready()
  await app.monitor.ready
  await new Promise((resolve) => setTimeout(resolve, 1000)) // users are provisioned once the database is ready
  const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: USER.username, password: USER.password } })
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.body}`)
  const cookie = login.headers['set-cookie'].split(';')[0]
  const overview = JSON.parse((await app.inject({ url: '/dashboard/api/overview', headers: { cookie } })).body)
  const busiest = overview.sort((a, b) => b.allTime.hits - a.allTime.hits)[0]
  return { app, cookie, busiest: busiest.id }
}

const { default: baselinePlugin } = await import(new URL(`file://${arg('baseline')}/dist/index.js`).href)
const servers = {
  baseline: await start(baselinePlugin, arg('baseline-prefix', 'fmdold_')),
  this: await start(monitor, arg('prefix', 'fmdnew_'))
}
for (const [name, s] of Object.entries(servers)) console.log(`${name}: ${describeShape(await storedShape(s.app.monitor.db))}`)
const routes = (id) => ['/overview', '/overview?tz=Asia/Kolkata', '/load', '/versions', '/performance', `/endpoints/${id}`,
  `/endpoints/${id}/breakdown?by=group_by`, `/endpoints/${id}/breakdown?by=ip`, '/config']
const rows = []
for (let r = 0; r < routes(0).length; r++) {
  const times = { baseline: [], this: [] }
  for (let i = 0; i <= ROUNDS; i++) {
    for (const [name, s] of Object.entries(servers)) {
      const url = `/dashboard/api${routes(s.busiest)[r]}`
      const started = process.hrtime.bigint()
      const res = await s.app.inject({ url, headers: { cookie: s.cookie } })
      if (res.statusCode !== 200) throw new Error(`${name} ${url}: ${res.statusCode} ${res.body}`)
      if (i > 0) times[name].push(Number(process.hrtime.bigint() - started) / 1e6) // the first call warms up
    }
  }
  const stat = (list) => { list.sort((a, b) => a - b); return `${percentile(list, 0.5).toFixed(1)} / ${percentile(list, 0.95).toFixed(1)}` }
  rows.push({ route: routes('<id>')[r], 'baseline p50/p95 ms': stat(times.baseline), 'this p50/p95 ms': stat(times.this) })
}
console.table(rows)
for (const s of Object.values(servers)) await s.app.close()
