import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { latencyHistograms, type Distribution } from './distribution.js'
import { endpointRollups } from './rollups.js'
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
 * before) and all time, days counted in `tz`. Answered from the per-endpoint rollups only, each
 * window from the coarsest rows that cover it exactly (see {@link endpointRollups}): all time reads a
 * row per endpoint and month, the week daily rows and the hours at its start.
 * `routePrefix` keeps endpoints whose route starts with it (a Fastify plugin prefix).
 */
export async function overview (db: Kysely<Database>, tz: string, routePrefix = ''): Promise<EndpointOverview[]> {
  // the window boundaries in the zone (PostgreSQL knows every zone's rules)
  const { rows: [bounds] } = await sql<{ today: Date, week: Date, now: Date }>`
    select t as today, t - interval '6 days' as week, now() as now
    from (select ${localDayStart(sql`now()`, tz)} as t) as local`.execute(db)
  const nowMs = bounds!.now.getTime()
  const end = new Date(nowMs)
  const starts: Record<Window, Date> = { today: bounds!.today, week: bounds!.week, all: new Date(0) }
  const like = `${routePrefix.replace(/[\\%_]/g, '\\$&')}%`
  const windows = (Object.keys(starts) as Window[])
  // per window: counts per endpoint, and the latency sketches merged into a median; all at once (the
  // pool has connections to spare, and PGlite queues them)
  const results = await Promise.all(windows.map(async (name) => {
    const counts = endpointRollups(starts[name], end, sql`endpoint_id, hits, client_errors, server_errors`, nowMs)
    const sketches = endpointRollups(starts[name], end, sql`endpoint_id as k, sketch_offset, sketch`, nowMs)
    if (counts === undefined || sketches === undefined) return { counts: new Map(), medians: new Map<number, Distribution>() }
    const [countRows, medians] = await Promise.all([
      sql<{ endpoint_id: number, hits: string, client_errors: string, server_errors: string }>`select endpoint_id, sum(hits) as hits,
        sum(client_errors) as client_errors, sum(server_errors) as server_errors from (${counts}) as c group by endpoint_id`.execute(db),
      latencyHistograms<number>(db, sketches)
    ])
    return { counts: new Map(countRows.rows.map((row) => [row.endpoint_id, row])), medians }
  }))
  const { rows: endpoints } = await sql<{ id: number, method: string, route: string, monitor_level: number, last_requested: Date | null }>`
    select id, method, route, monitor_level, last_requested from ${sql.table('endpoint')} where route like ${like} order by route, method`.execute(db)
  const window = (id: number, i: number): WindowCounts => {
    const row = results[i]!.counts.get(id)
    return {
      hits: Number(row?.hits ?? 0),
      clientErrors: Number(row?.client_errors ?? 0),
      serverErrors: Number(row?.server_errors ?? 0),
      median: results[i]!.medians.get(id)?.median ?? null
    }
  }
  return endpoints.map((row) => ({
    id: row.id,
    method: row.method,
    route: row.route,
    level: row.monitor_level,
    lastRequested: row.last_requested,
    today: window(row.id, 0),
    week: window(row.id, 1),
    allTime: window(row.id, 2)
  }))
}
