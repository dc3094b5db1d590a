/**
 * Filling a database with requests without going through HTTP: known rows for tests, and
 * millions of realistic ones for benchmarks (`npm run seed`). Every step is one set-based statement,
 * so it also runs through `app.monitor.db` (the read side, which has no transactions).
 *
 * A tool of this repository (the tests, the benches, the demo's history), not of the plugin: the build
 * compiles it with the rest, and package.json's `files` leaves it out of the published package.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from './database.js'
import { createPartitionSql, dayOf } from './partitions.js'
import { GRAINS, bucketSql, denseSketchSql, mergeRollupRowSql, monthsFromDaysSql, periodStart, versionCountsFromHoursSql, type Grain } from './rollup.js'
import { numberArrayLiteral, textArrayLiteral } from '../writer/store.js'
import { DAY_MS, HOUR_MS } from '../time.js'

/** A request to store as if it had been served. */
export interface SeedRequest {
  endpointId: number
  time: Date
  durationMs: number
  statusCode: number
  version: string
  groupBy?: string | null
  ip?: string | null
}

/** Creates the daily partitions covering [from, to]. */
export async function ensurePartitions (db: Kysely<Database>, from: Date, to: Date): Promise<void> {
  for (let day = dayOf(from.getTime()); day <= dayOf(to.getTime()); day++) {
    await createPartitionSql(day).execute(db)
  }
}

async function versionIds (db: Kysely<Database>, versions: string[]): Promise<Map<string, number>> {
  const unique = [...new Set(versions)]
  await sql`insert into ${sql.table('version')} (version, first_seen) select unnest(${unique}::text[]), now()
    on conflict (version) do nothing`.execute(db)
  const rows = await db.selectFrom('version').select(['id', 'version']).where('version', 'in', unique).execute()
  return new Map(rows.map((row) => [row.version, row.id]))
}

/**
 * What the writer keeps beside the rows it stores, for the rows of [from, to) stored here: a version's
 * first sighting no later than its earliest request, an endpoint's last request no earlier than its latest
 * (otherwise a seeded history shows every version first seen at seeding time, and endpoints never requested).
 */
async function markSeen (db: Kysely<Database>, from: Date, to: Date): Promise<void> {
  const within = sql`time_requested >= ${from} and time_requested < ${to}`
  await sql`update ${sql.table('version')} as v set first_seen = least(v.first_seen, m.t)
    from (select version_id, min(time_requested) as t from ${sql.table('request')} where ${within} group by 1) as m
    where v.id = m.version_id`.execute(db)
  await sql`update ${sql.table('endpoint')} as e set last_requested = greatest(e.last_requested, m.t)
    from (select endpoint_id, max(time_requested) as t from ${sql.table('request')} where ${within} group by 1) as m
    where e.id = m.endpoint_id`.execute(db)
}

async function seedInstance (db: Kysely<Database>): Promise<number> {
  const row = await db.insertInto('instance').values({ host: 'seed', pid: 0, token: 'seed' })
    .onConflict((oc) => oc.column('token').doUpdateSet({ pid: 0 })).returning('id').executeTakeFirstOrThrow()
  return row.id
}

/**
 * Recomputes the rollups of the UTC hours, days and months touching [from, to) from the raw rows
 * (days and months are rebuilt whole: the range is widened to the periods it touches).
 */
