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

/**
 * Distributions per key from rollup sketches: `sketches` is a query with columns `k` (the key),
 * `sketch_offset` and `sketch` (see {@link Sketch}), any number of rows per key, which merge by adding
 * bucket counts. A percentile is the value of the first bucket whose running count reaches q × n,
 * i.e. the bucket holding the exact `percentile_disc`, so it is within {@link ROLLUP_RELATIVE_ERROR} of it.
 * Every route reads rollup percentiles through this.
 */
export async function latencyHistograms<K extends string | number> (db: Kysely<Database>, sketches: RawBuilder<unknown>):
Promise<Map<K, Distribution>> {
  const { rows } = await sql<{ k: K, n: string, min_b: number, max_b: number, q1: number, median: number, q3: number, p95: number, p99: number }>`
    with b as (select s.k, s.sketch_offset + u.i - 1 as bucket, sum(u.c) as hits
      from (${sketches}) as s cross join lateral unnest(s.sketch) with ordinality as u(c, i) where u.c > 0 group by 1, 2),
    c as (select k, bucket, sum(hits) over (partition by k order by bucket) as cum, sum(hits) over (partition by k) as n from b)
    select k, max(n) as n, min(bucket) as min_b, max(bucket) as max_b,
      ${sql.join(Object.entries(QUANTILES).map(([name, q]) => sql`min(bucket) filter (where cum >= ${sql.lit(q)} * n) as ${sql.ref(name)}`))}
    from c group by k`.execute(db)
  return new Map(rows.map((row) => [row.k, {
    count: Number(row.n),
    min: bucketValue(row.min_b),
    q1: bucketValue(row.q1),
    median: bucketValue(row.median),
    q3: bucketValue(row.q3),
    p95: bucketValue(row.p95),
    p99: bucketValue(row.p99),
    max: bucketValue(row.max_b)
  }]))
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
