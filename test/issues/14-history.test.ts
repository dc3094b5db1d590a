// #14: the bench's year of rollups (`npm run seed -- --history 365`) repeats the raw span's rollup
// rows back in time (lib/db/seed.ts repeatRollupHistory). Its copies must add up as the writer would
// have kept them: whole hours copied, the span's partial first and last days met into one, months
// rebuilt from the days, each copy under versions of its own.
import t from 'tap'
import { sql } from 'kysely'
import { insertRequests, repeatRollupHistory, type SeedRequest } from '../../lib/db/seed.js'
import { DIALECTS, readyApp } from '../helpers.js'

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000

for (const dialect of DIALECTS) {
  t.test(`${dialect}: rollup history repeated back adds up`, async (t) => {
    const { db, endpoints: [endpoint] } = await readyApp(t, dialect)
    // a span of 3 days starting mid-day (so its first and last days are partial), one request every 20 minutes
    const from = Date.UTC(2026, 5, 10, 13, 20)
    const to = from + 3 * DAY_MS
    const requests: SeedRequest[] = []
    for (let time = from, i = 0; time < to; time += HOUR_MS / 3, i++) {
      requests.push({ endpointId: endpoint!, time: new Date(time), durationMs: 5 + (i % 7), statusCode: i % 10 === 0 ? 500 : 200, version: i < 108 ? 'a' : 'b' })
    }
    await insertRequests(db, requests)
    const total = async (table: string): Promise<{ hits: number, c5: number, rows: number }> => {
      const { rows: [row] } = await sql<{ hits: string, c5: string | null, rows: string }>`select sum(hits) as hits,
        ${table.startsWith('version_') ? sql`null` : sql`sum(server_errors)`} as c5, count(*) as rows from ${sql.table(table)}`.execute(db)
      return { hits: Number(row!.hits), c5: Number(row!.c5 ?? 0), rows: Number(row!.rows) }
    }
    const before = { hour: await total('endpoint_hour'), day: await total('endpoint_day'), month: await total('endpoint_month'), version: await total('version_hour') }
    t.equal(before.hour.hits, requests.length)

    await repeatRollupHistory(db, new Date(from), new Date(to), 2)
    const copies = 3 // the span and two copies
    for (const table of ['endpoint_hour', 'endpoint_day', 'endpoint_month', 'version_hour', 'version_day', 'version_total_hour']) {
      t.equal((await total(table)).hits, copies * requests.length, `${table}: every copy's requests counted once`)
    }
    t.equal((await total('endpoint_day')).c5, copies * before.day.c5, 'and their 5xx')
    t.equal((await total('endpoint_hour')).rows, before.hour.rows + 2 * (before.hour.rows - 1), 'partial hours met into one')
    // 3 days from 13:20 touch 4 UTC days; the copies' partial days meet: 4 + 3 + 3 day rows
    t.equal((await total('endpoint_day')).rows, before.day.rows + 2 * (before.day.rows - 1), 'partial days met into one')
    const { rows: days } = await sql<{ day: string, hits: string }>`select to_char(day, 'YYYY-MM-DD') as day, hits from ${sql.table('endpoint_day')} order by day`.execute(db)
    const met = days.find((d) => d.day === new Date(from - 3 * DAY_MS).toISOString().slice(0, 10))!
    t.equal(Number(met.hits), 72, 'the met day holds a whole day of requests (3 an hour)')
    const versions = (await db.selectFrom('version').select('version').execute()).map((v) => v.version).sort()
    t.same(versions.filter((v) => /^[ab]/.test(v)), ['a', 'a~1', 'a~2', 'b', 'b~1', 'b~2'], 'each copy has versions of its own')
    const { rows: [earliest] } = await sql<{ hour: Date }>`select min(hour) as hour from ${sql.table('version_hour')}`.execute(db)
    t.equal(earliest!.hour.getTime(), Math.ceil(from / HOUR_MS) * HOUR_MS - 2 * 3 * DAY_MS - HOUR_MS, 'the oldest copy starts two spans back')
  })
}
