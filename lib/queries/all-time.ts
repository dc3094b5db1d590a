import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { periodStart } from '../db/rollup.js'
import { MergedSketch, mergedSketches } from './distribution.js'

/** The closed months' sketches merged per endpoint, and what they were read from. */
interface ClosedMonths {
  /** Start of the month they end before (ms). */
  before: number
  /** Per endpoint: its month rows and hits, which any change to them (a late batch, retention, a delete) alters. */
  fingerprint: string
  sketches: Map<number, MergedSketch>
}

/** Per database handle, so an app's cache goes with it when it closes. */
const closedMonths = new WeakMap<Kysely<Database>, ClosedMonths>()

/**
 * Every endpoint's latency sketch over all time: the `endpoint_month` rows, merged. A year of history
 * is 13 rows per endpoint (at 300 endpoints, 640K sketch elements to send and parse on every overview),
 * yet all but the current month's are closed: they are merged once and kept, per database handle, for
 * as long as their fingerprint (rows and hits per endpoint, read from the table on every call) holds.
 * Each call then reads the current month's rows and that fingerprint only. Several processes sharing a
 * database stay right: each one's fingerprint sees what any writer or retention changed.
 */
export async function allTimeSketches (db: Kysely<Database>, nowMs: number): Promise<Map<number, MergedSketch>> {
  const before = periodStart('month', nowMs)
  const month = sql`${new Date(before).toISOString().slice(0, 10)}::date`
  const closedRows = sql`select endpoint_id as k, sketch_offset, sketch from ${sql.table('endpoint_month')} where month < ${month}`
  const [{ rows }, current] = await Promise.all([
    sql<{ e: number, n: string, hits: string }>`select endpoint_id as e, count(*)::text as n, sum(hits)::text as hits
      from ${sql.table('endpoint_month')} where month < ${month} group by 1 order by 1`.execute(db),
    mergedSketches<number>(db, sql`select endpoint_id as k, sketch_offset, sketch from ${sql.table('endpoint_month')} where month >= ${month}`)
  ])
  const fingerprint = rows.map((row) => `${row.e}:${row.n}:${row.hits}`).join(',')
  let closed = closedMonths.get(db)
  if (closed === undefined || closed.before !== before || closed.fingerprint !== fingerprint) {
    // read after the fingerprint: a change in between is in the sketches and makes the next call read again
    closed = { before, fingerprint, sketches: await mergedSketches<number>(db, closedRows) }
    closedMonths.set(db, closed)
  }
  // the cached sketches stay as they are: the current month is added to copies
  const merged = new Map<number, MergedSketch>()
  for (const [endpoint, sketch] of closed.sketches) {
    const copy = new MergedSketch()
    copy.addMerged(sketch)
    merged.set(endpoint, copy)
  }
  for (const [endpoint, sketch] of current) {
    const into = merged.get(endpoint)
    if (into === undefined) merged.set(endpoint, sketch)
    else into.addMerged(sketch)
  }
  return merged
}
