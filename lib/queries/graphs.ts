import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { TimeRange } from './range.js'

/** Most points returned per graph: a long range is averaged into this many time buckets at most. */
export const MAX_GRAPH_POINTS = 500

/** A custom graph as stored: its schedule, its latest value and its latest error. */
export interface StoredGraph {
  name: string
  /** The project of the app that added it: a name is unique per project. */
  project: string
  schedule: string
  lastValue: number | null
  lastValueAt: Date | null
  lastError: string | null
  lastErrorAt: Date | null
  /** Failed runs in the range. */
  errors: number
  points: Array<{ time: Date, value: number }>
}

/**
 * Every custom graph any process registered (of one project, or of every one), with its values in the
 * range: as stored when they are at most {@link MAX_GRAPH_POINTS}, else averaged per equal time bucket
 * (the chart cannot show more). A graph is its project and its name; so are its runs.
 */
export async function graphs (db: Kysely<Database>, range: TimeRange, projectId?: number): Promise<StoredGraph[]> {
  const { rows: listed } = await sql<{ project_id: number, name: string, project: string, schedule: string, value: number | null, value_at: Date | null, error: string | null, error_at: Date | null, errors: number }>`
    select g.project_id, g.name, p.name as project, g.schedule, v.value, v.tick as value_at, e.error, e.tick as error_at,
      (select count(*)::int from ${sql.table('graph_run')} r where r.project_id = g.project_id and r.graph = g.name and r.error is not null
        and r.tick >= ${range.from} and r.tick < ${range.to}) as errors
    from ${sql.table('graph')} g join ${sql.table('project')} p on p.id = g.project_id
    left join lateral (select value, tick from ${sql.table('graph_run')} r where r.project_id = g.project_id and r.graph = g.name and r.value is not null order by tick desc limit 1) v on true
    left join lateral (select error, tick from ${sql.table('graph_run')} r where r.project_id = g.project_id and r.graph = g.name and r.error is not null order by tick desc limit 1) e on true
    ${projectId === undefined ? sql`` : sql`where g.project_id = ${projectId}`}
    order by g.name, p.name`.execute(db)
  const stepS = Math.max(1, Math.ceil((range.to.getTime() - range.from.getTime()) / 1000 / MAX_GRAPH_POINTS))
  const { rows: points } = await sql<{ project_id: number, graph: string, time: Date, value: number }>`
    select project_id, graph, to_timestamp(floor(extract(epoch from tick) / ${stepS}) * ${stepS}) as time, avg(value) as value
    from ${sql.table('graph_run')} where value is not null and tick >= ${range.from} and tick < ${range.to}
      ${projectId === undefined ? sql`` : sql`and project_id = ${projectId}`}
    group by 1, 2, 3 order by 1, 2, 3`.execute(db)
  return listed.map((row) => ({
    name: row.name,
    project: row.project,
    schedule: row.schedule,
    lastValue: row.value,
    lastValueAt: row.value_at,
    lastError: row.error,
    lastErrorAt: row.error_at,
    errors: row.errors,
    points: points.filter((p) => p.project_id === row.project_id && p.graph === row.name).map((p) => ({ time: p.time, value: Number(p.value) }))
  }))
}
