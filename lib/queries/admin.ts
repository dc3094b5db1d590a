import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'

/** An endpoint as stored (any process may have registered it). */
export async function findEndpoint (db: Kysely<Database>, id: number): Promise<{ id: number, method: string, route: string, level: number } | undefined> {
  const row = await db.selectFrom('endpoint').select(['id', 'method', 'route', 'monitor_level']).where('id', '=', id).executeTakeFirst()
  return row === undefined ? undefined : { id: row.id, method: row.method, route: row.route, level: row.monitor_level }
}

/** Sets a level in the database; every process picks it up at its next level poll. */
export async function storeLevel (db: Kysely<Database>, id: number, level: number): Promise<void> {
  await db.updateTable('endpoint').set({ monitor_level: level }).where('id', '=', id).execute()
}

/** Size on disk and estimated rows of each of the plugin's tables (partitions summed into their parent). */
export interface TableSize {
  table: string
  rows: number
  bytes: number
}

/**
 * Sizes from the catalog: `reltuples` is the planner's estimate (exact counts of millions of rows
 * take seconds), refreshed by autovacuum/ANALYZE; -1 (never analysed) is shown as 0.
 */
export async function tableSizes (db: Kysely<Database>, tablePrefix: string): Promise<TableSize[]> {
  const { rows } = await sql<{ name: string, rows: number, bytes: string }>`
    select coalesce(parent.relname, c.relname) as name,
      sum(greatest(c.reltuples, 0))::float8 as rows, sum(pg_total_relation_size(c.oid))::bigint as bytes
    from pg_class c
    left join pg_inherits i on i.inhrelid = c.oid
    left join pg_class parent on parent.oid = i.inhparent
    where c.relkind in ('r', 'p') and c.relnamespace = to_regnamespace(current_schema())::oid
      and starts_with(coalesce(parent.relname, c.relname), ${tablePrefix})
    group by 1 order by 1`.execute(db)
  return rows.map((row) => ({ table: row.name.slice(tablePrefix.length), rows: Math.round(row.rows), bytes: Number(row.bytes) }))
}
