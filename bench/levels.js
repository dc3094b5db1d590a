// npm run bench:levels: what level 2 costs the request thread on an endpoint without outliers, and what
// another route's level 2 costs a level-1 route (#18). Three apps in this one process, on PostgreSQL:
// the hello route at level 1, at level 2, and at level 1 while another route is at level 2. Each round
// sends the same number of requests to each with inject() (no network, no client in another process),
// in a rotating order, and reads this thread's own CPU time from /proc: the writers' threads and the
// database do not count, and neither do other processes, which makes it steadier than `npm run bench`
// on a shared machine. Outliers are off by `minDurationMs` (no request is an outlier, so the stack
// sampler never starts).
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import monitor from '../dist/index.js'
import { BENCH_DATABASE_URL, countRowsAndDropTables } from './postgres.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : fallback }
const ROUNDS = arg('rounds', 10)
const REQUESTS = arg('requests', 50_000)

// utime + stime of the thread whose tid is the pid (the main thread), in µs; ticks of 10 ms
function mainThreadCpuUs () {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

async function start (name, level, otherLevel) {
  const prefix = `bench${process.pid}_${level}${otherLevel ?? ''}_`
  const app = Fastify({ logger: false })
  await app.register(monitor, {
    database: BENCH_DATABASE_URL,
    tablePrefix: prefix,
    defaultMonitorLevel: level,
    appVersion: 'bench',
    metrics: false,
    outliers: { minDurationMs: 600_000 }
  })
  app.get('/users/:id', async (request) => ({ id: request.params.id, name: 'Ada', roles: ['admin', 'dev'] }))
  app.get('/other/:id', async (request) => ({ id: request.params.id }))
  await app.ready()
  await app.monitor.ready
  if (otherLevel !== undefined) await app.monitor.setMonitorLevel('GET', '/other/:id', otherLevel)
  return { name, app, prefix, cpuPerRequestUs: [] }
}

const servers = [
  await start('level 1', 1),
  await start('level 2', 2),
  await start('level 1, another route at level 2', 1, 2)
]

async function run (server, count) {
  const before = mainThreadCpuUs()
  for (let i = 0; i < count; i++) await server.app.inject({ url: `/users/${i}` })
  return (mainThreadCpuUs() - before) / count
}

for (const server of servers) await run(server, 5_000) // warm-up: compiled code, endpoint registration
for (let round = 0; round < ROUNDS; round++) {
  const order = servers.slice(round % servers.length).concat(servers.slice(0, round % servers.length))
  for (const server of order) {
    server.cpuPerRequestUs.push(await run(server, REQUESTS))
    // let the writers take the batches before the next server's turn
    await server.app.monitor.flush()
  }
  console.error(`round ${round + 1}: ${servers.map((s) => `${s.name} ${s.cpuPerRequestUs.at(-1).toFixed(2)} µs`).join(', ')}`)
}

const median = (values) => { const s = [...values].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const base = servers[0].cpuPerRequestUs
const rows = servers.map((s) => {
  const paired = s.cpuPerRequestUs.map((v, i) => v - base[i])
  return {
    server: s.name,
    'main thread µs/request (median)': median(s.cpuPerRequestUs).toFixed(2),
    'over level 1, paired by round (median)': median(paired).toFixed(2),
    'paired differences': paired.map((d) => d.toFixed(1)).join(' ')
  }
})
for (const s of servers) {
  const stats = s.app.monitor.stats()
  await s.app.close()
  const rowsStored = await countRowsAndDropTables(s.prefix)
  if (stats.dropped > 0 || rowsStored < (ROUNDS * REQUESTS + 5_000)) console.error(`${s.name}: ${rowsStored} rows stored, ${stats.dropped} dropped`)
}
console.table(rows)
console.log(`${ROUNDS} rounds of ${REQUESTS} requests each (inject, the hello route); #18's target: level 2 ≤ 2 µs over level 1, and 0 for another route's level 2`)
