import { sql, type Kysely } from 'kysely'
import type { Database } from '../storage/database.js'
import { bucketValue } from '../storage/rollup.js'
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
  const today = localDayStart(sql`now()`, tz)
  const week = sql`(${today} - interval '6 days')`
  const windows: Array<[Window, ReturnType<typeof sql>]> = [['today', sql`hour >= ${today}`], ['week', sql`hour >= ${week}`], ['all', sql`true`]]
  const like = `${routePrefix.replace(/[\\%_]/g, '\\$&')}%`
  const counts = await sql<Record<string, unknown> & { id: number, method: string, route: string, monitor_level: number, last_requested: Date | null }>`
    select e.id, e.method, e.route, e.monitor_level, e.last_requested,
      ${sql.join(windows.map(([name, where]) => sql`
        coalesce(sum(h.hits) filter (where ${where}), 0) as ${sql.ref(`${name}_hits`)},
        coalesce(sum(h.hits) filter (where ${where} and h.status_code between 400 and 499), 0) as ${sql.ref(`${name}_4xx`)},
        coalesce(sum(h.hits) filter (where ${where} and h.status_code >= 500), 0) as ${sql.ref(`${name}_5xx`)}`))}
    from ${sql.table('endpoint')} e left join ${sql.table('request_hour')} h on h.endpoint_id = e.id
    where e.route like ${like}
    group by e.id order by e.route, e.method`.execute(db)
  // medians: the first bucket whose running count reaches half the window's hits, per endpoint and window
  const medians = await sql<{ endpoint_id: number, today: number | null, week: number | null, all: number | null }>`
    with b as (
      select endpoint_id, bucket,
        ${sql.join(windows.map(([name, where]) => sql`sum(hits) filter (where ${where}) as ${sql.ref(name)}`))}
      from ${sql.table('duration_hour')} group by endpoint_id, bucket
    ), c as (
      select endpoint_id, bucket,
        ${sql.join(windows.map(([name]) => sql`
          sum(${sql.ref(name)}) over (partition by endpoint_id order by bucket) as ${sql.ref(`${name}_cum`)},
          sum(${sql.ref(name)}) over (partition by endpoint_id) as ${sql.ref(`${name}_n`)}`))}
      from b
    )
    select endpoint_id,
      ${sql.join(windows.map(([name]) => sql`min(bucket) filter (where ${sql.ref(`${name}_cum`)} >= 0.5 * ${sql.ref(`${name}_n`)}) as ${sql.ref(name)}`))}
    from c group by endpoint_id`.execute(db)
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
