import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '../db/database.js'
import { distributionsOf, type Distribution } from './distribution.js'
import { windowSketches } from './closed-periods.js'
import { endpointRollups } from './rollups.js'
import { localDayStart } from './range.js'
import { inProject } from './projects.js'

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
  /** Its project's name: a collector's services may serve the same route. */
  project: string
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
 * row per endpoint and month, the week daily rows and the hours at its start; the sketches of periods
 * that have ended are merged once and kept while they do not change (see {@link windowSketches}).
 * `routePrefix` keeps endpoints whose route starts with it (a Fastify plugin prefix), `projectId` those of one project.
 */
export async function overview (db: Kysely<Database>, tz: string, routePrefix = '', projectId?: number): Promise<EndpointOverview[]> {
  // the window boundaries in the zone (PostgreSQL knows every zone's rules)
  const { rows: [bounds] } = await sql<{ today: Date, week: Date, now: Date }>`
    select t as today, t - interval '6 days' as week, now() as now
    from (select ${localDayStart(sql`now()`, tz)} as t) as local`.execute(db)
  const nowMs = bounds!.now.getTime()
  const end = new Date(nowMs)
  const starts: Array<[Window, Date]> = [['today', bounds!.today], ['week', bounds!.week], ['all', new Date(0)]]
  const like = `${routePrefix.replace(/[\\%_]/g, '\\$&')}%`
  // every window's rows in one union, labelled with the window (w)
  const rows = (columns: RawBuilder<unknown>): RawBuilder<unknown> => sql.join(starts.flatMap(([name, start]) => {
    const source = endpointRollups(start, end, columns, nowMs)
    return source === undefined ? [] : [sql`select ${name}::text as w, * from (${source}) as ${sql.ref(name)}`]
  }), sql` union all `)
  // all at once (the pool has connections to spare; PGlite queues them): the endpoints with their
  // counts per window, and each window's latency sketches, so PostgreSQL serialises one while this
  // thread merges another
  const sketchesOf = async (name: Window, start: Date): Promise<Map<string, Distribution>> => {
    const byEndpoint = distributionsOf(await windowSketches(db, start, end, nowMs))
    return new Map([...byEndpoint].map(([id, distribution]) => [`${name}:${id}`, distribution]))
  }
  const [{ rows: endpoints }, ...perWindow] = await Promise.all([
    sql<{ id: number, project: string, method: string, route: string, monitor_level: number, last_requested: Date | null, counts: Array<{ w: Window, hits: number, c4: number, c5: number }> | null }>`
      with counts as (select endpoint_id, w, sum(hits) as hits, sum(client_errors) as c4, sum(server_errors) as c5
        from (${rows(sql`endpoint_id, hits, client_errors, server_errors`)}) as r group by 1, 2)
      select e.id, p.name as project, e.method, e.route, e.monitor_level, e.last_requested,
        (select json_agg(json_build_object('w', c.w, 'hits', c.hits, 'c4', c.c4, 'c5', c.c5)) from counts c where c.endpoint_id = e.id) as counts
      from ${sql.table('endpoint')} e join ${sql.table('project')} p on p.id = e.project_id
      where e.route like ${like} ${inProject(projectId, sql.ref('e.id'))} order by e.route, e.method, p.name`.execute(db),
    ...starts.map(async ([name, start]) => await sketchesOf(name, start))
  ])
  const medians = new Map(perWindow.flatMap((windowMedians) => [...windowMedians]))
  const window = (row: typeof endpoints[number], name: Window): WindowCounts => {
    const counts = row.counts?.find((c) => c.w === name)
    return {
      hits: Number(counts?.hits ?? 0),
      clientErrors: Number(counts?.c4 ?? 0),
      serverErrors: Number(counts?.c5 ?? 0),
      median: medians.get(`${name}:${row.id}`)?.median ?? null
    }
  }
  return endpoints.map((row) => ({
    id: row.id,
    project: row.project,
    method: row.method,
    route: row.route,
    level: row.monitor_level,
    lastRequested: row.last_requested,
    today: window(row, 'today'),
    week: window(row, 'week'),
    allTime: window(row, 'all')
  }))
}
