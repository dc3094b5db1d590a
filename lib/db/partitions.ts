import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from './database.js'
import { DAY_MS } from '../time.js'

/** UTC day number (days since the epoch) of a time in ms. */
export function dayOf (timeMs: number): number {
  return Math.floor(timeMs / DAY_MS)
}

/** `request_p20261125`: the partition holding one UTC day (the table prefix is added by the plugin). */
export function partitionName (day: number): string {
  return `request_p${new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')}`
}

/** DDL: the partition of the requests table holding one UTC day, unless it exists. */
export function createPartitionSql (day: number): RawBuilder<unknown> {
  const from = new Date(day * DAY_MS).toISOString()
  const to = new Date((day + 1) * DAY_MS).toISOString()
  return sql`create table if not exists ${sql.table(partitionName(day))} partition of ${sql.table('request')}
    for values from (${sql.lit(from)}) to (${sql.lit(to)})`
}

/**
 * Creates the daily partitions of the requests table that do not exist yet. Remembers what it
 * made, so the writer can call it before every batch for free. Several processes may call it at
 * once: an advisory lock serialises them and `if not exists` makes it idempotent.
 *
 * ### Examples
 * ```ts
 * const partitions = new PartitionManager(db, 'fmd_')
 * await partitions.ensure(dayOf(Date.now()) - 1, dayOf(Date.now()) + 3)
 * ```
 */
export class PartitionManager {
  readonly #db: Kysely<Database>
  readonly #lockKey: string
  readonly #known = new Set<number>()

  constructor (db: Kysely<Database>, tablePrefix: string) {
    this.#db = db
    this.#lockKey = `${tablePrefix}request_partitions`
  }

  async ensure (fromDay: number, toDay: number): Promise<void> {
    const missing: number[] = []
    for (let day = fromDay; day <= toDay; day++) if (!this.#known.has(day)) missing.push(day)
    if (missing.length === 0) return
    await this.#db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext(${this.#lockKey}))`.execute(trx)
      for (const day of missing) await createPartitionSql(day).execute(trx)
    })
    for (const day of missing) this.#known.add(day)
  }

  /** Forget what was made, e.g. after retention dropped partitions. */
  reset (): void {
    this.#known.clear()
  }
}
