// #14 at the wide shape, on a row count a test can hold: 40 endpoints of skewed popularity, 12 versions in
// succession, 2,000 users and 500 IPs over 25 days, generated as `npm run seed` generates them. Every figure
// the overview, API performance and versions views give is checked against the raw rows: counts exactly,
// medians and p95s within the rollups' documented relative error of the exact percentile_disc.
import t from 'tap'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../lib/db/database.js'
import { ROLLUP_RELATIVE_ERROR } from '../lib/db/rollup.js'
import { generateTraffic } from '../lib/db/seed.js'
import { overview } from '../lib/queries/overview.js'
import { endpointPerformance } from '../lib/queries/performance.js'
import { dailyVersionUse, versionUsage } from '../lib/queries/versions.js'
import { DAY_MS, HOUR_MS } from '../lib/time.js'
import { DIALECTS, readyApp } from './helpers.js'

const ENDPOINTS = 40
const VERSIONS = Array.from({ length: 12 }, (_, i) => `w1.${i}`)

interface Truth { n: number, median: number, p95: number }

/** Exact counts and nearest-rank percentiles per endpoint of the raw rows since `from` (and before `to`). */
async function truth (db: Kysely<Database>, from: Date, to = new Date(Date.now() + DAY_MS)): Promise<Map<number, Truth>> {
  const { rows } = await sql<{ endpoint_id: number, n: string, median: number, p95: number }>`
    select endpoint_id, count(*) as n, percentile_disc(0.5) within group (order by duration_ms) as median,
      percentile_disc(0.95) within group (order by duration_ms) as p95
    from ${sql.table('request')} where time_requested >= ${from} and time_requested < ${to} group by 1`.execute(db)
  return new Map(rows.map((r) => [r.endpoint_id, { n: Number(r.n), median: r.median, p95: r.p95 }]))
}

const within = (actual: number | null | undefined, exact: number): boolean =>
  actual !== null && actual !== undefined && Math.abs(actual - exact) <= exact * ROLLUP_RELATIVE_ERROR + 1e-9

for (const dialect of DIALECTS) {
  t.test(`${dialect}: overview, performance and versions at the wide shape, against the raw rows`, async (t) => {
    const { db } = await readyApp(t, dialect)
    const routes = Array.from({ length: ENDPOINTS }, (_, i) => `/wide/r${i}/items/:id`)
    await sql`insert into ${sql.table('endpoint')} (method, route, monitor_level) select 'GET', unnest(${routes}::text[]), 1`.execute(db)
    const endpointIds = (await db.selectFrom('endpoint').select('id').where('route', 'in', routes).orderBy('id').execute()).map((e) => e.id)
    await generateTraffic(db, { requests: 20_000, days: 25, endpointIds, versions: VERSIONS, users: 2000, ips: 500, chunk: 10_000 })
    const { rows: [generated] } = await sql<{ n: string }>`select count(*) as n from ${sql.table('request')}`.execute(db)
    t.equal(Number(generated!.n), 20_000)

    // overview: today, the last 7 days and all time (UTC days)
    const now = Date.now()
    const today = Math.floor(now / DAY_MS) * DAY_MS
    const rows = await overview(db, 'UTC')
    for (const [window, from] of [['today', today], ['week', today - 6 * DAY_MS], ['allTime', 0]] as const) {
      const exact = await truth(db, new Date(from))
      let checked = 0
      let wrong: string[] = []
      for (const id of endpointIds) {
        const counts = rows.find((r) => r.id === id)?.[window]
        const expected = exact.get(id)
        if (expected === undefined) { if ((counts?.hits ?? 0) !== 0) wrong.push(`${id}: ${counts?.hits} hits, none stored`); continue }
        checked++
        if (counts?.hits !== expected.n) wrong.push(`${id}: ${counts?.hits} hits, ${expected.n} stored`)
        else if (!within(counts.median, expected.median)) wrong.push(`${id}: median ${counts.median}, exact ${expected.median}`)
      }
      t.same(wrong, [], `overview ${window}: hits exact and medians within ${ROLLUP_RELATIVE_ERROR * 100}% for ${checked} endpoints`)
      wrong = []
    }

    // API performance over a closed window of whole hours that crosses days
    const from = new Date(today - 9 * DAY_MS + 5 * HOUR_MS)
    const to = new Date(today - 2 * DAY_MS + 17 * HOUR_MS)
    const performance = await endpointPerformance(db, { from, to, tz: 'UTC' })
    const exact = await truth(db, from, to)
    const wrong: string[] = []
    for (const [id, expected] of exact) {
      if (!endpointIds.includes(id)) continue
      const d = performance.find((p) => p.endpointId === id)
      if (d?.count !== expected.n || !within(d.median, expected.median) || !within(d.p95, expected.p95)) {
        wrong.push(`${id}: ${d?.count}/${d?.median}/${d?.p95} against ${expected.n}/${expected.median}/${expected.p95}`)
      }
    }
    t.same(wrong, [], `performance: counts exact, median and p95 within the error for ${exact.size} endpoints`)

    // versions: requests per version and endpoint, and per local day and version in a zone half an hour off
    // UTC (a local day is cut at the nearest UTC hour: the rollups are hourly, as the README says)
    const { rows: perVersion } = await sql<{ version: string, endpoint_id: number, n: string }>`select v.version, r.endpoint_id, count(*) as n
      from ${sql.table('request')} r join ${sql.table('version')} v on v.id = r.version_id
      where r.time_requested >= ${from} and r.time_requested < ${to} group by 1, 2`.execute(db)
    const usage = await versionUsage(db, { from, to, tz: 'UTC' })
    const stored = usage.flatMap((v) => v.perEndpoint.map((e) => `${v.version} ${e.endpointId} ${e.hits}`)).sort()
    t.same(stored, perVersion.map((r) => `${r.version} ${r.endpoint_id} ${r.n}`).sort(), `versions: ${perVersion.length} version × endpoint counts exact`)
    const { rows: perDay } = await sql<{ day: string, version: string, n: string }>`select to_char(date_trunc('hour', r.time_requested, 'UTC') at time zone 'Asia/Kolkata', 'YYYY-MM-DD') as day, v.version, count(*) as n
      from ${sql.table('request')} r join ${sql.table('version')} v on v.id = r.version_id
      where r.time_requested >= ${from} and r.time_requested < ${to} group by 1, 2 order by 1, 2`.execute(db)
    const daily = await dailyVersionUse(db, { from, to, tz: 'Asia/Kolkata' })
    t.same(daily.map((d) => `${d.day} ${d.version} ${d.hits}`), perDay.map((d) => `${d.day} ${d.version} ${d.n}`), `versions per local day: ${perDay.length} counts exact`)
  })
}
