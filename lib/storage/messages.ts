import type { StorageOptions } from '../options.js'
import type { EndpointKey, LastSeen, RecordBatch } from './batch.js'
import type { ErrorSummary } from './errors.js'
import type { WriterStats } from './writer.js'

/** An outlier with its evidence, as the request thread hands it to the writer. */
export interface OutlierRecord {
  endpointIndex: number
  timeMs: number
  durationMs: number
  thresholdMs: number
  statusCode: number
  request: unknown
  phases: unknown
  process: unknown
  stacks: unknown
}

/** A level-3 request's call tree. */
export interface ProfileRecord {
  endpointIndex: number
  timeMs: number
  durationMs: number
  tree: unknown
}

/** Outliers found beyond the per-endpoint hourly cap: counted, not stored. */
export type OutlierOverflow = [endpointIndex: number, hourMs: number, count: number]

const HOUR_MS = 3_600_000

/**
 * Overflow counts summed per endpoint and UTC hour, so that a burst of outliers past the cap (or a
 * long database outage) takes memory per endpoint and hour, not per outlier.
 */
export class OverflowCounts {
  readonly #counts = new Map<string, OutlierOverflow>()

  get size (): number {
    return this.#counts.size
  }

  add (endpointIndex: number, timeMs: number, count = 1): void {
    const hourMs = Math.floor(timeMs / HOUR_MS) * HOUR_MS
    const key = `${endpointIndex}:${hourMs}`
    const entry = this.#counts.get(key)
    if (entry === undefined) this.#counts.set(key, [endpointIndex, hourMs, count])
    else entry[2] += count
  }

  /** Removes and returns the counts of the endpoints `accept` takes; the others stay. */
  take (accept: (endpointIndex: number) => boolean = () => true): OutlierOverflow[] {
    const taken: OutlierOverflow[] = []
    for (const [key, entry] of this.#counts) {
      if (!accept(entry[0])) continue
      taken.push(entry)
      this.#counts.delete(key)
    }
    return taken
  }
}

/** What the main thread hands the writer's thread at start. */
export interface WorkerInit {
  options: StorageOptions
  /** This process's random token, stored with its instance row. */
  instanceToken: string
}

/** Main thread → writer thread. Requests carry an id; the answer comes back as a `reply` with it. */
export type ToWorker =
  | { type: 'records', batch: RecordBatch | undefined, lastSeen: LastSeen | undefined }
  | { type: 'endpoints', id: number, endpoints: EndpointKey[] }
  | { type: 'setLevel', id: number, index: number, level: number }
  | { type: 'query', id: number, sql: string, parameters: readonly unknown[] }
  | { type: 'outliers', outliers: OutlierRecord[], overflow: OutlierOverflow[], profiles: ProfileRecord[] }
  | { type: 'flush', id: number }
  | { type: 'close', id: number }

/** Writer thread → main thread. */
export type FromWorker =
  | { type: 'reply', id: number, result?: unknown, error?: ErrorSummary }
  | { type: 'ready', databaseKind: 'postgres' | 'pglite' }
  | { type: 'levels', levels: Array<[index: number, level: number]> }
  | { type: 'stats', stats: WriterStats }
  | { type: 'log', level: 'debug' | 'info' | 'warn' | 'error', msg: string, err?: ErrorSummary }

/** The answer to a `query` request: what kysely's QueryResult needs. */
export interface QueryReply {
  rows: unknown[]
  numAffectedRows?: string
}
