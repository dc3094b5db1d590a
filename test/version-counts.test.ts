// #14: the versions view's counts (migration 0017): requests per UTC day, version and endpoint
// (`version_day`: a week is about 7 rows per version and endpoint instead of 168) and per UTC hour and
// version (`version_total_hour`: local days in any zone without the endpoints). The writer keeps both
// beside `version_hour`, the seed rebuilds them, retention cuts them, the migration fills them from the
// hours; and the versions view must answer exactly what the hours alone answer, for any window and zone.
import t from 'tap'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../lib/db/database.js'
import { insertRequests, type SeedRequest } from '../lib/db/seed.js'
import { versionCountsFromHoursSql } from '../lib/db/rollup.js'
import { deleteOlderThan } from '../lib/db/retention.js'
import { dailyVersionUse, versionUsage } from '../lib/queries/versions.js'
import { DIALECTS, backend, buildApp, migratedTo, readyApp, until } from './helpers.js'

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000
const LAST_MIGRATION_WITHOUT = '0016_outlier_stacks_optional'
const ZONES = ['UTC', 'Asia/Kolkata', 'America/New_York']

type Row = { day: string, version_id: number, endpoint_id: number, hits: string }

async function versionDays (db: Kysely<any>): Promise<Row[]> {
  return (await sql<Row>`select to_char(day, 'YYYY-MM-DD') as day, version_id, endpoint_id, hits from ${sql.table('version_day')} order by 1, 2, 3`.execute(db)).rows
}

async function daysFromHours (db: Kysely<any>): Promise<Row[]> {
  return (await sql<Row>`select to_char(day, 'YYYY-MM-DD') as day, version_id, endpoint_id, hits
    from (${versionCountsFromHoursSql('day', sql`true`)}) as d order by 1, 2, 3`.execute(db)).rows
}

type TotalRow = { hour: string, version_id: number, hits: string }

async function versionTotals (db: Kysely<any>): Promise<TotalRow[]> {
  return (await sql<TotalRow>`select to_char(hour at time zone 'UTC', 'YYYY-MM-DD HH24') as hour, version_id, hits
    from ${sql.table('version_total_hour')} order by 1, 2`.execute(db)).rows
}

async function totalsFromHours (db: Kysely<any>): Promise<TotalRow[]> {
  return (await sql<TotalRow>`select to_char(hour at time zone 'UTC', 'YYYY-MM-DD HH24') as hour, version_id, hits
    from (${versionCountsFromHoursSql('hour', sql`true`)}) as d order by 1, 2`.execute(db)).rows
}

/** What the daily use answered before version_total_hour: the window's hours per local day and version. */
async function dailyFromHours (db: Kysely<Database>, from: Date, to: Date, tz: string): Promise<Array<{ day: string, version: string, hits: number }>> {
  const { rows } = await sql<{ day: string, version: string, hits: string }>`
    select to_char(h.hour at time zone ${tz}, 'YYYY-MM-DD') as day, v.version, sum(h.hits) as hits
    from ${sql.table('version_hour')} h join ${sql.table('version')} v on v.id = h.version_id
    where h.hour >= ${from} and h.hour < ${to} group by 1, 2 order by 1, 2`.execute(db)
  return rows.map((row) => ({ day: row.day, version: row.version, hits: Number(row.hits) }))
}

/** What the versions view answered before version_day: the window's hours summed (version → endpoint → hits). */
async function fromHours (db: Kysely<Database>, from: Date, to: Date): Promise<Record<string, Record<number, number>>> {
  const { rows } = await sql<{ version: string, endpoint_id: number, hits: string }>`select v.version, h.endpoint_id, sum(h.hits) as hits
    from ${sql.table('version_hour')} h join ${sql.table('version')} v on v.id = h.version_id
    where h.hour >= ${from} and h.hour < ${to} group by 1, 2`.execute(db)
  const out: Record<string, Record<number, number>> = {}
  for (const row of rows) (out[row.version] ??= {})[row.endpoint_id] = Number(row.hits)
  return out
}

