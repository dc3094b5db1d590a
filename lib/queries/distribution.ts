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

const COMMA = 44
const ZERO = 48

/**
 * Bucket counts merged from any number of sketches (rollup rows of several periods, versions or
 * processes). The counts cover the buckets seen so far and grow when a sketch reaches past them: an
 * overview merges 900 of these, and a fixed grid wide enough for any duration (2,048 buckets) cost
 * more to allocate and scan than the merging itself.
 */
export class MergedSketch {
  /** The bucket of `#counts[0]`. */
  #lo = 0
  #counts = new Float64Array(0)

  /** Makes room for buckets [lo, hi). */
  #cover (lo: number, hi: number): void {
    const currentHi = this.#lo + this.#counts.length
    if (this.#counts.length > 0 && lo >= this.#lo && hi <= currentHi) return
    const newLo = this.#counts.length === 0 ? lo : Math.min(lo, this.#lo)
    const newHi = this.#counts.length === 0 ? hi : Math.max(hi, currentHi)
    const counts = new Float64Array(newHi - newLo)
    if (this.#counts.length > 0) counts.set(this.#counts, this.#lo - newLo)
    this.#lo = newLo
    this.#counts = counts
  }

  /**
   * Adds a sketch in PostgreSQL's text form (`{3,0,12}`) whose first element is bucket `offset`, read
   * digit by digit: splitting it into strings and converting each cost most of an overview.
   */
  addText (offset: number, text: string): void {
    if (text.length <= 2) return
    let elements = 1
    for (let c = text.indexOf(','); c !== -1; c = text.indexOf(',', c + 1)) elements++
    this.#cover(offset, offset + elements)
    const counts = this.#counts
    let i = offset - this.#lo
    let count = 0
    for (let c = 1; c < text.length; c++) {
      const code = text.charCodeAt(c)
      if (code >= ZERO && code <= ZERO + 9) {
        count = count * 10 + code - ZERO
      } else if (code === COMMA || c === text.length - 1) {
        counts[i] = counts[i]! + count
        count = 0
        i++
      }
    }
  }

  /** Adds another merged sketch's counts (which stays as it is). */
  addMerged (other: MergedSketch): void {
    if (other.#counts.length === 0) return
    this.#cover(other.#lo, other.#lo + other.#counts.length)
    const offset = other.#lo - this.#lo
    for (let i = 0; i < other.#counts.length; i++) this.#counts[offset + i] = this.#counts[offset + i]! + other.#counts[i]!
  }

  /** Every non-empty bucket, lowest first, as [bucket, count]. */
  * buckets (): Generator<[number, number]> {
    for (let i = 0; i < this.#counts.length; i++) {
      if (this.#counts[i]! > 0) yield [this.#lo + i, this.#counts[i]!]
    }
  }

  /** The distribution; undefined when empty. One pass for the quantiles (in ascending order). */
  distribution (): Distribution | undefined {
    const counts = this.#counts
    let n = 0
    let first = -1
    let last = -1
    for (let i = 0; i < counts.length; i++) {
      if (counts[i]! > 0) { n += counts[i]!; if (first < 0) first = i; last = i }
    }
    if (n === 0) return undefined
    const quantiles = Object.values(QUANTILES)
    const values: number[] = []
    let cum = 0
    for (let i = first; i <= last && values.length < quantiles.length; i++) {
      cum += counts[i]!
      // q × n in binary floating point can land a hair above a whole count (0.95 × 60): the
      // tolerance keeps the exact rank, as PostgreSQL's numeric arithmetic did
      while (values.length < quantiles.length && cum >= quantiles[values.length]! * n - 1e-9) values.push(bucketValue(this.#lo + i))
    }
    while (values.length < quantiles.length) values.push(bucketValue(this.#lo + last))
    const [q1, median, q3, p95, p99] = values as [number, number, number, number, number]
    return { count: n, min: bucketValue(this.#lo + first), q1, median, q3, p95, p99, max: bucketValue(this.#lo + last) }
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
  return distributionsOf(await mergedSketches<K>(db, sketches))
}

/** The sketches of {@link latencyHistograms}, merged per key but not yet made distributions. */
export async function mergedSketches<K extends string | number> (db: Kysely<Database>, sketches: RawBuilder<unknown>, into = new Map<K, MergedSketch>()):
Promise<Map<K, MergedSketch>> {
  // one string per row: cheaper to split than pg's parsing of a bigint[] into strings element by element
  const { rows } = await sql<{ k: K, o: number, s: string }>`select k, sketch_offset as o, sketch::text as s from (${sketches}) as source`.execute(db)
  for (const row of rows) {
    let sketch = into.get(row.k)
    if (sketch === undefined) into.set(row.k, sketch = new MergedSketch())
    sketch.addText(row.o, row.s)
  }
  return into
}

/** The distribution of each non-empty merged sketch. */
export function distributionsOf<K> (merged: ReadonlyMap<K, MergedSketch>): Map<K, Distribution> {
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
