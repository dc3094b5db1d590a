// npm run bench:outage — steady HTTP load through the plugin while PostgreSQL is unreachable for a
// while (a TCP proxy between the plugin and the server is cut, then restored); counts lost records.
import Fastify from 'fastify'
import autocannon from 'autocannon'
import { countRowsAndDropTables } from './postgres.js'
import monitor from '../dist/index.js'
import { TcpProxy } from '../test/tcp-proxy.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : fallback }
const RATE = arg('rate', 2_000)
const OUTAGE_S = arg('outage', 60)
const BEFORE_S = 10
const AFTER_S = 20
const prefix = `bencho${process.pid}_`
const proxy = await new TcpProxy().start()

const app = Fastify()
await app.register(monitor, { database: proxy.url(), tablePrefix: prefix, appVersion: 'bench', retryMaxDelayMs: 2_000 })
app.get('/users/:id', async (request) => ({ id: request.params.id }))
await app.listen({ port: 0, host: '127.0.0.1' })
await app.monitor.ready
let served = 0
app.server.on('request', () => { served++ })

let peakBuffered = 0
const sampler = setInterval(() => { peakBuffered = Math.max(peakBuffered, app.monitor.stats().buffered) }, 200)
setTimeout(() => { console.error(`cutting the database for ${OUTAGE_S} s`); proxy.cut() }, BEFORE_S * 1000)
setTimeout(() => { console.error('database back'); proxy.restore() }, (BEFORE_S + OUTAGE_S) * 1000)
const result = await autocannon({
  url: `http://127.0.0.1:${app.server.address().port}/users/1`,
  connections: 10,
  overallRate: RATE,
  duration: BEFORE_S + OUTAGE_S + AFTER_S
})
clearInterval(sampler)
await app.monitor.flush()
const stats = app.monitor.stats()
await app.close()
await proxy.close()

const stored = await countRowsAndDropTables(prefix)

const summary = {
  rate: RATE, outageS: OUTAGE_S, served, stored, lost: served - stored, dropped: stats.dropped,
  writeErrors: stats.writeErrors, peakBuffered, non2xx: result.non2xx, p99Ms: result.latency.p99
}
console.table([summary])
if (summary.lost !== 0) { console.error('FAILED: records were lost'); process.exitCode = 1 }
