// #14: migration 0008 converts the old per-bucket rollups in place. A database is built with the
// migrations before it and filled with requests and their rollups as the old writer kept them; the
// answers the old rollups give are read with the old queries' arithmetic; then the plugin starts on it
// (migrating to the latest schema) and its API must give the same answers, bucket for bucket.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import monitor from '../../lib/index.js'
import { bucketValue } from '../../lib/db/rollup.js'
import { DIALECTS, backend, migratedTo, until } from '../helpers.js'

const DAY_MS = 86_400_000
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const LAST_OLD_MIGRATION = '0006_session_generation'
// the old schema's bucket (migration 0003's), frozen here as there
const OLD_BUCKET = sql`ceil(ln(greatest(duration_ms, 0.001)) / ${sql.lit(Math.log(1.02 / 0.98))})::smallint`

/** Quantiles of summed bucket rows, as the old `distributionsFromBuckets` computed them. */
function fromBuckets (rows: Array<{ bucket: number, hits: string | number }>): { count: number, median: number, p95: number } {
  const byBucket = new Map<number, number>()
  for (const row of rows) byBucket.set(row.bucket, (byBucket.get(row.bucket) ?? 0) + Number(row.hits))
  const sorted = [...byBucket].sort((a, b) => a[0] - b[0])
  const n = sorted.reduce((sum, [, hits]) => sum + hits, 0)
  const quantile = (q: number): number => {
    let cum = 0
    for (const [bucket, hits] of sorted) { cum += hits; if (cum >= q * n) return bucketValue(bucket) }
    return NaN
  }
  return { count: n, median: quantile(0.5), p95: quantile(0.95) }
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: 0008 converts the rollups in place and the API answers as before`, async (t) => {
    const store = await backend(dialect, { unmigrated: true })
    t.teardown(store.cleanup)
    const prefix = store.prefix
    const { db, close } = await migratedTo(store, LAST_OLD_MIGRATION)

    // 3 endpoints, 3 versions, 90 days (three months at least), a few thousand requests
    const now = Date.now()
    const from = Math.floor(now / DAY_MS) * DAY_MS - 90 * DAY_MS
    await sql`insert into ${sql.table('endpoint')} (method, route, monitor_level) values ('GET', '/a', 1), ('GET', '/b/:id', 1), ('POST', '/c', 1)`.execute(db)
    await sql`insert into ${sql.table('version')} (version) values ('v1'), ('v2'), ('v3')`.execute(db)
    await sql`insert into ${sql.table('instance')} (host, pid, token) values ('old', 1, 'old')`.execute(db)
    for (let day = from / DAY_MS; day <= Math.floor(now / DAY_MS); day++) {
      await sql`create table ${sql.table(`request_p${new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')}`)} partition of ${sql.table('request')}
        for values from (${sql.lit(new Date(day * DAY_MS).toISOString())}) to (${sql.lit(new Date((day + 1) * DAY_MS).toISOString())})`.execute(db)
    }
    const n = 6000
    const rows = Array.from({ length: n }, (_, i) => {
      const time = from + Math.floor(((i * 7919) % n) / n * (now - 60_000 - from))
      return `(${1 + (i % 3)}, to_timestamp(${time / 1000}), ${Math.exp(1 + 3 * (((i * 104729) % 1000) / 1000))}, ${i % 17 === 0 ? 500 : i % 11 === 0 ? 404 : 200}, ${1 + Math.min(2, Math.floor((time - from) / (now - from) * 3))}, 1)`
    })
    await sql`insert into ${sql.table('request')} (endpoint_id, time_requested, duration_ms, status_code, version_id, instance_id) values ${sql.raw(rows.join(', '))}`.execute(db)
    // the old rollups, as migration 0003 backfills them (and the old writer kept them)
    await sql`insert into ${sql.table('request_hour')} (endpoint_id, hour, version_id, status_code, hits, duration_sum)
      select endpoint_id, date_trunc('hour', time_requested, 'UTC'), version_id, status_code, count(*), sum(duration_ms) from ${sql.table('request')} group by 1, 2, 3, 4`.execute(db)
    await sql`insert into ${sql.table('duration_hour')} (endpoint_id, hour, version_id, bucket, hits)
      select endpoint_id, date_trunc('hour', time_requested, 'UTC'), version_id, ${OLD_BUCKET}, count(*) from ${sql.table('request')} group by 1, 2, 3, 4`.execute(db)
    await sql`insert into ${sql.table('duration_day')} (endpoint_id, day, version_id, bucket, hits)
      select endpoint_id, (time_requested at time zone 'UTC')::date, version_id, ${OLD_BUCKET}, count(*) from ${sql.table('request')} group by 1, 2, 3, 4`.execute(db)

    // what the old rollups answer: all time (daily sketches), a 30-day window (hourly), per version (hourly)
    const windowFrom = new Date(Math.floor(now / DAY_MS) * DAY_MS - 30 * DAY_MS)
    const before = new Map<string, { count: number, median: number, p95: number }>()
    for (const endpoint of [1, 2, 3]) {
      const all = await sql<{ bucket: number, hits: string }>`select bucket, hits from ${sql.table('duration_day')} where endpoint_id = ${endpoint}`.execute(db)
      before.set(`all:${endpoint}`, fromBuckets(all.rows))
      const window = await sql<{ bucket: number, hits: string }>`select bucket, hits from ${sql.table('duration_hour')} where endpoint_id = ${endpoint} and hour >= ${windowFrom}`.execute(db)
      before.set(`window:${endpoint}`, fromBuckets(window.rows))
      for (const version of [1, 2, 3]) {
        const v = await sql<{ bucket: number, hits: string }>`select bucket, hits from ${sql.table('duration_hour')} where endpoint_id = ${endpoint} and version_id = ${version} and hour >= ${windowFrom}`.execute(db)
        if (v.rows.length > 0) before.set(`v${version}:${endpoint}`, fromBuckets(v.rows))
      }
    }
    const counts = await sql<{ endpoint_id: number, hits: string, c4: string, c5: string }>`select endpoint_id, sum(hits) as hits,
      coalesce(sum(hits) filter (where status_code between 400 and 499), 0) as c4, coalesce(sum(hits) filter (where status_code >= 500), 0) as c5
      from ${sql.table('request_hour')} group by 1`.execute(db)
    await close()

    // the plugin upgrades the schema at start
    const app: FastifyInstance = Fastify({ logger: false })
    await app.register(monitor, { ...store.options, appVersion: 'v-new', metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
    await app.ready()
    t.teardown(() => app.close())
    await app.monitor.ready
    await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('id').execute()).length >= 1)
    const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: ADMIN.username, password: ADMIN.password } })
    const cookie = String(login.headers['set-cookie']).split(';')[0]!
    const get = async (url: string): Promise<any> => (await app.inject({ url: `/dashboard/api${url}`, headers: { cookie } })).json()

    const tables = await sql<{ name: string }>`select table_name as name from information_schema.tables where table_name like ${`${prefix}duration%`}`.execute(app.monitor.db)
    t.same(tables.rows, [], 'the per-bucket tables are gone')
    const overview = await get('/overview?tz=UTC')
    const windowQuery = `from=${windowFrom.toISOString()}&to=${new Date(now + 60_000).toISOString()}`
    const performance = await get(`/performance?${windowQuery}`)
    for (const endpoint of [1, 2, 3]) {
      const row = overview.find((e: { id: number }) => e.id === endpoint)
      const count = counts.rows.find((c) => c.endpoint_id === endpoint)!
      t.same([row.allTime.hits, row.allTime.clientErrors, row.allTime.serverErrors], [Number(count.hits), Number(count.c4), Number(count.c5)], `endpoint ${endpoint}: all-time counts`)
      t.equal(row.allTime.median, before.get(`all:${endpoint}`)!.median, `endpoint ${endpoint}: all-time median`)
      const perf = performance.find((p: { endpointId: number }) => p.endpointId === endpoint)
      t.same([perf.count, perf.median, perf.p95], Object.values(before.get(`window:${endpoint}`)!), `endpoint ${endpoint}: 30-day distribution`)
      const detail = await get(`/endpoints/${endpoint}?${windowQuery}`)
      for (const version of [1, 2, 3]) {
        const old = before.get(`v${version}:${endpoint}`)
        const now = detail.byVersion.find((v: { version: string }) => v.version === `v${version}`)
        t.same(now === undefined ? undefined : [now.count, now.median, now.p95], old === undefined ? undefined : Object.values(old), `endpoint ${endpoint}, v${version}`)
      }
    }
  })
}