export async function rebuildRollups (db: Kysely<Database>, from: Date, to: Date): Promise<void> {
  const span = (grain: Grain): [Date, Date] => {
    const end = periodStart(grain, to.getTime() - 1)
    return [new Date(periodStart(grain, from.getTime())), new Date(grain === 'hour' ? end + HOUR_MS : grain === 'day' ? end + DAY_MS : periodStart('month', end + 32 * DAY_MS))]
  }
  const [hourFrom, hourTo] = span('hour')
  await db.deleteFrom('request_hour').where('hour', '>=', hourFrom).where('hour', '<', hourTo).execute()
  await sql`insert into ${sql.table('request_hour')} (endpoint_id, hour, version_id, status_code, hits, duration_sum)
    select endpoint_id, date_trunc('hour', time_requested, 'UTC'), version_id, status_code, count(*), sum(duration_ms)
    from ${sql.table('request')} where time_requested >= ${hourFrom} and time_requested < ${hourTo} group by 1, 2, 3, 4`.execute(db)
  await db.deleteFrom('version_hour').where('hour', '>=', hourFrom).where('hour', '<', hourTo).execute()
  const raw = (a: Date, b: Date, period: RawBuilder<unknown>, extra: RawBuilder<unknown> = sql``) => sql`select endpoint_id, ${period} as p ${extra},
    ${bucketSql(sql.ref('duration_ms'))} as bucket, 1 as hits from ${sql.table('request')} where time_requested >= ${a} and time_requested < ${b}`
  const hourOf = sql`date_trunc('hour', time_requested, 'UTC')`
  await sql`insert into ${sql.table('version_hour')} (endpoint_id, hour, version_id, hits, sketch_offset, sketch)
    select endpoint_id, p, version_id, (select sum(x) from unnest(sketch) as x), sketch_offset, sketch
    from (${denseSketchSql(raw(hourFrom, hourTo, hourOf, sql`, version_id`), ['endpoint_id', 'p', 'version_id'])}) as s`.execute(db)
  for (const { grain, table, column } of GRAINS) {
    const [a, b] = span(grain)
    const period = grain === 'hour' ? hourOf : sql`date_trunc(${sql.lit(grain)}, time_requested at time zone 'UTC')::date`
    const bound = (at: Date) => grain === 'hour' ? sql`${at}::timestamptz` : sql`${at.toISOString().slice(0, 10)}::date`
    await sql`delete from ${sql.table(table)} where ${sql.ref(column)} >= ${bound(a)} and ${sql.ref(column)} < ${bound(b)}`.execute(db)
    await sql`insert into ${sql.table(table)} (endpoint_id, ${sql.ref(column)}, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
      select c.endpoint_id, c.p, c.hits, c.client_errors, c.server_errors, c.duration_sum, s.sketch_offset, s.sketch
      from (select endpoint_id, ${period} as p, count(*) as hits, count(*) filter (where status_code between 400 and 499) as client_errors,
          count(*) filter (where status_code >= 500) as server_errors, sum(duration_ms) as duration_sum
        from ${sql.table('request')} where time_requested >= ${a} and time_requested < ${b} group by 1, 2) as c
      join (${denseSketchSql(raw(a, b, period), ['endpoint_id', 'p'])}) as s on s.endpoint_id = c.endpoint_id and s.p = c.p`.execute(db)
  }
  // the versions' counts from their hours (all of each day's hours are in version_hour, rebuilt or not)
  const [dayFrom, dayTo] = span('day')
  await sql`delete from ${sql.table('version_day')} where day >= ${dayFrom.toISOString().slice(0, 10)}::date and day < ${dayTo.toISOString().slice(0, 10)}::date`.execute(db)
  await sql`insert into ${sql.table('version_day')} (day, version_id, endpoint_id, hits)
    ${versionCountsFromHoursSql('day', sql`hour >= ${dayFrom} and hour < ${dayTo}`)}`.execute(db)
  await db.deleteFrom('version_total_hour').where('hour', '>=', hourFrom).where('hour', '<', hourTo).execute()
  await sql`insert into ${sql.table('version_total_hour')} (hour, version_id, hits)
    ${versionCountsFromHoursSql('hour', sql`hour >= ${hourFrom} and hour < ${hourTo}`)}`.execute(db)
  // the days and months rebuilt hold every hour of theirs, as if each had been folded
  const [monthFrom, monthTo] = span('month')
  await sql`insert into ${sql.table('folded_hour')} (hour)
    select generate_series(${monthFrom}::timestamptz, ${monthTo}::timestamptz - interval '1 hour', interval '1 hour') on conflict (hour) do nothing`.execute(db)
}

