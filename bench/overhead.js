// npm run bench: throughput and server CPU per request of bare Fastify, fastify-metrics and this
// plugin, measured in one run with interleaved rounds (the machine is noisy; compare within a run).
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { postgresCpuByProcessUs, postgresCpuSinceUs } from './postgres.js'
import { median } from './stats.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const SERVERS = (arg('servers', 'bare,empty-hook,fastify-metrics,level0-pglite,level0-postgres,level1-pglite,level1-postgres')).split(',')
const ROUNDS = Number(arg('rounds', 3))
const DURATION_S = Number(arg('duration', 6))
const CONNECTIONS = Number(arg('connections', 50))
// --rate N: every server gets N requests per second instead of as many as it can take. At saturation a
// faster server answers more requests per event-loop turn, which spreads its fixed costs thinner, so its
// CPU per request is not comparable with a slower one's; at one rate below every server's capacity it is.
const RATE = arg('rate', undefined) === undefined ? undefined : Number(arg('rate'))
// --processes round (the default): every server starts anew for each round. On the development VM a process
// could keep a speed of its own for its whole life: in one run with one process per server (--processes run)
// level 0 without /metrics served all 8 rounds at 33-36 µs of main-thread CPU per request (0.70 of bare)
// while bare Fastify's read 23 in five of them; in other runs the same server read 0.94 and 0.97 of bare.
// Whichever server drew a slow process lost every round, and the run's ratios with it. A new process per
// round makes that one slow round among several. (The machine also has slow phases, which slow every
// process for minutes: the paired figures, each round against bare of the same round, are for those.)
const PROCESSES = arg('processes', 'round')
if (PROCESSES !== 'round' && PROCESSES !== 'run') throw new Error('--processes must be round or run')
// hello: a route that does almost nothing (the plugin's cost shows in full); cpu: one that computes for ~0.2 ms
const ROUTE = arg('route', 'hello')
const PATHS = { hello: '/users/42', cpu: '/work/42' }
if (PATHS[ROUTE] === undefined) throw new Error(`--route must be one of ${Object.keys(PATHS).join(', ')}`)

async function start (kind) {
  const child = fork(new URL('./server.js', import.meta.url), [kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [message] = await once(child, 'message')
  return { kind, child, port: message.port }
}

async function sample (server) {
  server.child.send('sample')
  const [message] = await once(server.child, 'message')
  return message
}

// a service with `remote` sends to a collector (the plugin with its ingest route, on PostgreSQL): its CPU
// per request is counted beside the service's, as PostgreSQL's is
const collector = SERVERS.some((kind) => kind.includes('-remote')) ? await start('level1-postgres-collector') : undefined
if (collector !== undefined) process.env.BENCH_REMOTE_URL = `http://127.0.0.1:${collector.port}/dashboard`

async function stop (server) {
  server.child.send('stop')
  const [message] = await once(server.child, 'message')
  if (server.child.exitCode === null) await once(server.child, 'exit')
  return message.stats
}

async function measure (server) {
  const url = `http://127.0.0.1:${server.port}${PATHS[ROUTE]}`
  // warm-up: V8 optimises the hot paths, the writer has written its first batches
  await autocannon({ url, connections: CONNECTIONS, duration: PROCESSES === 'round' ? 2 : 1 })
  const remote = server.kind.includes('-remote') ? collector : undefined
  const collectorBefore = remote === undefined ? undefined : await sample(remote)
  const before = await sample(server)
  const postgresBefore = postgresCpuByProcessUs()
  const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S, ...(RATE === undefined ? {} : { overallRate: RATE }) })
  const after = await sample(server)
  const pgCpuUs = postgresCpuSinceUs(postgresBefore)
  const collectorAfter = remote === undefined ? undefined : await sample(remote)
  const served = after.served - before.served
  const collectorCpuUs = collectorBefore === undefined ? 0 : (collectorAfter.cpu.user + collectorAfter.cpu.system) - (collectorBefore.cpu.user + collectorBefore.cpu.system)
  const cpuUs = (after.cpu.user + after.cpu.system) - (before.cpu.user + before.cpu.system)
  const mainCpuUs = after.mainCpuUs - before.mainCpuUs
  return { rps: result.requests.average, p99: result.latency.p99, cpuPerRequestUs: cpuUs / served, mainCpuPerRequestUs: mainCpuUs / served, postgresCpuPerRequestUs: pgCpuUs / served, collectorCpuPerRequestUs: collectorCpuUs / served, errors: result.errors + result.non2xx, rssMb: after.memory / 1e6 }
}

const running = new Map()
if (PROCESSES === 'run') for (const kind of SERVERS) running.set(kind, await start(kind))
const results = Object.fromEntries(SERVERS.map((kind) => [kind, []]))
/** Per server: rows written and dropped, over all its processes. */
const finals = {}
const addFinal = (kind, stats) => {
  if (stats === undefined) return
  finals[kind] = { written: (finals[kind]?.written ?? 0) + stats.written, dropped: (finals[kind]?.dropped ?? 0) + stats.dropped }
}
for (let round = 0; round < ROUNDS; round++) {
  // rotate the order each round so no server always runs first or last
  const order = SERVERS.slice(round % SERVERS.length).concat(SERVERS.slice(0, round % SERVERS.length))
  for (const kind of order) {
    const server = running.get(kind) ?? await start(kind)
    const r = await measure(server)
    if (!running.has(kind)) addFinal(kind, await stop(server))
    results[kind].push(r)
    console.error(`round ${round + 1} ${kind.padEnd(16)} ${Math.round(r.rps)} req/s  p99 ${r.p99} ms  CPU/req: process ${r.cpuPerRequestUs.toFixed(1)} µs, main thread ${r.mainCpuPerRequestUs.toFixed(1)} µs, postgres ${r.postgresCpuPerRequestUs.toFixed(1)} µs${r.collectorCpuPerRequestUs > 0 ? `, collector ${r.collectorCpuPerRequestUs.toFixed(1)} µs` : ''}`)
  }
}
for (const server of running.values()) addFinal(server.kind, await stop(server))
if (collector !== undefined) addFinal(collector.kind, await stop(collector))

