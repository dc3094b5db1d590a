// One server under test, started by bench/overhead.js as a child process.
// argv[2]: bare | bare-loaded | empty-hook (onResponse) | empty-onrequest | fastify-metrics | level<0-3>-<pglite|postgres|remote>[-variant][@before] | dc-probe
// (remote: the service sends to the collector at BENCH_REMOTE_URL, which bench/overhead.js starts)
// (variants: nometrics, nodefaultmetrics, nostacks = level 2 without the stack sampler, nooutliers = level 2 where no
// request is an outlier, collector = the ingest route on,
// otherlevel2 = the CPU route /work/:id at level 2 while the measured routes keep the server's level)
// `@before`: the plugin built elsewhere (BENCH_BEFORE_DIST, a dist/ folder), to compare two builds in one run
import Fastify from 'fastify'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const kind = process.argv[2]
const app = Fastify({ logger: false })
let cleanup = async () => {}

if (kind === 'dc-probe') {
  // prototype: no Fastify hook; Node's own response-finish channel plus a handler wrapper set in onRoute
  const { subscribe } = await import('node:diagnostics_channel')
  const kRoute = Symbol('route')
  let observed = 0
  app.addHook('onRoute', (route) => {
    const handler = route.handler
    const tag = { route: route.url }
    route.handler = function (request, reply) { request.raw[kRoute] = tag; return handler.call(this, request, reply) }
  })
  subscribe('http.server.response.finish', (message) => {
    if (message.server !== app.server) return
    const tag = message.request[kRoute]
    if (tag !== undefined && message.response.statusCode > 0) observed++
  })
} else if (kind === 'bare-loaded') {
  // bare Fastify in a process that has loaded the plugin's modules (not registered) and runs an idle worker thread:
  // what any app with as many ES modules and a worker has. Against bare, it shows what Node and V8 cost per request
  // for that alone: the ES module loader's FileHandles and the Worker are more EventEmitter classes, which made V8's
  // feedback in Node's EventEmitter.init megamorphic, so each ServerResponse paid generic stores (bench:instructions)
  await import('../dist/index.js')
  const { Worker } = await import('node:worker_threads')
  const worker = new Worker('setInterval(() => {}, 60_000)', { eval: true })
  cleanup = async () => { await worker.terminate() }
} else if (kind === 'empty-hook') {
  app.addHook('onResponse', (request, reply, done) => done())
} else if (kind === 'empty-onrequest') {
  app.addHook('onRequest', (request, reply, done) => done())
} else if (kind === 'fastify-metrics') {
  const { default: metrics } = await import('fastify-metrics')
  await app.register(metrics, { endpoint: '/metrics' })
} else if (kind !== 'bare') {
  const [spec, build] = kind.split('@')
  const dist = build === 'before' ? new URL(`file://${process.env.BENCH_BEFORE_DIST}/index.js`).href : '../dist/index.js'
  const { default: monitor } = await import(dist)
  // level<N>-<pglite|postgres>[-nometrics|-nodefaultmetrics|-nostacks|-nooutliers]
  const [level, backend, variant] = spec.replace('level', '').split('-')
  const prefix = `bench${process.pid}_`
  const options = { defaultMonitorLevel: Number(level), tablePrefix: prefix, appVersion: 'bench' }
  // BENCH_OPTIONS='{"outliers":{"sampleIntervalUs":10000}}' merges into the plugin's options
  if (process.env.BENCH_OPTIONS !== undefined) Object.assign(options, JSON.parse(process.env.BENCH_OPTIONS))
  if (variant === 'nometrics') options.metrics = false
  if (variant === 'nodefaultmetrics') options.metrics = { defaultMetrics: false }
  if (variant === 'nostacks') options.outliers = { stackSampling: 'off' }
  // level 2 on an endpoint without outliers: no request is one, so the stack sampler never starts
  if (variant === 'nooutliers') options.outliers = { minDurationMs: 600_000 }
  // a collector: other processes POST batches to <prefix>/api/ingest (bench/ingest.js)
  if (variant === 'collector') options.dashboard = { ingestToken: 'bench-ingest-token-0000' }
  if (backend === 'remote') {
    options.remote = { url: process.env.BENCH_REMOTE_URL, token: 'bench-ingest-token-0000' }
    delete options.tablePrefix
  } else if (backend === 'postgres') {
    const { BENCH_DATABASE_URL, countRowsAndDropTables } = await import('./postgres.js')
    options.database = BENCH_DATABASE_URL
    cleanup = async () => { await countRowsAndDropTables(prefix) }
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'fmd-bench-'))
    options.dataDir = join(dir, 'data')
    cleanup = async () => rmSync(dir, { recursive: true, force: true })
  }
  await app.register(monitor, options)
}

app.get('/users/:id', async (request) => ({ id: request.params.id, name: 'Ada', roles: ['admin', 'dev'] }))

/** The CPU-heavy route's fixed work (about 0.2 ms of CPU here): a naive Fibonacci. */
function fibonacci (n) {
  return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2)
}
app.get('/work/:id', async (request) => ({ id: request.params.id, value: fibonacci(22) }))

await app.listen({ port: 0, host: '127.0.0.1' })
if (app.monitor) await app.monitor.ready
// does a route at level ≤ 1 pay for another route's level 2? (#18) Measure the hello route on this server.
if (kind.split('@')[0].endsWith('-otherlevel2')) await app.monitor.setMonitorLevel('GET', '/work/:id', 2)

let served = 0
app.server.on('request', () => { served++ })

// CPU of the main (request) thread alone, in µs: utime + stime of the thread whose tid is the pid
const TICK_US = 10_000
function mainThreadCpuUs () {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_US
}

process.on('message', async (message) => {
  if (message === 'sample') {
    process.send({ cpu: process.cpuUsage(), mainCpuUs: mainThreadCpuUs(), served, memory: process.memoryUsage().rss, stats: app.monitor?.stats() })
  } else if (message === 'flush') {
    // bench/instructions.js hands over its requests in batches of one size, whatever rate valgrind allows
    if (app.monitor) await app.monitor.flush()
    process.send({ flushed: true })
  } else if (message === 'stop') {
    if (app.monitor) await app.monitor.flush()
    const stats = app.monitor?.stats()
    await app.close()
    await cleanup()
    process.send({ stopped: true, stats })
    process.exit(0)
  }
})
process.send({ port: app.server.address().port })
