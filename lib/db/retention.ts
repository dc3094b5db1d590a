import { sql, type Kysely } from 'kysely'
import type { Database } from './database.js'
import { dayOf, partitionName } from './partitions.js'
import { monthsFromDaysSql } from './rollup.js'
import { DAY_MS } from '../time.js'

/** What a retention pass removed. */
export interface RetentionResult {
  droppedPartitions: number
  deletedRequests: number
  deletedRollupRows: number
}

/**
 * Removes raw requests older than `rawBefore` and rollup rows of hours starting before `rollupBefore`.
 * Whole days go by dropping their partition (no dead rows, no vacuum); only the day `rawBefore` falls
 * in is deleted row by row. Rollup hours are whole: an hour that starts before the cut-off goes.
 */
export async function deleteOlderThan (db: Kysely<Database>, tablePrefix: string, rawBefore: Date, rollupBefore: Date): Promise<RetentionResult> {
  const { rows } = await sql<{ name: string }>`select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
    where p.relname = ${`${tablePrefix}request`} and p.relnamespace = c.relnamespace
      and p.relnamespace = to_regnamespace(current_schema())::oid`.execute(db)
  let droppedPartitions = 0
  for (const { name } of rows) {
    const match = /request_p(\d{4})(\d{2})(\d{2})$/.exec(name)
    if (match === null) continue
    const day = dayOf(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])))
    // a partition holds [day, day + 1): it is wholly older when it ends at or before the cut-off
    if ((day + 1) * DAY_MS <= rawBefore.getTime()) {
      await sql`drop table if exists ${sql.table(partitionName(day))}`.execute(db)
      droppedPartitions++
    }
  }
  const deleted = await db.deleteFrom('request').where('time_requested', '<', rawBefore).executeTakeFirst()
  // custom graph values are kept as long as raw requests
  await db.deleteFrom('graph_run').where('tick', '<', rawBefore).execute()
  const cutDay = rollupBefore.toISOString().slice(0, 10)
  // a month row goes once its whole month is before the cut-off; the month the cut-off falls in loses
  // the days that go (days add up to their month exactly), so all-time windows count what is kept
  const cutMonth = new Date(Date.UTC(rollupBefore.getUTCFullYear(), rollupBefore.getUTCMonth() - 1, 1)).toISOString().slice(0, 10)
  const cutMonthStart = new Date(Date.UTC(rollupBefore.getUTCFullYear(), rollupBefore.getUTCMonth(), 1)).toISOString().slice(0, 10)
  await sql`update ${sql.table('endpoint_month')} as h set hits = h.hits - d.hits, client_errors = h.client_errors - d.client_errors,
      server_errors = h.server_errors - d.server_errors, duration_sum = h.duration_sum - d.duration_sum,
      sketch = (select array_agg(h.sketch[b - h.sketch_offset + 1] - coalesce(d.sketch[b - d.sketch_offset + 1], 0) order by b)
        from generate_series(h.sketch_offset::integer, h.sketch_offset + cardinality(h.sketch) - 1) as b)
    from (${monthsFromDaysSql(sql`day < ${cutDay}::date and day >= ${cutMonthStart}::date`)}
    ) as d
    where h.endpoint_id = d.endpoint_id and h.month = d.month`.execute(db)
  const results = await Promise.all([
    db.deleteFrom('request_hour').where('hour', '<', rollupBefore).executeTakeFirst(),
    db.deleteFrom('endpoint_hour').where('hour', '<', rollupBefore).executeTakeFirst(),
    db.deleteFrom('version_hour').where('hour', '<', rollupBefore).executeTakeFirst(),
    db.deleteFrom('version_total_hour').where('hour', '<', rollupBefore).executeTakeFirst(),
    // a day row goes once its whole day is before the cut-off
    db.deleteFrom('endpoint_day').where('day', '<', cutDay).executeTakeFirst(),
    db.deleteFrom('version_day').where('day', '<', cutDay).executeTakeFirst(),
    db.deleteFrom('endpoint_month').where('month', '<=', cutMonth).executeTakeFirst()
  ])
  // the hours are gone: so are their marks
  await db.deleteFrom('folded_hour').where('hour', '<', rollupBefore).execute()
  return {
    droppedPartitions,
    deletedRequests: Number(deleted.numDeletedRows),
    deletedRollupRows: results.reduce((sum, r) => sum + Number(r.numDeletedRows), 0)
  }
}

/**
 * What autovacuum does on a server, for PGlite, which has none: marks the rollups' and requests' pages
 * all-visible (so the covering indexes answer the load, versions and breakdowns without reading rows),
 * gives the planner statistics, and frees the index entries of updated rollup rows. Pages already
 * all-visible are skipped, so after the first pass it reads only what changed since the last.
 */
export async function vacuumForPglite (db: Kysely<Database>): Promise<void> {
  const tables = ['request', 'request_hour', 'endpoint_hour', 'version_hour', 'version_day', 'version_total_hour', 'endpoint_day', 'endpoint_month', 'endpoint']
  await sql`vacuum (analyze) ${sql.join(tables.map((table) => sql.table(table)))}`.execute(db)
}
