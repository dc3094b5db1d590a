import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'

/** An endpoint as stored (any process may have registered it), with the name of its project. */
export async function findEndpoint (db: Kysely<Database>, id: number): Promise<{ id: number, method: string, route: string, level: number, project: string } | undefined> {
  const row = await db.selectFrom('endpoint').innerJoin('project', 'project.id', 'endpoint.project_id')
    .select(['endpoint.id', 'endpoint.method', 'endpoint.route', 'endpoint.monitor_level', 'project.name']).where('endpoint.id', '=', id).executeTakeFirst()
  return row === undefined ? undefined : { id: row.id, method: row.method, route: row.route, level: row.monitor_level, project: row.name }
}

/** Size on disk and rows of each of the plugin's tables (partitions summed into their parent). */
export interface TableSize {
  table: string
  rows: number
  /** `rows` is an estimate (a large table), not an exact count. */
  rowsEstimated: boolean
  bytes: number
}

/** Tables up to this size are counted exactly: `count(*)` reads them in milliseconds. */
const EXACT_COUNT_MAX_BYTES = 16 * 1024 * 1024

/**
 * Sizes from the catalog, and rows: counted exactly in small tables; in larger ones the statistics'
 * live rows (`n_live_tup`), or else the planner's estimate for a scan. The catalog's `reltuples` alone
 * is no figure: it is -1 on a server until a table is first analysed, and PGlite, which has neither
 * autovacuum nor a statistics collector, keeps it at -1 (and `n_live_tup` at 0) for good; the planner
 * still estimates from the pages on disk.
 */
export async function tableSizes (db: Kysely<Database>, tablePrefix: string): Promise<TableSize[]> {
  const { rows } = await sql<{ name: string, live: string, bytes: string }>`
    select coalesce(parent.relname, c.relname) as name,
      sum(coalesce(s.n_live_tup, 0))::bigint as live, sum(pg_total_relation_size(c.oid))::bigint as bytes
    from pg_class c
    left join pg_inherits i on i.inhrelid = c.oid
    left join pg_class parent on parent.oid = i.inhparent
    left join pg_stat_user_tables s on s.relid = c.oid
    where c.relkind in ('r', 'p') and c.relnamespace = to_regnamespace(current_schema())::oid
      and starts_with(coalesce(parent.relname, c.relname), ${tablePrefix})
    group by 1 order by 1`.execute(db)
  const sizes: TableSize[] = []
  for (const row of rows) {
    // the full name as an identifier: sql.table() would prefix it again
    const table = sql.id(row.name)
    const bytes = Number(row.bytes)
    let count: number
    let rowsEstimated = true
    if (bytes <= EXACT_COUNT_MAX_BYTES) {
      count = Number((await sql<{ n: string }>`select count(*) as n from ${table}`.execute(db)).rows[0]!.n)
      rowsEstimated = false
    } else if (Number(row.live) > 0) {
      count = Number(row.live)
    } else {
      const plan = (await sql<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>`explain (format json) select from ${table}`.execute(db)).rows[0]!
      count = plan['QUERY PLAN'][0]!.Plan['Plan Rows']
    }
    sizes.push({ table: row.name.slice(tablePrefix.length), rows: Math.round(count), rowsEstimated, bytes })
  }
  return sizes
}