/** Stores the given requests and brings the rollups of their hours up to date. */
export async function insertRequests (db: Kysely<Database>, requests: SeedRequest[]): Promise<void> {
  if (requests.length === 0) return
  const times = requests.map((r) => r.time.getTime())
  const from = new Date(Math.min(...times))
  const to = new Date(Math.max(...times) + 1)
  await ensurePartitions(db, from, to)
  const versions = await versionIds(db, requests.map((r) => r.version))
  const instanceId = await seedInstance(db)
  await sql`insert into ${sql.table('request')} (endpoint_id, time_requested, duration_ms, status_code, version_id, group_by, ip, instance_id)
    select e, to_timestamp(t / 1000.0), d, s, v, g, i, ${instanceId}::integer
    from unnest(${numberArrayLiteral(requests.map((r) => r.endpointId))}::integer[], ${numberArrayLiteral(times)}::float8[],
      ${numberArrayLiteral(requests.map((r) => r.durationMs))}::float8[], ${numberArrayLiteral(requests.map((r) => r.statusCode))}::smallint[],
      ${numberArrayLiteral(requests.map((r) => versions.get(r.version)!))}::integer[],
      ${textArrayLiteral(requests.map((r) => r.groupBy ?? null))}::text[], ${textArrayLiteral(requests.map((r) => r.ip ?? null))}::text[])
      as u(e, t, d, s, v, g, i)`.execute(db)
  await rebuildRollups(db, from, to)
  await markSeen(db, from, to)
}

/** Shape of generated traffic. */
export interface TrafficOptions {
  requests: number
  /** Spread over the days before now. */
  days: number
  /** Endpoint ids to spread requests over (the first ones get more). */
  endpointIds: number[]
  /** In succession over the days, one after the other. */
  versions: string[]
  /** Distinct group-by values (`user0`, `user1`, …). Default 1000. */
  users?: number
  /** Distinct client IPs (10.x.y.z). Default 200. */
  ips?: number
  /** Rows per statement. Default 500000. */
  chunk?: number
  onProgress?: (done: number) => void
}

/**
 * Generates realistic traffic in the database itself (`generate_series`, log-normal durations around
 * 12 ms, endpoints of skewed popularity, versions in succession, 3% 4xx and 1% 5xx, 1,000 users and
 * 200 IPs unless told otherwise), then builds the rollups in one pass.
 */
export async function generateTraffic (db: Kysely<Database>, options: TrafficOptions): Promise<void> {
  const to = new Date()
  const from = new Date(to.getTime() - options.days * DAY_MS)
  await ensurePartitions(db, from, to)
  const versions = await versionIds(db, options.versions)
  const versionArray = options.versions.map((v) => versions.get(v)!)
  const instanceId = await seedInstance(db)
  const endpoints = numberArrayLiteral(options.endpointIds)
  const chunk = options.chunk ?? 500_000
  const spanS = (to.getTime() - from.getTime()) / 1000
  const users = options.users ?? 1000
  const ips = options.ips ?? 200
  for (let done = 0; done < options.requests; done += chunk) {
    const n = Math.min(chunk, options.requests - done)
    await sql`insert into ${sql.table('request')} (endpoint_id, time_requested, duration_ms, status_code, version_id, group_by, ip, instance_id)
      select (${endpoints}::integer[])[1 + floor(power(random(), 2) * ${options.endpointIds.length})::int],
        t,
        exp(2.5 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
        case when r < 0.01 then 500 when r < 0.04 then 404 else 200 end,
        (${numberArrayLiteral(versionArray)}::integer[])[1 + least(floor(extract(epoch from t - ${from}) / ${spanS} * ${versionArray.length})::int, ${versionArray.length - 1})],
        'user' || floor(random() * ${users})::int,
        '10.' || (ip / 65536) || '.' || (ip / 256 % 256) || '.' || (ip % 256),
        ${instanceId}::integer
      from (
        select ${from}::timestamptz + make_interval(secs => random() * ${spanS}) as t, random() as r,
          floor(random() * ${ips})::int as ip
        from generate_series(1, ${n})
      ) g`.execute(db)
    options.onProgress?.(done + n)
  }
  await rebuildRollups(db, from, to)
  await markSeen(db, from, to)
}

/**
 * Gives the rollups `copies` more spans of history before `from`: the hourly and daily rollup rows of
 * [from, to) copied back by whole multiples of the span, each copy under versions of its own (`<v>~<k>`,
 * as if the app had kept deploying), then every monthly row rebuilt from the days. The raw rows stay as
 * they are: this is what a database holds at the default retention (30 days of requests, 400 of
 * rollups), without generating a year of requests first.
 */
