// npm run bench:levels: what level 2 costs the request thread on an endpoint without outliers, and what
// another route's level 2 costs a level-1 route (#18). Each measurement is a new process (this file with
// --child) running one app on PostgreSQL: the hello route at level 1, at level 2, or at level 1 while
// another route is at level 2. It sends requests with inject() (no network, no client in another process)
// and reads its main thread's own CPU time from /proc: the writer's thread, the database and other
// processes do not count, which makes it steadier than `npm run bench` on a shared machine. Rounds run the
// three in a rotating order. Outliers are off by `minDurationMs` (no request is one, so the stack sampler
// never starts). One app per process: apps sharing a process share Fastify's compiled code, and the extra
// properties level 2 sets on its replies would make that code slower for the others too.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const ROUNDS = Number(arg('rounds', 8))
const REQUESTS = Number(arg('requests', 50_000))
const WARM_UP = 5_000

const SERVERS = {
  'level 1': { level: 1 },
  'level 2': { level: 2 },
  'level 1, another route at level 2': { level: 1, otherLevel: 2 }
}

// utime + stime of the thread whose tid is the pid (the main thread), in µs; ticks of 10 ms
function mainThreadCpuUs () {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

async function child (name) {
  const { level, otherLevel } = SERVERS[name]
  const { default: Fastify } = await import('fastify')
  const { default: monitor } = await import('../dist/index.js')
  const { BENCH_DATABASE_URL, countRowsAndDropTables } = await import('./postgres.js')
  const prefix = `bench${process.pid}_`
  const app = Fastify({ logger: false })
  await app.register(monitor, { database: BENCH_DATABASE_URL, tablePrefix: prefix, defaultMonitorLevel: level, appVersion: 'bench', metrics: false, outliers: { minDurationMs: 600_000 } })
  app.get('/users/:id', async (request) => ({ id: request.params.id, name: 'Ada', roles: ['admin', 'dev'] }))
  app.get('/other/:id', async (request) => ({ id: request.params.id }))
  await app.ready()
  await app.monitor.ready
  if (otherLevel !== undefined) await app.monitor.setMonitorLevel('GET', '/other/:id', otherLevel)
  for (let i = 0; i < WARM_UP; i++) await app.inject({ url: `/users/${i}` })
  const before = mainThreadCpuUs()
  for (let i = 0; i < REQUESTS; i++) await app.inject({ url: `/users/${i}` })
  const cpuPerRequestUs = (mainThreadCpuUs() - before) / REQUESTS
  await app.monitor.flush()
  const { dropped } = app.monitor.stats()
  await app.close()
  const stored = await countRowsAndDropTables(prefix)
  process.send({ cpuPerRequestUs, stored, dropped })
}

async function parent () {
  const names = Object.keys(SERVERS)
  const results = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.slice(round % names.length).concat(names.slice(0, round % names.length))
    for (const name of order) {
      const worker = fork(new URL(import.meta.url), ['--child', name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      const [message] = await once(worker, 'message')
      await once(worker, 'exit')
      if (message.dropped > 0 || message.stored !== WARM_UP + REQUESTS) console.error(`${name}: ${message.stored} rows stored, ${message.dropped} dropped`)
      results[name].push(message.cpuPerRequestUs)
    }
    console.error(`round ${round + 1}: ${names.map((name) => `${name} ${results[name].at(-1).toFixed(2)} µs`).join(', ')}`)
  }
  const median = (values) => { const s = [...values].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
  const base = results[names[0]]
  console.table(names.map((name) => {
    const paired = results[name].map((v, i) => v - base[i])
    return {
      server: name,
      'main thread µs/request (median)': median(results[name]).toFixed(2),
      'over level 1, paired by round (median)': median(paired).toFixed(2),
      'paired differences': paired.map((d) => d.toFixed(1)).join(' ')
    }
  }))
  console.log(`${ROUNDS} rounds of ${REQUESTS} requests each (inject, the hello route, one process per measurement); #18's target: level 2 ≤ 2 µs over level 1, and 0 for another route's level 2`)
}

if (argv[0] === '--child') await child(argv[1])
else await parent()
