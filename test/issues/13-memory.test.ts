// Issue #13.6: with the database down, hostile 15 KB X-Forwarded-For and group-by values must not grow
// memory past maxBufferedBytes: strings are cut when a request is recorded, the buffer counts bytes, and
// what does not fit is dropped and counted.
import t from 'tap'
import { backend, buildApp, until, withPostgres } from '../helpers.js'
import { TcpProxy } from '../tcp-proxy.js'

const MAX_BYTES = 1024 * 1024
const REQUESTS = 3000
const HUGE = 15_000

t.test('database down, 15 KB headers: the buffer stays under maxBufferedBytes, drops are counted, stored strings are cut', async (t) => {
  const proxy = await new TcpProxy().start()
  t.teardown(() => proxy.close())
  const store = await backend('postgres', { database: proxy.url() })
  t.teardown(store.cleanup)
  const app = await buildApp({
    ...store.options,
    flushIntervalMs: 20,
    maxBufferedBytes: MAX_BYTES,
    groupBy: (request) => request.headers['x-user'] as string | undefined
  }, { trustProxy: true })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  proxy.cut()

  const rssBefore = process.memoryUsage().rss
  const filler = 'f'.repeat(HUGE)
  for (let i = 0; i < REQUESTS; i++) {
    // distinct values, so interning per batch saves nothing
    await app.inject({ url: `/users/${i}`, headers: { 'x-forwarded-for': `${i}-${filler}`, 'x-user': `${filler}-${i}` } })
  }
  t.ok(await until(() => { const s = app.monitor.stats(); return s.buffered + s.dropped >= REQUESTS }), 'every record reached the writer: buffered or dropped')
  const stats = app.monitor.stats()
  t.ok(stats.bufferedBytes <= MAX_BYTES, `the buffer holds ${stats.bufferedBytes} bytes, at most ${MAX_BYTES}`)
  t.ok(stats.dropped > 0, `${stats.dropped} records dropped`)
  // uncut, 1 MiB would hold about 17 such records; cut when recorded, about 1,400
  t.ok(stats.buffered >= 1000, `${stats.buffered} records buffered: strings were cut when recorded`)
  // 3000 × 2 × 15 KB would be 90 MB held uncut; the process's RSS also holds inject()'s garbage, so it is
  // reported, and the bound is checked on what the writer counts
  t.comment(`RSS grew ${((process.memoryUsage().rss - rssBefore) / 1e6).toFixed(1)} MB while sending`)
  const metrics = (await app.inject('/metrics')).body
  const dropped = Number(/^fastify_monitor_records_dropped_total (\d+)/m.exec(metrics)?.[1])
  t.equal(dropped, stats.dropped, 'drops are counted in /metrics')

  proxy.restore()
  await app.monitor.flush()
  const stored = await withPostgres(async (client) => (await client.query<{ n: number, ip: number, grp: number }>(
    `select count(*)::int as n, max(length(ip))::int as ip, max(length(group_by))::int as grp from "${store.prefix}request"`)).rows[0]!)
  t.equal(stored.n, REQUESTS - stats.dropped, 'what was kept is stored once the database is back')
  t.ok(stored.ip <= 64, `IPs cut to 64 characters (longest ${stored.ip})`)
  t.ok(stored.grp <= 256, `group-by values cut to 256 characters (longest ${stored.grp})`)
})