export async function repeatRollupHistory (db: Kysely<Database>, from: Date, to: Date, copies: number): Promise<void> {
  const spanDays = Math.round((to.getTime() - from.getTime()) / DAY_MS)
  const hourFrom = new Date(periodStart('hour', from.getTime()))
  const hourTo = new Date(periodStart('hour', to.getTime() - 1) + HOUR_MS)
  const dayFrom = new Date(periodStart('day', from.getTime())).toISOString().slice(0, 10)
  const dayTo = new Date(periodStart('day', to.getTime() - 1)).toISOString().slice(0, 10)
  const mergeCounts = mergeRollupRowSql()
  // latest copy last: its last hour and day land on the span's own (partial) first ones, which no copy may read after that
  for (let k = copies; k >= 1; k--) {
    const shift = sql`make_interval(days => ${spanDays * k})`
    // the copy's versions, mapped from the span's by name
    await sql`insert into ${sql.table('version')} (version, first_seen)
      select version || '~' || ${String(k)}::text, first_seen - ${shift} from ${sql.table('version')}
      where id in (select distinct version_id from ${sql.table('request_hour')} where hour >= ${hourFrom} and hour < ${hourTo})
      on conflict (version) do nothing`.execute(db)
    const versionMap = sql`(select o.id as old_id, c.id as new_id from ${sql.table('version')} o
      join ${sql.table('version')} c on c.version = o.version || '~' || ${String(k)}::text)`
    await sql`insert into ${sql.table('request_hour')} (endpoint_id, hour, version_id, status_code, hits, duration_sum)
      select r.endpoint_id, r.hour - ${shift}, m.new_id, r.status_code, r.hits, r.duration_sum
      from ${sql.table('request_hour')} r join ${versionMap} m on m.old_id = r.version_id
      where r.hour >= ${hourFrom} and r.hour < ${hourTo}`.execute(db)
    await sql`insert into ${sql.table('version_hour')} (endpoint_id, hour, version_id, hits, sketch_offset, sketch)
      select r.endpoint_id, r.hour - ${shift}, m.new_id, r.hits, r.sketch_offset, r.sketch
      from ${sql.table('version_hour')} r join ${versionMap} m on m.old_id = r.version_id
      where r.hour >= ${hourFrom} and r.hour < ${hourTo}`.execute(db)
    // the span's first and last hours and days are partial: their copies meet on one and add up (the
    // hours per version do not meet: each copy has versions of its own)
    await sql`insert into ${sql.table('endpoint_hour')} as h (endpoint_id, hour, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
      select endpoint_id, hour - ${shift}, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch
      from ${sql.table('endpoint_hour')} where hour >= ${hourFrom} and hour < ${hourTo}
      on conflict (endpoint_id, hour) do update set ${mergeCounts}`.execute(db)
    await sql`insert into ${sql.table('endpoint_day')} as h (endpoint_id, day, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
      select endpoint_id, (day - ${spanDays * k}::integer)::date, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch
      from ${sql.table('endpoint_day')} where day >= ${dayFrom}::date and day <= ${dayTo}::date
      on conflict (endpoint_id, day) do update set ${mergeCounts}`.execute(db)
  }
  await sql`delete from ${sql.table('endpoint_month')}`.execute(db)
  await sql`insert into ${sql.table('endpoint_month')} (endpoint_id, month, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
    ${monthsFromDaysSql(sql`true`)}`.execute(db)
  await sql`delete from ${sql.table('version_day')}`.execute(db)
  await sql`insert into ${sql.table('version_day')} (day, version_id, endpoint_id, hits) ${versionCountsFromHoursSql('day', sql`true`)}`.execute(db)
  await sql`delete from ${sql.table('version_total_hour')}`.execute(db)
  await sql`insert into ${sql.table('version_total_hour')} (hour, version_id, hits) ${versionCountsFromHoursSql('hour', sql`true`)}`.execute(db)
  // the copies' days hold their hours (copied from folded ones), and the versions' days were rebuilt from every hour
  await sql`insert into ${sql.table('folded_hour')} (hour) select distinct hour from ${sql.table('version_hour')} on conflict (hour) do nothing`.execute(db)
}
