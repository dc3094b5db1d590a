// npm run bench:writer — sustained recording into PostgreSQL through the plugin's own collector and
// writer thread (no HTTP: the rate is the point). Reports drops, buffer high-water mark, memory, and the CPU
// each stored row costs this process (request + writer threads) and PostgreSQL (the writer's backends; and all of
// its processes, autovacuum and the WAL writer included, which counts whatever else the server does meanwhile).
import pg from 'pg'
import { BENCH_DATABASE_URL, countRowsAndDropTables, postgresCpuByProcessUs, postgresCpuSinceUs, writerBackendCpuUs } from './postgres.js'
import { Collector } from '../dist/collection/collector.js'
import { resolveOptions } from '../dist/options.js'
import { StorageClient } from '../dist/storage/client.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : fallback }
const RATE = arg('rate', 20_000)
const SECONDS = arg('seconds', 60)
// --flush ms, --batch rows: the plugin's flushIntervalMs and maxBatchSize (defaults when absent)
const FLUSH_MS = arg('flush', undefined)
const BATCH_ROWS = arg('batch', undefined)
// --endpoints N: rows spread over N routes in turn (1 by default, as on the hello route)
const ENDPOINTS = arg('endpoints', 1)
const url = BENCH_DATABASE_URL
const prefix = `benchw${process.pid}_`

const resolved = resolveOptions({ database: url, tablePrefix: prefix, appVersion: 'bench', flushIntervalMs: FLUSH_MS, maxBatchSize: BATCH_ROWS }, {})
const { groupBy, ignoreMethods, ignoreRoutes, enabled, ...storageOptions } = resolved
const log = Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].map((level) =>
  [level, (obj, msg) => { if (level === 'warn' || level === 'error') console.error(level, msg ?? obj, obj?.err?.message ?? '') }]))
const storage = new StorageClient(storageOptions, log, { onLevels: () => {} })
const collector = new Collector((batch, lastSeen) => storage.send(batch, lastSeen), storageOptions.flushIntervalMs)
await storage.ready
await storage.registerEndpoints([{ index: 0, method: '*', route: '__unmatched__' },
  ...Array.from({ length: ENDPOINTS }, (_, i) => ({ index: 1 + i, method: 'GET', route: i === 0 ? '/users/:id' : `/route${i}/:id` }))])

const ips = Array.from({ length: 50 }, (_, i) => `10.0.${i >> 4}.${i & 15}`)
const users = Array.from({ length: 200 }, (_, i) => `user-${i}`)
const pgCpuBefore = await writerBackendCpuUs(prefix)
// every postgres process too: autovacuum cleaning what the rollups' updates leave, the WAL writer, checkpoints
const pgAllBefore = postgresCpuByProcessUs()
const cpuBefore = process.cpuUsage()
let recorded = 0
let maxBuffered = 0
let maxRssMb = 0
const started = performance.now()
await new Promise((resolve) => {
  const tick = setInterval(() => {
    const elapsed = (performance.now() - started) / 1000
    const due = Math.min(Math.floor(elapsed * RATE), RATE * SECONDS)
    const now = Date.now()
    for (; recorded < due; recorded++) {
      collector.record(1 + (recorded % ENDPOINTS), now, 1 + (recorded % 97) / 3, recorded % 50 === 0 ? 500 : 200, users[recorded % users.length], ips[recorded % ips.length])
    }
    maxBuffered = Math.max(maxBuffered, storage.stats.buffered)
    maxRssMb = Math.max(maxRssMb, process.memoryUsage().rss / 1e6)
    if (elapsed >= SECONDS) { clearInterval(tick); resolve() }
  }, 5)
})
const flushStarted = performance.now()
collector.flush()
await storage.flush()
const drainMs = performance.now() - flushStarted
const cpu = process.cpuUsage(cpuBefore)
// read while the backends live: a backend's CPU leaves /proc with its connection
const pgCpuAfter = await writerBackendCpuUs(prefix)
let pgCpuUs = 0
for (const [pid, us] of pgCpuAfter) pgCpuUs += us - (pgCpuBefore.get(pid) ?? 0)
const pgAllCpuUs = postgresCpuSinceUs(pgAllBefore)
// what the hourly rollups hold on disk (tables and indexes) for a few hundred live rows: dead versions the updates left
const sizes = new pg.Client({ connectionString: url })
await sizes.connect()
const { rows: [{ bytes }] } = await sizes.query(`select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint as bytes from pg_class c
  where c.relkind = 'r' and c.relname = any($1)`, [['endpoint_hour', 'version_hour', 'request_hour', 'version_total_hour'].map((t) => prefix + t)])
await sizes.end()
const stats = storage.stats
await storage.close(10_000)

const stored = await countRowsAndDropTables(prefix)

const result = {
  rate: RATE, seconds: SECONDS, endpoints: ENDPOINTS, recorded, stored, dropped: stats.dropped, writeErrors: stats.writeErrors,
  maxBuffered, drainAfterEndMs: Math.round(drainMs), maxRssMb: Math.round(maxRssMb), batches: stats.batchesWritten,
  'app µs/row': ((cpu.user + cpu.system) / recorded).toFixed(2), 'postgres µs/row': (pgCpuUs / recorded).toFixed(2),
  'all postgres µs/row': (pgAllCpuUs / recorded).toFixed(2), 'hourly rollups MB': (Number(bytes) / 1e6).toFixed(1)
}
console.table([result])
if (result.stored !== recorded || result.dropped !== 0) { console.error('FAILED: records were lost'); process.exitCode = 1 }