async function fromView (db: Kysely<Database>, from: Date, to: Date): Promise<Record<string, Record<number, number>>> {
  const out: Record<string, Record<number, number>> = {}
  for (const v of await versionUsage(db, { from, to, tz: 'UTC' })) {
    if (v.perEndpoint.length === 0) continue
    out[v.version] = Object.fromEntries(v.perEndpoint.map((e) => [e.endpointId, e.hits]))
  }
  return out
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: the writer keeps version_total_hour equal to its hours summed; the view counts hours not folded into version_day yet`, async (t) => {
    const { app, db } = await readyApp(t, dialect, { appVersion: 'v-live' })
    for (let i = 0; i < 30; i++) await app.inject({ url: `/users/${i}` })
    for (let i = 0; i < 10; i++) await app.inject({ method: 'POST', url: '/users' })
    t.ok(await until(async () => {
      await app.monitor.flush()
      return (await versionTotals(db)).reduce((sum, r) => sum + Number(r.hits), 0) === 40
    }), 'every request is counted in an hour row')
    // the current hour goes into version_day when it is folded (test/hour-folds.test.ts); the view reads it meanwhile
    t.same(await versionDays(db), [], 'no day row while the hour is open')
    const now = Date.now()
    const view = await fromView(db, new Date(now - 3 * DAY_MS), new Date(now + 1))
    t.same(Object.values(view['v-live'] ?? {}).sort((a, b) => a - b), [10, 30], 'two endpoints, one version, today')
    t.same(await versionTotals(db), await totalsFromHours(db), 'one row per hour and version, as the hours add up')
    t.equal((await versionTotals(db)).reduce((sum, r) => sum + Number(r.hits), 0), 40)
  })

  t.test(`${dialect}: the versions view reads whole days and the hours around them, as the hours alone answer`, async (t) => {
    const { db, endpoints } = await readyApp(t, dialect)
    // 45 days to now, a request every 37 minutes on alternating endpoints, a new version every 9 days
    const now = Date.now()
    const start = now - 45 * DAY_MS
    const requests: SeedRequest[] = []
    for (let time = start, i = 0; time < now - 60_000; time += 37 * 60_000, i++) {
      requests.push({ endpointId: endpoints[i % 2]!, time: new Date(time), durationMs: 5, statusCode: 200, version: `v${Math.floor((time - start) / (9 * DAY_MS))}` })
    }
    await insertRequests(db, requests)
    t.same(await versionDays(db), await daysFromHours(db), 'the seed builds the day rows from the hours')
    // the seed keeps what the writer would: versions first seen at their first request, endpoints' last request
    const listed = await versionUsage(db, { from: new Date(start), to: new Date(now), tz: 'UTC' })
    const seeded = listed.filter((v) => /^v\d$/.test(v.version))
    t.same(seeded.map((v) => v.version), ['v4', 'v3', 'v2', 'v1', 'v0'], 'newest first')
    t.equal(seeded.at(-1)!.firstSeen.getTime(), Math.round(start), 'v0 first seen at its first request')
    const requested = endpoints.slice(0, 2)
    const lastRequested = await db.selectFrom('endpoint').select(['id', 'last_requested']).where('id', 'in', requested).orderBy('id').execute()
    const latest = (e: number) => Math.max(...requests.filter((r) => r.endpointId === e).map((r) => r.time.getTime()))
    t.same(lastRequested.map((e) => e.last_requested === null ? null : new Date(e.last_requested).getTime()), requested.map(latest), 'endpoints last requested at their latest request')
    t.same(await versionTotals(db), await totalsFromHours(db), 'and the hourly totals')

    const windows: Array<[string, number, number]> = [
      ['the default week, open at now', now - 7 * DAY_MS, now],
      ['a closed window of partial days across a month', now - 38 * DAY_MS + 13 * HOUR_MS + 20 * 60_000, now - 3 * DAY_MS + 5 * HOUR_MS],
      ['all time', 0, now + HOUR_MS],
      ['within one day', Math.floor(now / DAY_MS) * DAY_MS - 20 * HOUR_MS, Math.floor(now / DAY_MS) * DAY_MS - 2 * HOUR_MS],
      ['empty', now - 100 * DAY_MS, now - 90 * DAY_MS]
    ]
    for (const [name, from, to] of windows) {
      t.same(await fromView(db, new Date(from), new Date(to)), await fromHours(db, new Date(from), new Date(to)), name)
      for (const tz of ZONES) {
        t.same(await dailyVersionUse(db, { from: new Date(from), to: new Date(to), tz }), await dailyFromHours(db, new Date(from), new Date(to), tz), `${name}: per day in ${tz}`)
      }
    }
    t.equal(Object.values(await fromView(db, new Date(0), new Date(now + HOUR_MS))).flatMap((e) => Object.values(e)).reduce((a, b) => a + b, 0),
      requests.length, 'all time counts every request')

    // the whole days come from version_day: a change there shows in a week, not in a window of hours
    const fourDaysAgo = new Date(Math.floor(now / DAY_MS) * DAY_MS - 4 * DAY_MS).toISOString().slice(0, 10)
    await sql`update ${sql.table('version_day')} set hits = hits + 1000 where day = ${fourDaysAgo}::date`.execute(db)
    const week = await fromView(db, new Date(now - 7 * DAY_MS), new Date(now))
    const weekHours = await fromHours(db, new Date(now - 7 * DAY_MS), new Date(now))
    const total = (r: Record<string, Record<number, number>>) => Object.values(r).flatMap((e) => Object.values(e)).reduce((a, b) => a + b, 0)
    t.equal(total(week) - total(weekHours), 2000, 'the week read the day row of both endpoints')
  })

  t.test(`${dialect}: retention cuts version_day by whole days, version_total_hour by hours`, async (t) => {
    const { db, endpoints: [endpoint], prefix } = await readyApp(t, dialect)
    const day0 = Math.floor(Date.now() / DAY_MS) * DAY_MS - 10 * DAY_MS
    const requests: SeedRequest[] = [0, 1, 2].flatMap((d) => [2, 14].map((h) => ({ endpointId: endpoint!, time: new Date(day0 + d * DAY_MS + h * HOUR_MS), durationMs: 1, statusCode: 200, version: 'r' })))
    await insertRequests(db, requests)
    // the cut falls in day 1 at noon: day 0 goes, day 1 (partly kept in its hours) stays whole
    await deleteOlderThan(db, prefix, new Date(day0 + 1.5 * DAY_MS), new Date(day0 + 1.5 * DAY_MS))
    t.same((await versionDays(db)).map((d) => [d.day, Number(d.hits)]), [
      [new Date(day0 + DAY_MS).toISOString().slice(0, 10), 2],
      [new Date(day0 + 2 * DAY_MS).toISOString().slice(0, 10), 2]
    ])
    const hourOf = (ms: number) => new Date(ms).toISOString().slice(0, 13).replace('T', ' ')
    t.same((await versionTotals(db)).map((r) => r.hour), [day0 + 1.5 * DAY_MS + 2 * HOUR_MS, day0 + 2 * DAY_MS + 2 * HOUR_MS, day0 + 2 * DAY_MS + 14 * HOUR_MS].map(hourOf),
      'the hourly totals from the cut on')
  })

  t.test(`${dialect}: migration 0017 fills version_day and version_total_hour from the hours an older version kept`, async (t) => {
    const store = await backend(dialect, { unmigrated: true })
    t.teardown(store.cleanup)
    const { db, close } = await migratedTo(store, LAST_MIGRATION_WITHOUT)
    await sql`insert into ${sql.table('endpoint')} (method, route, monitor_level) values ('GET', '/a', 1), ('GET', '/b', 1)`.execute(db)
    await sql`insert into ${sql.table('version')} (version) values ('old1'), ('old2')`.execute(db)
    // hours over three days (hour 24 starts the second), both versions on the second
    const hours = [[1, 1, 0, 3], [1, 1, 23, 4], [2, 1, 5, 7], [2, 2, 30, 1], [1, 2, 30, 2], [2, 1, 40, 5], [2, 2, 47, 6], [1, 2, 48, 9]]
    const day0 = Date.UTC(2026, 9, 30)
    for (const [endpoint, version, hour, hits] of hours) {
      await sql`insert into ${sql.table('version_hour')} (endpoint_id, hour, version_id, hits, sketch_offset, sketch)
        values (${endpoint}, ${new Date(day0 + hour! * HOUR_MS)}, ${version}, ${hits}, 10, ${[hits]}::bigint[])`.execute(db)
    }
    await t.rejects(versionDays(db), 'no version_day before 0017')
    await t.rejects(versionTotals(db), 'no version_total_hour before 0017')
    await close()

    const app = await buildApp({ ...store.options, metrics: false })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    t.same((await versionDays(app.monitor.db)).map((r) => [r.day, r.version_id, r.endpoint_id, Number(r.hits)]), [
      ['2026-10-30', 1, 1, 7],
      ['2026-10-30', 1, 2, 7],
      ['2026-10-31', 1, 2, 5],
      ['2026-10-31', 2, 1, 2],
      ['2026-10-31', 2, 2, 7],
      ['2026-11-01', 2, 1, 9]
    ], 'the hours summed per UTC day, version and endpoint')
    t.same((await versionTotals(app.monitor.db)).map((r) => [r.hour, r.version_id, Number(r.hits)]), [
      ['2026-10-30 00', 1, 3],
      ['2026-10-30 05', 1, 7],
      ['2026-10-30 23', 1, 4],
      ['2026-10-31 06', 2, 3],
      ['2026-10-31 16', 1, 5],
      ['2026-10-31 23', 2, 6],
      ['2026-11-01 00', 2, 9]
    ], 'and per hour and version')
  })
}
