import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { HOUR_MS } from '../time.js'
import { foldHour, unfoldedHours } from './store.js'

/**
 * How long after an hour ends it is folded: batches of its last requests are still on their way for a few
 * flush intervals. One that comes later still adds to the day and month directly (the hour is folded then).
 */
export const FOLD_GRACE_MS = 60_000
/** How far back a writer looks, when it starts, for hours that a writer stopped before folding. */
export const FOLD_LOOKBACK_MS = 7 * 24 * HOUR_MS

/**
 * The hours this writer stored rows of that are not folded into their days and months yet (see
 * `folded_hour`), folded once they have closed. Folding is only what keeps reads short: until an hour
 * is folded, readers add its hourly rows to its day and month, so an hour left unfolded (a writer
 * stopped, the database was down) is read right all the same.
 *
 * ### Examples
 * ```ts
 * const folds = new HourFolds()
 * await writeUnit(db, unit, versionId, instanceId, copyTransaction, (hours) => folds.add(hours))
 * await folds.foldClosed(db, Date.now()) // on a timer
 * ```
 */
export class HourFolds {
  readonly #pending = new Set<number>()
  #scanned = false

  add (hoursMs: readonly number[]): void {
    for (const hourMs of hoursMs) this.#pending.add(hourMs)
  }

  /** Hours waiting to be folded. */
  get pending (): number {
    return this.#pending.size
  }

  /** Folds every pending hour that closed at least {@link FOLD_GRACE_MS} before `nowMs`; returns how many this call folded. */
  async foldClosed (db: Kysely<Database>, nowMs: number): Promise<number> {
    const closedBefore = nowMs - FOLD_GRACE_MS - HOUR_MS
    if (!this.#scanned) {
      // the current hour too: a writer stopped in it may have left rows this one never adds to
      this.add(await unfoldedHours(db, nowMs - FOLD_LOOKBACK_MS, closedBefore + HOUR_MS))
      this.#scanned = true
    }
    let folded = 0
    for (const hourMs of [...this.#pending].sort((a, b) => a - b)) {
      if (hourMs > closedBefore) continue
      if (await foldHour(db, hourMs)) folded++
      this.#pending.delete(hourMs)
    }
    return folded
  }
}
