// Issue #18: batches add to the hourly rollups only; an hour goes into its day's and month's rows once,
// when it is folded (lib/writer/hour-folds.ts, `folded_hour`). Reads must not tell the difference: before a
// fold they add the hour's own rows to its day and month, after it they read the day and month alone, and
// a batch of an hour already folded adds to its day and month directly.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import pg from 'pg'
import type { Database } from '../lib/db/database.js'
import { periodStart } from '../lib/db/rollup.js'
import { endpointRollups, versionRollups } from '../lib/queries/rollups.js'
import { HOUR_MS } from '../lib/time.js'
import { FOLD_GRACE_MS, HourFolds } from '../lib/writer/hour-folds.js'
import { foldHour, writeUnit, type WriteUnit } from '../lib/writer/store.js'
import { DIALECTS, POSTGRES_URL, backend, buildApp, migratedTo, openWriterStore } from './helpers.js'

const DAY_MS = 24 * HOUR_MS

/** Requests of the endpoint in a window read as the dashboard reads it: days and months where they cover it. */
async function readHits (db: Kysely<Database>, endpointId: number, fromMs: number, nowMs: number): Promise<{ endpoints: number, versions: number }> {
  const endpoints = endpointRollups(new Date(fromMs), new Date(nowMs + 1), sql`endpoint_id, hits`, nowMs)!
  const versions = versionRollups(new Date(fromMs), new Date(nowMs + 1), sql`endpoint_id, hits`, nowMs)!
  const sum = async (source: unknown): Promise<number> => Number((await sql<{ n: string | null }>`select sum(hits) as n from (${source}) as r
    where endpoint_id = ${endpointId}`.execute(db)).rows[0]?.n ?? 0)
  return { endpoints: await sum(endpoints), versions: await sum(versions) }
}

async function periodRows (db: Kysely<Database>, endpointId: number): Promise<{ day: number, month: number, versionDay: number, daySketch: string | undefined, hourSketch: string | undefined }> {
  const one = async (table: string, column = 'hits'): Promise<string | undefined> => (await sql<{ v: string }>`select ${sql.ref(column)}::text as v
    from ${sql.table(table)} where endpoint_id = ${endpointId}`.execute(db)).rows.map((r) => r.v).join('|') || undefined
  return {
    day: Number(await one('endpoint_day') ?? 0),
    month: Number(await one('endpoint_month') ?? 0),
    versionDay: Number(await one('version_day') ?? 0),
    daySketch: await one('endpoint_day', 'sketch'),
    hourSketch: await one('endpoint_hour', 'sketch')
  }
}

