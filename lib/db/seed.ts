/**
 * Filling a database with requests without going through HTTP: known rows for tests, and
 * millions of realistic ones for benchmarks (`npm run seed`). Every step is one set-based statement,
 * so it also runs through `app.monitor.db` (the read side, which has no transactions).
 */
import { sql, type Kysely } from 'kysely'
import type { Database } from './database.js'
import { dayOf, partitionName } from './partitions.js'
import { bucketSql } from './rollup.js'
import { numberArrayLiteral, textArrayLiteral } from '../writer/store.js'

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000

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
    await sql`create table if not exists ${sql.table(partitionName(day))} partition of ${sql.table('request')}
      for values from (${sql.lit(new Date(day * DAY_MS).toISOString())}) to (${sql.lit(new Date((day + 1) * DAY_MS).toISOString())})`.execute(db)
  }
}

async function versionIds (db: Kysely<Database>, versions: string[]): Promise<Map<string, number>> {
  const unique = [...new Set(versions)]
  await sql`insert into ${sql.table('version')} (version, first_seen) select unnest(${unique}::text[]), now()
    on conflict (version) do nothing`.execute(db)
  const rows = await db.selectFrom('version').select(['id', 'version']).where('version', 'in', unique).execute()
  return new Map(rows.map((row) => [row.version, row.id]))
}

async function seedInstance (db: Kysely<Database>): Promise<number> {
  const row = await db.insertInto('instance').values({ host: 'seed', pid: 0, token: 'seed' })
    .onConflict((oc) => oc.column('token').doUpdateSet({ pid: 0 })).returning('id').executeTakeFirstOrThrow()
  return row.id
}

/** Recomputes the rollups of the UTC hours (and whole UTC days) touching [from, to) from the raw rows. */
export async function rebuildRollups (db: Kysely<Database>, from: Date, to: Date): Promise<void> {
  const start = new Date(Math.floor(from.getTime() / HOUR_MS) * HOUR_MS)
  const end = new Date(Math.ceil(to.getTime() / HOUR_MS) * HOUR_MS)
  await db.deleteFrom('request_hour').where('hour', '>=', start).where('hour', '<', end).execute()
  await db.deleteFrom('duration_hour').where('hour', '>=', start).where('hour', '<', end).execute()
  // days are rebuilt whole: the range is widened to the UTC days it touches
  const dayStart = new Date(Math.floor(from.getTime() / DAY_MS) * DAY_MS)
  const dayEnd = new Date(Math.ceil(to.getTime() / DAY_MS) * DAY_MS)
  await db.deleteFrom('duration_day').where('day', '>=', dayStart.toISOString().slice(0, 10)).where('day', '<', dayEnd.toISOString().slice(0, 10)).execute()
  await sql`insert into ${sql.table('duration_day')} (endpoint_id, day, version_id, bucket, hits)
    select endpoint_id, (time_requested at time zone 'UTC')::date, version_id, ${bucketSql(sql.ref('duration_ms'))}, count(*)
    from ${sql.table('request')} where time_requested >= ${dayStart} and time_requested < ${dayEnd} group by 1, 2, 3, 4`.execute(db)
  await sql`insert into ${sql.table('request_hour')} (endpoint_id, hour, version_id, status_code, hits, duration_sum)
    select endpoint_id, date_trunc('hour', time_requested, 'UTC'), version_id, status_code, count(*), sum(duration_ms)
    from ${sql.table('request')} where time_requested >= ${start} and time_requested < ${end} group by 1, 2, 3, 4`.execute(db)
  await sql`insert into ${sql.table('duration_hour')} (endpoint_id, hour, version_id, bucket, hits)
    select endpoint_id, date_trunc('hour', time_requested, 'UTC'), version_id, ${bucketSql(sql.ref('duration_ms'))}, count(*)
    from ${sql.table('request')} where time_requested >= ${start} and time_requested < ${end} group by 1, 2, 3, 4`.execute(db)
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
}

/** Shape of generated traffic. */
export interface TrafficOptions {
  requests: number
  /** Spread over the days before now. */
  days: number
  /** Endpoint ids to spread requests over (the first ones get more). */
  endpointIds: number[]
  versions: string[]
  /** Rows per statement. Default 500000. */
  chunk?: number
  onProgress?: (done: number) => void
}

/**
 * Generates realistic traffic in the database itself (`generate_series`, log-normal durations around
 * 12 ms, endpoints of skewed popularity, versions in succession, 3% 4xx and 1% 5xx, 1,000 users,
 * 200 IPs), then builds the rollups in one pass.
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
  for (let done = 0; done < options.requests; done += chunk) {
    const n = Math.min(chunk, options.requests - done)
    await sql`insert into ${sql.table('request')} (endpoint_id, time_requested, duration_ms, status_code, version_id, group_by, ip, instance_id)
      select (${endpoints}::integer[])[1 + floor(power(random(), 2) * ${options.endpointIds.length})::int],
        t,
        exp(2.5 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
        case when r < 0.01 then 500 when r < 0.04 then 404 else 200 end,
        (${numberArrayLiteral(versionArray)}::integer[])[1 + least(floor(extract(epoch from t - ${from}) / ${spanS} * ${versionArray.length})::int, ${versionArray.length - 1})],
        'user' || floor(random() * 1000)::int,
        '10.0.' || floor(random() * 4)::int || '.' || floor(random() * 50)::int,
        ${instanceId}::integer
      from (
        select ${from}::timestamptz + make_interval(secs => random() * ${spanS}) as t, random() as r
        from generate_series(1, ${n})
      ) g`.execute(db)
    options.onProgress?.(done + n)
  }
  await rebuildRollups(db, from, to)
}
