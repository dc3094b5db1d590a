// npm run bench:ingest: a collector (the plugin with dashboard.ingestToken, on PostgreSQL) taking batches
// from senders over HTTP, as fast as it stores them: rows per second, and the CPU each stored row costs
// the collector's process and PostgreSQL. --seconds 20 --senders 4 --batch 2500 [--gzip]
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { gzipSync } from 'node:zlib'
import pg from 'pg'
import { BENCH_DATABASE_URL, postgresCpuByProcessUs, postgresCpuSinceUs } from './postgres.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : fallback }
const SECONDS = arg('seconds', 20)
const SENDERS = arg('senders', 4)
const BATCH = arg('batch', 2500)
const GZIP = argv.includes('--gzip')
const TOKEN = 'bench-ingest-token-0000'

const child = fork(new URL('./server.js', import.meta.url), ['level1-postgres-collector'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const [{ port }] = await once(child, 'message')
const url = `http://127.0.0.1:${port}/dashboard/api/ingest`
const sample = async () => { child.send('sample'); const [m] = await once(child, 'message'); return m }

const routes = Array.from({ length: 20 }, (_, i) => ({ method: 'GET', route: `/svc/r${i}/:id` }))
function body (id) {
  const now = Date.now()
  const requests = { endpoint: [], time: [], durationMs: [], statusCode: [], seq: [], group: [], ip: [] }
  for (let i = 0; i < BATCH; i++) {
    requests.endpoint.push(i % routes.length)
    requests.time.push(now - (BATCH - i) * 0.05)
    requests.durationMs.push(1 + (i % 97) / 3)
    requests.statusCode.push(i % 50 === 0 ? 500 : 200)
    requests.seq.push(i)
    requests.group.push(`user-${i % 200}`)
    requests.ip.push(`10.0.${i % 16}.${i % 50}`)
  }
  const json = JSON.stringify({ batch: id, version: 'svc-bench', instance: { host: 'bench', pid: process.pid, token: 'bench-sender' }, endpoints: routes, requests })
  return GZIP ? gzipSync(json) : json
}
const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(GZIP ? { 'content-encoding': 'gzip' } : {}) }

// one warm-up batch (endpoints created, JIT), then the measured run
await fetch(url, { method: 'POST', headers, body: body('warm-up') })
const before = await sample()
const postgresBefore = postgresCpuByProcessUs()
const started = performance.now()
let sent = 0
let failed = 0
await Promise.all(Array.from({ length: SENDERS }, async (_, s) => {
  for (let k = 0; performance.now() - started < SECONDS * 1000; k++) {
    const res = await fetch(url, { method: 'POST', headers, body: body(`s${s}-${k}`) })
    if (res.status === 200 && (await res.json()).stored) sent += BATCH
    else failed++
  }
}))
const elapsedS = (performance.now() - started) / 1000
const after = await sample()
const postgresUs = postgresCpuSinceUs(postgresBefore)
// what the database holds (server.js names its tables by its pid), before the collector drops them
const client = new pg.Client({ connectionString: BENCH_DATABASE_URL })
await client.connect()
const { rows: [{ n }] } = await client.query(`select count(*) as n from "bench${child.pid}_request" where group_by is not null`)
await client.end()
child.send('stop')
await once(child, 'message')
if (Number(n) !== sent + BATCH) throw new Error(`the database holds ${n} rows, the collector answered ${sent + BATCH} stored`)
const rows = sent
const appUs = (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / rows
console.table([{
  senders: SENDERS,
  'rows/batch': BATCH,
  gzip: GZIP,
  seconds: Number(elapsedS.toFixed(1)),
  'rows stored': rows,
  'failed batches': failed,
  'rows/s': Math.round(rows / elapsedS),
  'collector µs/row': appUs.toFixed(2),
  'collector main thread µs/row': ((after.mainCpuUs - before.mainCpuUs) / rows).toFixed(2),
  'postgres µs/row': (postgresUs / rows).toFixed(2)
}])
