import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '../db/database.js'
import { bucketValue } from '../db/rollup.js'

/** Duration statistics of a set of requests, in ms: what a box plot draws. */
export interface Distribution {
  count: number
  min: number
  q1: number
  median: number
  q3: number
  p95: number
  p99: number
  max: number
}

const QUANTILES = { q1: 0.25, median: 0.5, q3: 0.75, p95: 0.95, p99: 0.99 } as const

/** Buckets a merged sketch can hold: 1 µs is bucket -172, an hour ≈ 378; this spans far beyond both. */
const MERGE_LOWEST_BUCKET = -512
const MERGE_BUCKETS = 2048

const COMMA = 44
const ZERO = 48

/**
 * Adds a sketch in PostgreSQL's text form (`{3,0,12}`) into merged counts, its first element at index
 * `base`. Read digit by digit: splitting into strings and converting each cost most of an overview
 * (900 merged keys, 400K elements: 90 ms with `split` and `Number`).
 */
function addSketchText (counts: Float64Array, base: number, text: string): void {
  let i = base
  let count = 0
  for (let c = 1; c < text.length; c++) {
    const code = text.charCodeAt(c)
    if (code >= ZERO && code <= ZERO + 9) {
      count = count * 10 + code - ZERO
    } else if (code === COMMA || c === text.length - 1) {
      if (count !== 0) {
        const b = Math.min(MERGE_BUCKETS - 1, Math.max(0, i))
        counts[b] = counts[b]! + count
      }
      count = 0
      i++
    }
  }
}

/**
 * Bucket counts merged from any number of sketches (rollup rows of several periods, versions or
 * processes), on one fixed grid of buckets wide enough for any duration.
 */
export class MergedSketch {
  readonly #counts = new Float64Array(MERGE_BUCKETS)

  /** Adds a sketch in PostgreSQL's text form (`{3,0,12}`) whose first element is bucket `offset`. */
  addText (offset: number, text: string): void {
    addSketchText(this.#counts, offset - MERGE_LOWEST_BUCKET, text)
  }

  /** Every non-empty bucket, lowest first, as [bucket, count]. */
  * buckets (): Generator<[number, number]> {
    for (let b = 0; b < MERGE_BUCKETS; b++) {
      if (this.#counts[b]! > 0) yield [b + MERGE_LOWEST_BUCKET, this.#counts[b]!]
    }
  }

  /** The distribution; undefined when empty. */
  distribution (): Distribution | undefined {
    const buckets = [...this.buckets()]
    const n = buckets.reduce((sum, [, count]) => sum + count, 0)
    if (n === 0) return undefined
    const quantile = (q: number): number => {
      let cum = 0
      for (const [bucket, count] of buckets) {
        cum += count
        // q × n in binary floating point can land a hair above a whole count (0.95 × 60): the
        // tolerance keeps the exact rank, as PostgreSQL's numeric arithmetic did
        if (cum >= q * n - 1e-9) return bucketValue(bucket)
      }
      return bucketValue(buckets[buckets.length - 1]![0])
    }
    return {
      count: n,
      min: bucketValue(buckets[0]![0]),
      q1: quantile(QUANTILES.q1),
      median: quantile(QUANTILES.median),
      q3: quantile(QUANTILES.q3),
      p95: quantile(QUANTILES.p95),
      p99: quantile(QUANTILES.p99),
      max: bucketValue(buckets[buckets.length - 1]![0])
    }
  }
}

/**
 * Distributions per key from rollup sketches: `sketches` is a query with columns `k` (the key),
 * `sketch_offset` and `sketch` (see {@link Sketch}), any number of rows per key, which merge by adding
 * bucket counts. A percentile is the value of the first bucket whose running count reaches q × n,
 * i.e. the bucket holding the exact `percentile_disc`, so it is within {@link ROLLUP_RELATIVE_ERROR} of it.
 * Every route reads rollup percentiles through this.
 *
 * The rows are merged here, not in SQL: unnesting every array into rows and grouping them by bucket
 * cost PostgreSQL about 1 µs per element (a week of 300 endpoints is a million elements), while
 * adding a row's counts into a typed array costs a few ns each.
 */
export async function latencyHistograms<K extends string | number> (db: Kysely<Database>, sketches: RawBuilder<unknown>):
Promise<Map<K, Distribution>> {
  // one string per row: cheaper to split than pg's parsing of a bigint[] into strings element by element
  const { rows } = await sql<{ k: K, o: number, s: string }>`select k, sketch_offset as o, sketch::text as s from (${sketches}) as source`.execute(db)
  const merged = new Map<K, MergedSketch>()
  for (const row of rows) {
    let sketch = merged.get(row.k)
    if (sketch === undefined) merged.set(row.k, sketch = new MergedSketch())
    sketch.addText(row.o, row.s)
  }
  const result = new Map<K, Distribution>()
  for (const [k, sketch] of merged) {
    const distribution = sketch.distribution()
    if (distribution !== undefined) result.set(k, distribution)
  }
  return result
}

/** A row of {@link exactDistributionColumns}; `n` is a bigint (a string from `pg`, a number inside JSON). */
export interface ExactDistributionRow { n: string | number, min: number, max: number, q1: number, median: number, q3: number, p95: number, p99: number }

/** The aggregates of an exact distribution of the column `d` (of a group, or of every row): `n`, min, max and the quantiles. */
export function exactDistributionColumns (): RawBuilder<unknown> {
  return sql`count(*) as n, min(d) as min, max(d) as max,
    ${sql.join(Object.entries(QUANTILES).map(([name, q]) => sql`percentile_cont(${sql.lit(q)}) within group (order by d) as ${sql.ref(name)}`))}`
}

export function exactDistribution (row: ExactDistributionRow): Distribution {
  return { count: Number(row.n), min: row.min, q1: row.q1, median: row.median, q3: row.q3, p95: row.p95, p99: row.p99, max: row.max }
}

/**
 * Exact distributions per key from raw rows (`k`, `d` = duration in ms), for keys the rollups do not
 * hold (group-by values, client IPs), for the `limit` busiest keys, busiest first. The caller bounds
 * the rows by endpoint and time.
 */
export async function distributionsFromRaw<K extends string | number | null> (db: Kysely<Database>, rows: RawBuilder<unknown>, limit: number):
Promise<Map<K, Distribution>> {
  const result = await sql<{ k: K } & ExactDistributionRow>`
    select k, ${exactDistributionColumns()} from (${rows}) as source group by k order by count(*) desc, k limit ${limit}`.execute(db)
  return new Map(result.rows.map((row) => [row.k, exactDistribution(row)]))
}
