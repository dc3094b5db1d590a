/**
 * The latency sketch kept in the hourly rollups: log-spaced buckets in the style of DDSketch.
 * Bucket `i` holds durations in (γ^(i-1), γ^i] ms; its representative value 2γ^i/(γ+1) is within
 * {@link ROLLUP_RELATIVE_ERROR} of every duration in it. Buckets of different hours, versions and
 * processes merge by adding counts, so any window's percentile comes from summed rows, never raw ones.
 */
import { sql, type RawBuilder } from 'kysely'
import { DAY_MS, HOUR_MS } from '../time.js'

/** Relative error of a percentile read from the rollups, against the exact `percentile_disc` of the raw rows. */
export const ROLLUP_RELATIVE_ERROR = 0.02
/** Bucket growth factor γ = (1 + α) / (1 − α). */
export const ROLLUP_GAMMA = (1 + ROLLUP_RELATIVE_ERROR) / (1 - ROLLUP_RELATIVE_ERROR)
/** Durations below 1 µs share the lowest bucket. */
export const ROLLUP_MIN_MS = 0.001
/** ln γ, the divisor of every bucket's computation here and in SQL. */
const LOG_GAMMA = Math.log(ROLLUP_GAMMA)

/** The bucket a duration falls in (the SQL of {@link bucketSql}, for tests and tools). */
export function bucketOf (durationMs: number): number {
  return Math.ceil(Math.log(Math.max(durationMs, ROLLUP_MIN_MS)) / LOG_GAMMA)
}

/** The duration a bucket stands for. */
export function bucketValue (bucket: number): number {
  return 2 * ROLLUP_GAMMA ** bucket / (ROLLUP_GAMMA + 1)
}

/** SQL: the bucket of a duration column or expression in ms. */
export function bucketSql (durationMs: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`ceil(ln(greatest(${durationMs}, ${sql.lit(ROLLUP_MIN_MS)})) / ${sql.lit(LOG_GAMMA)})::smallint`
}

/** SQL: the duration in ms that a bucket column or expression stands for. */
export function bucketValueSql (bucket: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`(2 * power(${sql.lit(ROLLUP_GAMMA)}::float8, ${bucket}) / ${sql.lit(ROLLUP_GAMMA + 1)})`
}

/**
 * A latency sketch as stored in a rollup row: `counts[i]` requests fell in bucket `offset + i`
 * (dense between the lowest and highest bucket seen). One row per endpoint and period holds the whole
 * histogram, so a window is a handful of rows per endpoint, and two sketches merge by adding counts.
 */
export interface Sketch {
  offset: number
  counts: number[]
}

/**
 * Bucket counts being gathered (the writer's thread aggregates each batch into these before it
 * upserts a few rows). Dense from the lowest bucket added to the highest, as a {@link Sketch} is: an
 * endpoint's durations span a few hundred buckets at most, and an array index costs a request far
 * less than a Map's hashing (the writer adds every stored request).
 */
export class SketchBuilder {
  #offset = 0
  readonly #counts: number[] = []