const bare = results.bare ? median(results.bare.map((r) => r.rps)) : undefined
const bareCpu = results.bare ? median(results.bare.map((r) => r.cpuPerRequestUs)) : undefined
const rows = SERVERS.map((kind) => {
  const rps = median(results[kind].map((r) => r.rps))
  const cpu = median(results[kind].map((r) => r.cpuPerRequestUs))
  return {
    server: kind,
    'req/s': Math.round(rps),
    'ratio to bare': bare ? (rps / bare).toFixed(3) : '-',
    'p99 ms': median(results[kind].map((r) => r.p99)),
    'CPU µs/req': cpu.toFixed(1),
    'CPU over bare µs': bareCpu ? (cpu - bareCpu).toFixed(1) : '-',
    'main thread µs/req': median(results[kind].map((r) => r.mainCpuPerRequestUs)).toFixed(1),
    'postgres µs/req': median(results[kind].map((r) => r.postgresCpuPerRequestUs)).toFixed(1),
    'collector µs/req': median(results[kind].map((r) => r.collectorCpuPerRequestUs)).toFixed(1),
    errors: results[kind].reduce((n, r) => n + r.errors, 0),
    'written/dropped': finals[kind] ? `${finals[kind].written}/${finals[kind].dropped}` : '-'
  }
})
console.table(rows)

// issue #18's targets: each plugin server against bare Fastify and fastify-metrics of this same run
const MEASURES = ['rps', 'cpuPerRequestUs', 'postgresCpuPerRequestUs', 'collectorCpuPerRequestUs']
const medians = (kind) => Object.fromEntries(MEASURES.map((key) => [key, median(results[kind].map((r) => r[key]))]))
/** #18's figures of a server's measurement `r` against bare Fastify's `b` and fastify-metrics' `fm`. */
function targetsOf (kind, r, b, fm) {
  const app = r.cpuPerRequestUs - b.cpuPerRequestUs
  const fmApp = fm.cpuPerRequestUs - b.cpuPerRequestUs
  // a sender's rows cost the collector and its PostgreSQL: both count as this server's
  const pgRow = kind.includes('postgres') || kind.includes('remote') ? r.postgresCpuPerRequestUs - b.postgresCpuPerRequestUs + r.collectorCpuPerRequestUs : 0
  return { app, fmApp, appRatio: app / fmApp, pgRatio: pgRow / fmApp, allRatio: (app + pgRow) / fmApp, throughput: r.rps / b.rps, overFm: (r.rps - fm.rps) / b.rps }
}
if (results.bare && results['fastify-metrics']) {
  const fmRatio = medians('fastify-metrics').rps / bare
  const targets = SERVERS.filter((kind) => kind.startsWith('level')).map((kind) => {
    const t = targetsOf(kind, medians(kind), medians('bare'), medians('fastify-metrics'))
    // the same figures round by round, each against bare and fastify-metrics of its own round (measured
    // minutes apart at most, so a drift of the machine's speed cancels), then their median over the rounds
    const rounds = results[kind].map((r, round) => targetsOf(kind, r, results.bare[round], results['fastify-metrics'][round]))
    const paired = (key) => median(rounds.map((round) => round[key]))
    return {
      server: kind,
      'app CPU added µs': t.app.toFixed(1),
      'fastify-metrics added µs': t.fmApp.toFixed(1),
      'app added / fm added (≤ 0.2)': t.appRatio.toFixed(2),
      'postgres µs/row / fm added (≤ 0.2)': t.pgRatio.toFixed(2),
      'all added / fm added (≤ 0.4)': t.allRatio.toFixed(2),
      'throughput / bare': t.throughput.toFixed(3),
      'minus fm\'s (≥ +0.2)': t.overFm.toFixed(3),
      'paired: app / fm': paired('appRatio').toFixed(2),
      'paired: postgres / fm': paired('pgRatio').toFixed(2),
      'paired: all / fm': paired('allRatio').toFixed(2),
      'paired: throughput / bare': paired('throughput').toFixed(3),
      'paired: minus fm\'s': paired('overFm').toFixed(3)
    }
  })
  console.log(`route ${ROUTE}, ${ROUNDS} rounds of ${DURATION_S} s${RATE === undefined ? '' : ` at ${RATE} req/s`}, a new process per ${PROCESSES}; fastify-metrics: ${fmRatio.toFixed(3)} of bare throughput`)
  console.table(targets)
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL(`./results/overhead-${Date.now()}.json`, import.meta.url), JSON.stringify({ route: ROUTE, rounds: ROUNDS, durationS: DURATION_S, connections: CONNECTIONS, rate: RATE, processes: PROCESSES, rows, results }, null, 2))
