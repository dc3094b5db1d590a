import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { bucketValue } from '../db/rollup.js'
import { localDayStart } from './range.js'

/** Hits of one window, split by class of status. */
export interface WindowCounts {
  hits: number
  clientErrors: number
  serverErrors: number
  /** Median duration in ms from the rollups; null with no hits. */
  median: number | null
}

/** One row of the overview table. */
export interface EndpointOverview {
  id: number
  method: string
  route: string
  level: number
  lastRequested: Date | null
  today: WindowCounts
  week: WindowCounts
  allTime: WindowCounts
}

type Window = 'today' | 'week' | 'all'

/**
 * Every endpoint with hits, 4xx, 5xx and median for today, the last 7 days (today and the 6 days
 * before) and all time, days counted in `tz`. Answered from the hourly rollups only.
 * `routePrefix` keeps endpoints whose route starts with it (a Fastify plugin prefix).
 */
export async function overview (db: Kysely<Database>, tz: string, routePrefix = ''): Promise<EndpointOverview[]> {
  // the window boundaries, computed once and passed on as constants the planner can use
  const { rows: [bounds] } = await sql<{ today: Date, week: Date, week_days: Date, last_midnight: Date }>`
    select t as today, t - interval '6 days' as week,
      date_trunc('day', t - interval '6 days' - interval '1 microsecond', 'UTC') + interval '1 day' as week_days,
      date_trunc('day', t, 'UTC') as last_midnight
    from (select ${localDayStart(sql`now()`, tz)} as t) as local`.execute(db)
  const today = sql`${bounds!.today}::timestamptz`
  const week = sql`${bounds!.week}::timestamptz`
  const windows: Array<[Window, ReturnType<typeof sql>]> = [['today', sql`hour >= ${today}`], ['week', sql`hour >= ${week}`], ['all', sql`true`]]
  const like = `${routePrefix.replace(/[\\%_]/g, '\\$&')}%`
  const countsQuery = sql<Record<string, unknown> & { id: number, method: string, route: string, monitor_level: number, last_requested: Date | null }>`
    select e.id, e.method, e.route, e.monitor_level, e.last_requested,
      ${sql.join(windows.map(([name, where]) => sql`
        coalesce(sum(h.hits) filter (where ${where}), 0) as ${sql.ref(`${name}_hits`)},
        coalesce(sum(h.hits) filter (where ${where} and h.status_code between 400 and 499), 0) as ${sql.ref(`${name}_4xx`)},
        coalesce(sum(h.hits) filter (where ${where} and h.status_code >= 500), 0) as ${sql.ref(`${name}_5xx`)}`))}
    from ${sql.table('endpoint')} e left join ${sql.table('request_hour')} h on h.endpoint_id = e.id
    where e.route like ${like}
    group by e.id order by e.route, e.method`
  // Medians: the first bucket whose running count reaches half the window's hits. Today reads hourly
  // rows. The week reads hourly rows up to the first UTC midnight in it, daily rows for the whole UTC
  // days after, and hourly rows again from the last UTC midnight to the local start of today. All time
  // reads daily rows. The writer keeps both grains current, so the split is exact, not stale.
  // the first UTC midnight at or after the week's start, and the last one before today's start
  const weekDays = sql`${bounds!.week_days}::timestamptz`
  const lastMidnight = sql`${bounds!.last_midnight}::timestamptz`
  const mediansQuery = sql<{ endpoint_id: number, today: number | null, week: number | null, all: number | null }>`
    with source as (
      select endpoint_id, bucket, hits as today, hits as week, 0::bigint as all_time
        from ${sql.table('duration_hour')} where hour >= ${today}
      union all
      select endpoint_id, bucket, 0, hits, 0 from ${sql.table('duration_hour')}
        where (hour >= ${week} and hour < ${weekDays}) or (hour >= ${lastMidnight} and hour < ${today})
      union all
      select endpoint_id, bucket, 0, hits, 0 from ${sql.table('duration_day')}
        where day >= (${weekDays} at time zone 'UTC')::date and day < (${lastMidnight} at time zone 'UTC')::date
      union all
      select endpoint_id, bucket, 0, 0, hits from ${sql.table('duration_day')}
    ), b as (
      select endpoint_id, bucket, sum(today) as today, sum(week) as week, sum(all_time) as "all" from source group by endpoint_id, bucket
    ), c as (
      select endpoint_id, bucket,
        ${sql.join(windows.map(([name]) => sql`
          sum(${sql.ref(name)}) over (partition by endpoint_id order by bucket) as ${sql.ref(`${name}_cum`)},
          sum(${sql.ref(name)}) over (partition by endpoint_id) as ${sql.ref(`${name}_n`)}`))}
      from b
    )
    select endpoint_id,
      ${sql.join(windows.map(([name]) => sql`min(bucket) filter (where ${sql.ref(`${name}_cum`)} >= 0.5 * ${sql.ref(`${name}_n`)} and ${sql.ref(`${name}_n`)} > 0) as ${sql.ref(name)}`))}
    from c group by endpoint_id`
  // two statements at once: the pool has connections to spare and each scans different tables
  const [counts, medians] = await Promise.all([countsQuery.execute(db), mediansQuery.execute(db)])
  const medianBy = new Map(medians.rows.map((row) => [row.endpoint_id, row]))
  const window = (row: Record<string, unknown>, name: Window, median: number | null | undefined): WindowCounts => ({
    hits: Number(row[`${name}_hits`]),
    clientErrors: Number(row[`${name}_4xx`]),
    serverErrors: Number(row[`${name}_5xx`]),
    median: median === null || median === undefined ? null : bucketValue(median)
  })
  return counts.rows.map((row) => {
    const m = medianBy.get(row.id)
    return {
      id: row.id,
      method: row.method,
      route: row.route,
      level: row.monitor_level,
      lastRequested: row.last_requested,
      today: window(row, 'today', m?.today),
      week: window(row, 'week', m?.week),
      allTime: window(row, 'all', m?.all)
    }
  })
}