  add (bucket: number, count = 1): void {
    if (count === 0) return
    if (this.#counts.length === 0) this.#offset = bucket
    else if (bucket < this.#offset) {
      this.#counts.unshift(...new Array<number>(this.#offset - bucket).fill(0))
      this.#offset = bucket
    }
    const index = bucket - this.#offset
    while (this.#counts.length <= index) this.#counts.push(0)
    this.#counts[index]! += count
  }

  addAll (other: SketchBuilder): void {
    other.#counts.forEach((count, index) => this.add(other.#offset + index, count))
  }

  toSketch (): Sketch {
    return this.#counts.length === 0 ? { offset: 0, counts: [] } : { offset: this.#offset, counts: [...this.#counts] }
  }
}

/**
 * SQL: the `set` clause that merges the sketch of an upserted row (`excluded`) into the stored one (alias
 * `h`). Usually a batch's sketch falls within the stored one's range (an endpoint's durations settle into
 * their buckets within its first requests), and a batch spread over many endpoints holds a few buckets of
 * each: then only those buckets are added, and the stored ones before and after them are copied as
 * slices. Otherwise bucket by bucket over the union of both ranges (out-of-range subscripts read as
 * NULL, hence the coalesce). The first way took PostgreSQL about 10 µs per merged row against 40 for the
 * second (a 90-bucket stored sketch, a 2-bucket batch; pgbench, 300-row upserts).
 */
export function mergeSketchSql (): RawBuilder<unknown> {
  // the batch's first bucket, as a position in the stored array (0: its first)
  const at = sql`(excluded.sketch_offset - h.sketch_offset)`
  return sql`sketch_offset = least(h.sketch_offset, excluded.sketch_offset),
    sketch = case when ${at} >= 0 and ${at} + cardinality(excluded.sketch) <= cardinality(h.sketch)
      then h.sketch[:${at}]
        || array(select h.sketch[${at} + i] + excluded.sketch[i] from generate_subscripts(excluded.sketch, 1) as i order by i)
        || h.sketch[${at} + cardinality(excluded.sketch) + 1:]
      else array(select coalesce(h.sketch[b - h.sketch_offset + 1], 0) + coalesce(excluded.sketch[b - excluded.sketch_offset + 1], 0)
        from generate_series(least(h.sketch_offset, excluded.sketch_offset)::integer,
          greatest(h.sketch_offset + cardinality(h.sketch), excluded.sketch_offset + cardinality(excluded.sketch)) - 1) as b order by b) end`
}

/**
 * SQL: the `set` clause that merges an upserted per-endpoint rollup row (`excluded`) into the stored
 * one (alias `h`): its counts add up and its sketch merges (see {@link mergeSketchSql}).
 */
export function mergeRollupRowSql (): RawBuilder<unknown> {
  return sql`hits = h.hits + excluded.hits, client_errors = h.client_errors + excluded.client_errors,
    server_errors = h.server_errors + excluded.server_errors, duration_sum = h.duration_sum + excluded.duration_sum, ${mergeSketchSql()}`
}

/** The grains of the per-endpoint rollups, finest first, with the column naming each row's period. */
export const GRAINS = [
  { grain: 'hour', table: 'endpoint_hour', column: 'hour' },
  { grain: 'day', table: 'endpoint_day', column: 'day' },
  { grain: 'month', table: 'endpoint_month', column: 'month' }
] as const

export type Grain = typeof GRAINS[number]['grain']

/** Start of the UTC period (hour, day or month) holding a time, in ms. */
export function periodStart (grain: Grain, timeMs: number): number {
  if (grain === 'hour') return Math.floor(timeMs / HOUR_MS) * HOUR_MS
  if (grain === 'day') return Math.floor(timeMs / DAY_MS) * DAY_MS
  const d = new Date(timeMs)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
}

function periodCeil (grain: Grain, timeMs: number): number {
  const start = periodStart(grain, timeMs)
  if (start === timeMs) return start
  if (grain !== 'month') return start + (grain === 'hour' ? HOUR_MS : DAY_MS)
  const d = new Date(start)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
}

/** Rows of one grain whose period starts in [from, to); `to` undefined: no upper bound. */
export interface GrainPart { grain: Grain, from: number, to: number | undefined }

/**
 * Splits a window into the coarsest rollup rows that cover it exactly: hourly rows up to the first
 * UTC midnight, daily rows up to the first month, monthly rows, then daily and hourly rows again up
 * to the end. A window holds the hours that start in [from, to), as the hourly rollups always did.
 * When the window reaches the current hour, nothing after it exists yet, so the end is open and the
 * current day's and month's rows (with their hours not folded yet, see `folded_hour`) cover the rest.
 */
export function coveringParts (fromMs: number, toMs: number, nowMs: number): GrainPart[] {
  if (!(fromMs < toMs)) return []
  const a = periodCeil('hour', fromMs)
  const endHour = periodCeil('hour', toMs)
  const open = endHour > periodStart('hour', nowMs)
  if (open && a > nowMs) return []
  const b = open ? Infinity : endHour
  if (!(a < b)) return []
  const parts: GrainPart[] = []
  const push = (grain: Grain, from: number, to: number): void => {
    if (from < to) parts.push({ grain, from, to: to === Infinity ? undefined : to })
  }
  // with an open end, a day or month that has not begun holds nothing: no row of it is needed
  const dA = periodCeil('day', a)
  const dB = open ? Infinity : periodStart('day', b)
  if (!(dA < dB && (!open || dA <= nowMs))) {
    push('hour', a, b)
    return parts
  }
  push('hour', a, dA)
  const mA = periodCeil('month', dA)
  const mB = open ? Infinity : periodStart('month', dB)
  if (mA < mB && (!open || mA <= nowMs)) {
    push('day', dA, mA)
    push('month', mA, mB)
    push('day', mB, dB)
  } else {
    push('day', dA, dB)
  }
  push('hour', dB, b)
  return parts
}

/**
 * SQL: one dense sketch per key from bucket rows (columns: the keys, `bucket`, `hits`; several rows
 * per bucket allowed), as columns `sketch_offset` and `sketch` beside the keys: for rebuilding
 * rollups from raw rows (seeding, tools).
 */
export function denseSketchSql (bucketRows: RawBuilder<unknown>, keys: readonly string[]): RawBuilder<unknown> {
  const k = sql.join(keys.map((key) => sql.ref(key)))
  const rk = sql.join(keys.map((key) => sql`r.${sql.ref(key)}`))
  const on = sql.join(keys.map((key) => sql`b.${sql.ref(key)} = r.${sql.ref(key)}`), sql` and `)
  return sql`with b as (select ${k}, bucket, sum(hits) as hits from (${bucketRows}) as source group by ${k}, bucket),
    r as (select ${k}, min(bucket) as lo, max(bucket) as hi from b group by ${k})
    select ${rk}, r.lo as sketch_offset, array_agg(coalesce(b.hits, 0) order by g) as sketch
    from r cross join generate_series(r.lo::integer, r.hi::integer) as g left join b on ${on} and b.bucket = g
    group by ${rk}, r.lo`
}

/**
 * SQL: the days of `endpoint_day` that `where` keeps, summed per endpoint and month: columns
 * endpoint_id, month, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch (days add
 * up to their month exactly, sketches bucket by bucket).
 */
export function monthsFromDaysSql (where: RawBuilder<unknown>): RawBuilder<unknown> {
  const month = sql`date_trunc('month', day)::date`
  return sql`select c.endpoint_id, c.month, c.hits, c.client_errors, c.server_errors, c.duration_sum, s.sketch_offset, s.sketch
    from (select endpoint_id, ${month} as month, sum(hits) as hits, sum(client_errors) as client_errors,
        sum(server_errors) as server_errors, sum(duration_sum) as duration_sum
      from ${sql.table('endpoint_day')} where ${where} group by 1, 2) as c
    join (${denseSketchSql(sql`select endpoint_id, ${month} as month, sketch_offset + u.i - 1 as bucket, u.c as hits
        from ${sql.table('endpoint_day')} cross join lateral unnest(sketch) with ordinality as u(c, i)
        where ${where} and u.c > 0`, ['endpoint_id', 'month'])}) as s
      on s.endpoint_id = c.endpoint_id and s.month = c.month`
}

/**
 * SQL: the hours of `version_hour` that `where` keeps, summed per UTC day, version and endpoint
 * (columns day, version_id, endpoint_id, hits: `version_day`) or, with `'hour'`, per hour and version
 * (columns hour, version_id, hits: `version_total_hour`). For seeding and tools.
 */
export function versionCountsFromHoursSql (grain: 'day' | 'hour', where: RawBuilder<unknown>): RawBuilder<unknown> {
  return grain === 'day'
    ? sql`select (hour at time zone 'UTC')::date as day, version_id, endpoint_id, sum(hits) as hits
      from ${sql.table('version_hour')} where ${where} group by 1, 2, 3`
    : sql`select hour, version_id, sum(hits) as hits from ${sql.table('version_hour')} where ${where} group by 1, 2`
}
