// The overview's medians come from rollup rows; the sketches of periods that have ended (months before
// this one, days before today) are merged once and kept while their fingerprint (rows and hits per
// endpoint) holds (lib/queries/closed-periods.ts). The answer must always equal the merge of the rows
// read afresh, and a late batch, retention or a delete must be seen at once.
import t from 'tap'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../lib/db/database.js'
import { bucketOf, periodStart } from '../lib/db/rollup.js'
import { latencyHistograms } from '../lib/queries/distribution.js'
import { windowSketches } from '../lib/queries/closed-periods.js'
import { overview } from '../lib/queries/overview.js'
import { DIALECTS, backend, buildApp } from './helpers.js'

/** The start (UTC date) of the month `back` months before the current one. */
function monthAgo (back: number): string {
  const now = new Date(periodStart('month', Date.now()))
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1)).toISOString().slice(0, 10)
}

/** A day or month rollup row of `hits` requests all at `ms`; `start` is the period's first day (UTC date). */
async function addPeriod (db: Kysely<Database>, grain: 'day' | 'month', endpointId: number, start: string, hits: number, ms: number): Promise<void> {
  await sql`insert into ${sql.table(`endpoint_${grain}`)} (endpoint_id, ${sql.ref(grain)}, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
    values (${endpointId}, ${start}::date, ${hits}, 0, 0, ${hits * ms}, ${bucketOf(ms)}, ${`{${hits}}`}::bigint[])`.execute(db)
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: all-time medians from cached closed months equal a fresh merge, through changes`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await buildApp({ ...store.options, metrics: false, dashboard: false })
    t.teardown(() => app.close())
    await app.ready()
    for (let i = 0; i < 5; i++) await app.inject(`/users/${i}`)
    await app.monitor.flush()
    const db = app.monitor.db
    const { id } = await db.selectFrom('endpoint').select('id').where('route', '=', '/users/:id').executeTakeFirstOrThrow()
    // closed months far slower than this month's requests: they decide the median
    await addPeriod(db, 'month', id, monthAgo(3), 40, 200)
    await addPeriod(db, 'month', id, monthAgo(2), 30, 300)
    await addPeriod(db, 'month', id, monthAgo(1), 20, 400)

    const fresh = async (): Promise<number | undefined> => (await latencyHistograms<number>(db,
      sql`select endpoint_id as k, sketch_offset, sketch from ${sql.table('endpoint_month')} where endpoint_id = ${id}`)).get(id)?.median
    const cached = async (): Promise<{ median: number | null, hits: number }> => {
      const row = (await overview(db, 'UTC')).find((e) => e.id === id)!
      return { median: row.allTime.median, hits: row.allTime.hits }
    }
    const first = await cached()
    t.equal(first.hits, 95, '5 requests of this month and 90 of closed months')
    t.equal(first.median, await fresh(), `the median of every month row (${first.median} ms)`)
    t.ok(first.median! > 250 && first.median! < 350, 'the 300 ms month holds the median')

    // a sketch changed without its row count or hits changing cannot happen, so it shows the cache is read
    await sql`update ${sql.table('endpoint_month')} set sketch_offset = ${bucketOf(5000)} where endpoint_id = ${id} and month = ${monthAgo(2)}::date`.execute(db)
    t.equal((await cached()).median, first.median, 'a second call reuses the merged closed months')

    // a late batch into a closed month changes its hits: read again
    await sql`update ${sql.table('endpoint_month')} set hits = hits + 60, sketch = array[90]::bigint[], sketch_offset = ${bucketOf(1000)}
      where endpoint_id = ${id} and month = ${monthAgo(1)}::date`.execute(db)
    const late = await cached()
    t.equal(late.hits, 155)
    t.equal(late.median, await fresh(), `a changed closed month is read again (${late.median} ms)`)
    t.ok(late.median! > 900, 'and its slower requests now hold the median')

    // retention deletes the oldest month: fewer rows, read again
    await sql`delete from ${sql.table('endpoint_month')} where month = ${monthAgo(3)}::date`.execute(db)
    const kept = await cached()
    t.equal(kept.hits, 115)
    t.equal(kept.median, await fresh(), 'a deleted month is gone from the median at once')

    // this month's requests are read on every call
    for (let i = 0; i < 5; i++) await app.inject(`/users/${i}`)
    await app.monitor.flush()
    t.equal((await cached()).hits, 120, 'new requests of the current month count at once')

    // the days of a week, kept the same way. At a fixed "now" (mid-month), because which grain covers a
    // real week depends on the date: early in a month its first days are read from the month's row.
    const nowMs = Date.UTC(2025, 5, 20, 12, 30)
    // (today's real rows would be read with the "current" day's: the window's end is open; its hours are not folded yet)
    await sql`delete from ${sql.table('endpoint_day')} where endpoint_id = ${id}`.execute(db)
    await sql`delete from ${sql.table('endpoint_hour')} where endpoint_id = ${id}`.execute(db)
    const weekStart = new Date(Date.UTC(2025, 5, 14))
    await addPeriod(db, 'day', id, '2025-06-18', 30, 700)
    await addPeriod(db, 'day', id, '2025-06-20', 10, 100)
    const weekOf = async (): Promise<{ median: number | undefined, hits: number | undefined }> => {
      const distribution = (await windowSketches(db, weekStart, new Date(nowMs), nowMs)).get(id)?.distribution()
      return { median: distribution?.median, hits: distribution?.count }
    }
    const week = await weekOf()
    t.equal(week.hits, 40, 'this week: 10 requests of the current day and 30 of two days before')
    t.ok(week.median! > 650 && week.median! < 750, `the closed day holds the week's median (${week.median} ms)`)
    await sql`update ${sql.table('endpoint_day')} set sketch_offset = ${bucketOf(5000)} where endpoint_id = ${id} and day = '2025-06-18'::date`.execute(db)
    t.equal((await weekOf()).median, week.median, 'a second call reuses the merged closed days')
    await sql`update ${sql.table('endpoint_day')} set hits = 31, sketch = '{31}'::bigint[] where endpoint_id = ${id} and day = '2025-06-18'::date`.execute(db)
    const changed = await weekOf()
    t.equal(changed.hits, 41)
    t.ok(changed.median! > 4_500, `a changed closed day is read again (${changed.median} ms)`)
    await sql`update ${sql.table('endpoint_day')} set hits = 20, sketch = '{20}'::bigint[] where endpoint_id = ${id} and day = '2025-06-20'::date`.execute(db)
    t.equal((await weekOf()).hits, 51, 'the current day is read on every call')
  })
}
