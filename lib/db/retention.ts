import { sql, type Kysely } from 'kysely'
import type { Database } from './database.js'
import { dayOf, partitionName } from './partitions.js'

const DAY_MS = 86_400_000

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
  const counts = await db.deleteFrom('request_hour').where('hour', '<', rollupBefore).executeTakeFirst()
  const durations = await db.deleteFrom('duration_hour').where('hour', '<', rollupBefore).executeTakeFirst()
  // a day row goes once its whole day is before the cut-off
  const days = await db.deleteFrom('duration_day').where('day', '<', rollupBefore.toISOString().slice(0, 10)).executeTakeFirst()
  return {
    droppedPartitions,
    deletedRequests: Number(deleted.numDeletedRows),
    deletedRollupRows: Number(counts.numDeletedRows) + Number(durations.numDeletedRows) + Number(days.numDeletedRows)
  }
}
