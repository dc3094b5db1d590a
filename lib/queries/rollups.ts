import { sql, type RawBuilder } from 'kysely'
import { GRAINS, coveringParts, type GrainPart } from '../db/rollup.js'

const TABLE_OF = Object.fromEntries(GRAINS.map((g) => [g.grain, g]))

/**
 * SQL: the per-endpoint rollup rows (`endpoint_hour`, `endpoint_day`, `endpoint_month`) that cover the
 * hours starting in [from, to) exactly, coarsest first (see {@link coveringParts}), as one `union all`
 * of `select <columns> from <table> where <period in part>`; undefined when no hour is in the window.
 * `columns` may name any column the three tables share (they differ only in the period's name).
 *
 * ### Examples
 * ```ts
 * const source = endpointRollups(range.from, range.to, sql`endpoint_id as k, sketch_offset, sketch`)
 * const byEndpoint = source === undefined ? new Map() : await latencyHistograms<number>(db, source)
 * ```
 */
export function endpointRollups (from: Date, to: Date, columns: RawBuilder<unknown>, nowMs = Date.now()): RawBuilder<unknown> | undefined {
  const parts = coveringParts(from.getTime(), to.getTime(), nowMs)
  if (parts.length === 0) return undefined
  return sql.join(parts.map((part) => partRows(part, columns)), sql` union all `)
}

/**
 * SQL: `select <columns>` from the rollup rows of one part (its grain's table, its periods). A day or month
 * part also reads the hourly rows of its hours that are not folded into their days yet (see `folded_hour`).
 */
export function partRows (part: GrainPart, columns: RawBuilder<unknown>): RawBuilder<unknown> {
  const { table, column } = TABLE_OF[part.grain]!
  const rows = periodRows(table, column, part, columns)
  return part.grain === 'hour' ? rows : sql`${rows} union all ${unfoldedHourRows('endpoint_hour', part, columns)}`
}

/**
 * SQL: the per-version rows (`version_hour`, `version_day`) that cover the hours starting in [from, to)
 * exactly, as {@link endpointRollups} (there is no month grain: a month part reads its days), or
 * undefined when no hour is in the window. `columns` may name what both share: `version_id`,
 * `endpoint_id`, `hits`.
 */
export function versionRollups (from: Date, to: Date, columns: RawBuilder<unknown>, nowMs = Date.now()): RawBuilder<unknown> | undefined {
  const parts = coveringParts(from.getTime(), to.getTime(), nowMs)
  if (parts.length === 0) return undefined
  return sql.join(parts.map((part) => part.grain === 'hour'
    ? periodRows('version_hour', 'hour', part, columns)
    : sql`${periodRows('version_day', 'day', part, columns)} union all ${unfoldedHourRows('version_hour', part, columns)}`), sql` union all `)
}

/**
 * SQL: the rows of an hourly table (`endpoint_hour`, `version_hour`) for the hours of a day or month part
 * that are not folded: the part's hours that the table holds rows of (between its first and last hour, two
 * index lookups: an all-time part starts in 1970) are looked up in `folded_hour` one by one, then only the
 * few left are read, by the hourly table's `hour` index. An open part ends at the table's last hour (apps'
 * clocks may run ahead of the database's).
 */
function unfoldedHourRows (table: 'endpoint_hour' | 'version_hour', part: GrainPart, columns: RawBuilder<unknown>): RawBuilder<unknown> {
  const stored = sql`(select max(hour) from ${sql.table(table)})`
  const first = sql`greatest(${new Date(part.from)}::timestamptz, (select min(hour) from ${sql.table(table)}))`
  const last = part.to === undefined ? stored : sql`least(${new Date(part.to)}::timestamptz - interval '1 hour', ${stored})`
  return sql`select ${columns} from ${sql.table(table)} where hour = any(array(select g from generate_series(${first}, ${last}, interval '1 hour') as g
    where not exists (select 1 from ${sql.table('folded_hour')} f where f.hour = g)))`
}

function periodRows (table: string, column: string, part: GrainPart, columns: RawBuilder<unknown>): RawBuilder<unknown> {
  const bound = (ms: number) => part.grain === 'hour' ? sql`${new Date(ms)}::timestamptz` : sql`${new Date(ms).toISOString().slice(0, 10)}::date`
  const upper = part.to === undefined ? sql`` : sql`and ${sql.ref(column)} < ${bound(part.to)}`
  return sql`select ${columns} from ${sql.table(table)} where ${sql.ref(column)} >= ${bound(part.from)} ${upper}`
}
