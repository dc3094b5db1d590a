/**
 * The latency sketch kept in the hourly rollups: log-spaced buckets in the style of DDSketch.
 * Bucket `i` holds durations in (γ^(i-1), γ^i] ms; its representative value 2γ^i/(γ+1) is within
 * {@link ROLLUP_RELATIVE_ERROR} of every duration in it. Buckets of different hours, versions and
 * processes merge by adding counts, so any window's percentile comes from summed rows, never raw ones.
 */
import { sql, type RawBuilder } from 'kysely'

/** Relative error of a percentile read from the rollups, against the exact `percentile_disc` of the raw rows. */
export const ROLLUP_RELATIVE_ERROR = 0.02
/** Bucket growth factor γ = (1 + α) / (1 − α). */
export const ROLLUP_GAMMA = (1 + ROLLUP_RELATIVE_ERROR) / (1 - ROLLUP_RELATIVE_ERROR)
/** Durations below 1 µs share the lowest bucket. */
export const ROLLUP_MIN_MS = 0.001

/** The bucket a duration falls in (the SQL of {@link bucketSql}, for tests and tools). */
export function bucketOf (durationMs: number): number {
  return Math.ceil(Math.log(Math.max(durationMs, ROLLUP_MIN_MS)) / Math.log(ROLLUP_GAMMA))
}

/** The duration a bucket stands for. */
export function bucketValue (bucket: number): number {
  return 2 * ROLLUP_GAMMA ** bucket / (ROLLUP_GAMMA + 1)
}

/** SQL: the bucket of a duration column or expression in ms. */
export function bucketSql (durationMs: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`ceil(ln(greatest(${durationMs}, ${sql.lit(ROLLUP_MIN_MS)})) / ${sql.lit(Math.log(ROLLUP_GAMMA))})::smallint`
}

/** SQL: the duration in ms that a bucket column or expression stands for. */
export function bucketValueSql (bucket: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`(2 * power(${sql.lit(ROLLUP_GAMMA)}::float8, ${bucket}) / ${sql.lit(ROLLUP_GAMMA + 1)})`
}
