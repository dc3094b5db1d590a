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

/** SQL: `select <columns>` from the rollup rows of one part (its grain's table, its periods). */
export function partRows (part: GrainPart, columns: RawBuilder<unknown>): RawBuilder<unknown> {
  const { table, column } = TABLE_OF[part.grain]!
  return periodRows(table, column, part, columns)
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
    : periodRows('version_day', 'day', part, columns)), sql` union all `)
}

function periodRows (table: string, column: string, part: GrainPart, columns: RawBuilder<unknown>): RawBuilder<unknown> {
  const bound = (ms: number) => part.grain === 'hour' ? sql`${new Date(ms)}::timestamptz` : sql`${new Date(ms).toISOString().slice(0, 10)}::date`
  const upper = part.to === undefined ? sql`` : sql`and ${sql.ref(column)} < ${bound(part.to)}`
  return sql`select ${columns} from ${sql.table(table)} where ${sql.ref(column)} >= ${bound(part.from)} ${upper}`
}