function unitAt (endpointId: number, timeMs: number, durations: number[]): WriteUnit {
  return {
    id: randomUUID(), endpointId: durations.map(() => endpointId), timeMs: durations.map((_, i) => timeMs + i), durationMs: durations,
    statusCode: durations.map((_, i) => i === 0 ? 500 : 200), seq: durations.map(() => null), group: durations.map(() => null), ip: durations.map(() => null), attempts: 0
  }
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: an hour is read from its own rows until it is folded, then from its day and month, never twice`, async (t) => {
    const { opened, db, versionId, instanceId, endpointIds } = await openWriterStore(t, dialect, ['/x'])
    const endpointId = endpointIds[0]!
    const now = Date.now()
    // an hour that has closed, far enough from midnight that its day is not today's first hour
    const hour = periodStart('hour', now) - 2 * HOUR_MS
    const unfolded: number[] = []
    const write = async (unit: WriteUnit): Promise<void> => {
      t.equal(await writeUnit(db, unit, versionId, instanceId, opened.copyTransaction, (hours) => unfolded.push(...hours)), true)
    }
    await write(unitAt(endpointId, hour + 1000, [1, 2, 3, 40, 5]))
    t.same(unfolded, [hour], 'the writer is told which hours it left unfolded')
    // windows read through a day and through a month
    const windows = [now - 3 * DAY_MS, now - 40 * DAY_MS]

    t.same(await db.selectFrom('folded_hour').select('hour').execute(), [], 'a new schema lists no hour as folded')
    const before = await periodRows(db, endpointId)
    t.same([before.day, before.month, before.versionDay], [0, 0, 0], 'the batch wrote the hour only: no day, month or version day yet')
    for (const from of windows) t.same(await readHits(db, endpointId, from, now), { endpoints: 5, versions: 5 }, 'read through the hour\'s own rows')

    // the writer's folds: nothing before the hour has closed and its grace passed, then the hour, once
    const folds = new HourFolds()
    t.equal(await folds.foldClosed(db, hour + HOUR_MS), 0, 'an hour is not folded while open')
    t.equal(await folds.foldClosed(db, hour + HOUR_MS + FOLD_GRACE_MS), 1, 'the hour a writer left is found and folded')
    t.equal(folds.pending, 0)
    t.equal(await foldHour(db, hour), false, 'a second fold of the hour does nothing')
    const folded = await periodRows(db, endpointId)
    t.same([folded.day, folded.month, folded.versionDay], [5, 5, 5], 'the day, month and version day now hold the hour')
    t.equal(folded.daySketch, folded.hourSketch, 'the day\'s sketch is the hour\'s, bucket by bucket')
    t.same((await db.selectFrom('folded_hour').select('hour').execute()).map((r) => r.hour.getTime()), [hour])
    for (const from of windows) t.same(await readHits(db, endpointId, from, now), { endpoints: 5, versions: 5 }, 'the same count, read from the day and month')

    // a late batch of the folded hour goes into its day and month at once
    unfolded.length = 0
    await write(unitAt(endpointId, hour + 2000, [7, 8, 9]))
    t.same(unfolded, [], 'a folded hour is not left to fold again')
    const late = await periodRows(db, endpointId)
    t.same([late.day, late.month, late.versionDay], [8, 8, 8], 'a batch of a folded hour adds to its day and month directly')
    for (const from of windows) t.same(await readHits(db, endpointId, from, now), { endpoints: 8, versions: 8 })

    // a batch over the folded hour and the next (open) one: each part where it belongs
    await write(unitAt(endpointId, hour + HOUR_MS - 2, [1, 1, 1, 1]))
    t.same(unfolded, [hour + HOUR_MS], 'only the open hour is left to fold')
    const split = await periodRows(db, endpointId)
    t.same([split.day, split.month, split.versionDay], [10, 10, 10], 'the folded hour\'s two rows went to the day directly')
    for (const from of windows) t.same(await readHits(db, endpointId, from, now), { endpoints: 12, versions: 12 }, 'and the open hour\'s two are read from its own rows')
  })
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: an open window reads the hours of an app whose clock runs ahead of the database's`, async (t) => {
    const { opened, db, versionId, instanceId, endpointIds } = await openWriterStore(t, dialect, ['/x'])
    const ahead = Date.now() + 3 * HOUR_MS
    t.equal(await writeUnit(db, unitAt(endpointIds[0]!, ahead, [1, 2]), versionId, instanceId, opened.copyTransaction), true)
    // the dashboard's now is the app's: its window reaches the hour of those requests
    t.same(await readHits(db, endpointIds[0]!, ahead - 40 * DAY_MS, ahead), { endpoints: 2, versions: 2 })
  })
}

t.test('postgres: a fold waits for a batch that found its hour open', { skip: !DIALECTS.includes('postgres') && 'needs the PostgreSQL server' }, async (t) => {
  const { db, prefix } = await openWriterStore(t, 'postgres', ['/x'])
  const batch = new pg.Client({ connectionString: POSTGRES_URL })
  await batch.connect()
  t.teardown(() => batch.end())
  // what a batch's transaction holds from reading the folded hours until it commits its rollups
  await batch.query('begin')
  await batch.query(`lock table "${prefix}folded_hour" in share mode`)
  let done = false
  const fold = foldHour(db, periodStart('hour', Date.now()) - HOUR_MS).then((folded) => { done = true; return folded })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(done, false, 'the fold waits while the batch is in flight')
  await batch.query('commit')
  t.equal(await fold, true, 'and folds once it has committed')
})

for (const dialect of DIALECTS) {
  t.test(`${dialect}: migration 0021 lists the hours stored before it, and the upgrade's next hours`, async (t) => {
    const store = await backend(dialect, { unmigrated: true })
    t.teardown(store.cleanup)
    const { db, close } = await migratedTo(store, '0020_request_id_blocks')
    const old = new Date(periodStart('hour', Date.now() - 30 * DAY_MS))
    await db.insertInto('endpoint').values({ method: 'GET', route: '/a', monitor_level: 1 }).execute()
    const { id } = await db.selectFrom('endpoint').select('id').executeTakeFirstOrThrow()
    await sql`insert into ${sql.table('endpoint_hour')} (endpoint_id, hour, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
      values (${id}, ${old}, 1, 0, 0, 1, 0, '{1}')`.execute(db)
    await close()
    const hour = periodStart('hour', Date.now())
    // the plugin upgrades the schema
    const app = await buildApp({ ...store.options, metrics: false, dashboard: false })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    const listed = (await app.monitor.db.selectFrom('folded_hour').select('hour').orderBy('hour').execute()).map((r) => r.hour.getTime())
    // the migration may run in the next hour than the one read above
    t.equal(listed[0], old.getTime(), 'the stored hour')
    t.ok(listed.length === 4 && listed[1]! >= hour && listed[1]! <= hour + HOUR_MS && listed[3]! - listed[1]! === 2 * HOUR_MS, 'and the migration\'s hour with the next two')
  })
}
