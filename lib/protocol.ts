/**
 * What crosses between the request thread and the writer's thread: record batches (typed-array
 * columns, transferred without copying), the messages both ways, the writer's counters, and errors
 * summarised as plain objects. Both threads import this module; nothing here touches a database.
 */
import type { PgliteAssets } from './db/pglite-assets.js'
import type { StorageOptions } from './options.js'
import { HOUR_MS } from './time.js'

/**
 * Requests recorded on the main thread, column by column, as they travel to the writer's thread.
 * Typed arrays move without copying (transferred); the group-by and IP strings are stored once
 * per batch in `strings` and referenced by index, so a repeated IP is cloned once.
 */
export interface RecordBatch {
  length: number
  /** Index of the endpoint in the main thread's endpoint list (not the database id). */
  endpoint: Int32Array
  timeMs: Float64Array
  durationMs: Float64Array
  statusCode: Uint16Array
  /** The request's number in this process (1, 2, …): with the process's token it names the request in exemplars. */
  seq: Float64Array
  /** Index into `strings`, or -1 for none. */
  group: Int32Array
  ip: Int32Array
  strings: string[]
  /** Memory the batch holds (its columns and strings): what the writer's byte bound counts. */
  bytes: number
}

/** Longest client IP kept: longer ones (a hostile `X-Forwarded-For` with `trustProxy`) are cut when the request is recorded. */
export const MAX_IP_LENGTH = 64
/** Bytes of one row in a batch's columns (endpoint, time, duration, status, seq, group, ip). */
export const ROW_BYTES = 4 + 8 + 8 + 2 + 8 + 4 + 4
/** Memory of a string as counted by the byte bound: its UTF-16 code units and V8's header. */
export function stringBytes (value: string): number {
  return 16 + 2 * value.length
}

/**
 * The first `max` code units of `value`, as a string of its own: V8's `slice` of a long string keeps the
 * whole original alive (a sliced string), which would defeat the cap for a 15 KB header.
 */
export function copyPrefix (value: string, max: number): string {
  if (value.length <= max) return value
  const codes = new Array<number>(max)
  for (let i = 0; i < max; i++) codes[i] = value.charCodeAt(i)
  return String.fromCharCode(...codes)
}

/** Last time each level-0 endpoint was requested: pairs of endpoint index and time in ms. */
export interface LastSeen {
  endpoint: number[]
  timeMs: number[]
}

/** An endpoint as the main thread knows it. */
export interface EndpointKey {
  index: number
  method: string
  route: string
}

export function createRecordBatch (capacity: number): RecordBatch {
  return {
    length: 0,
    endpoint: new Int32Array(capacity),
    timeMs: new Float64Array(capacity),
    durationMs: new Float64Array(capacity),
    statusCode: new Uint16Array(capacity),
    seq: new Float64Array(capacity),
    group: new Int32Array(capacity),
    ip: new Int32Array(capacity),
    strings: [],
    bytes: capacity * ROW_BYTES
  }
}

/**
 * The batch with its columns cut to its length (copied), so a partial batch handed over while the database
 * is down does not hold a full batch's memory for a few rows.
 */
export function trimRecordBatch (batch: RecordBatch): RecordBatch {
  const n = batch.length
  if (n === batch.endpoint.length) return batch
  let bytes = n * ROW_BYTES
  for (const value of batch.strings) bytes += stringBytes(value)
  return {
    length: n,
    endpoint: batch.endpoint.slice(0, n),
    timeMs: batch.timeMs.slice(0, n),
    durationMs: batch.durationMs.slice(0, n),
    statusCode: batch.statusCode.slice(0, n),
    seq: batch.seq.slice(0, n),
    group: batch.group.slice(0, n),
    ip: batch.ip.slice(0, n),
    strings: batch.strings,
    bytes
  }
}

/** The buffers to transfer with `postMessage`. */
export function transferList (batch: RecordBatch): ArrayBuffer[] {
  return [batch.endpoint, batch.timeMs, batch.durationMs, batch.statusCode, batch.seq, batch.group, batch.ip]
    .map((column) => column.buffer as ArrayBuffer)
}

/** Counters the writer keeps; the main thread exports them as metrics. */
export interface WriterStats {
  buffered: number
  /** Memory the buffered records hold (see `maxBufferedBytes`). */
  bufferedBytes: number
  written: number
  dropped: number
  writeErrors: number
  databaseUp: boolean
  lastBatchDurationMs: number
  batchesWritten: number
}

/** Counters before anything was written. */
export function emptyWriterStats (): WriterStats {
  return { buffered: 0, bufferedBytes: 0, written: 0, dropped: 0, writeErrors: 0, databaseUp: false, lastBatchDurationMs: 0, batchesWritten: 0 }
}

export interface ErrorSummary {
  message: string
  code?: string
  stack?: string
}

/** Plain copy of an error that can cross threads and be logged. */
export function summarizeError (err: unknown): ErrorSummary {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { message: err.message, code: typeof code === 'string' ? code : undefined, stack: err.stack }
  }
  return { message: String(err) }
}

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

/** A project's name: what the dashboard's picker shows, the `project` option, an ingest batch's `project`. */
export const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
/** The project of an app's own endpoints unless its `project` option says otherwise (created by migration 0018, id 1). */
export const DEFAULT_PROJECT = 'default'

/** Requests in one ingest batch at most, as many as the plugin's own writer puts in one transaction by default, twice. */
export const MAX_INGEST_REQUESTS = 10_000
/** Endpoints one ingest batch may name (its requests refer to them by index). */
export const MAX_INGEST_ENDPOINTS = 1_000
/** An ingest body after decompression, at most: a full batch with long groups and routes is about 4 MB of JSON. */
export const INGEST_BODY_LIMIT = 8 * 1024 * 1024
/** Outliers, overflow counts or call trees in one ingest batch at most (each part): as many as a writer keeps waiting. */
export const MAX_INGEST_DIAGNOSTICS = 1_000

/**
 * A batch of requests another process sent to the ingest route (`POST <prefix>/api/ingest`), as the
 * route validated it: columns of equal length, endpoint indexes into `endpoints`. See the README's
 * ingest format, whose JSON schema (lib/routes/ingest.ts) this is the type of.
 */
export interface IngestBatch {
  /** The sender's id for this batch: a retried batch carries the same one and is stored once. */
  batch: string
  /**
   * The project the endpoints belong to. With a project's token it may be left out (or must be that
   * project); with the collector's ingest token it names any project, created if new; default `default`.
   */
  project?: string
  version: string
  /** The sending process: its host, pid and a token naming it across restarts of its writer. */
  instance: { host: string, pid: number, token: string }
  endpoints: Array<{ method: string, route: string }>
  requests: {
    endpoint: number[]
    /** Ms since the epoch (fractions kept to the µs). */
    time: number[]
    durationMs: number[]
    statusCode: number[]
    seq?: number[]
    group?: Array<string | null>
    ip?: Array<string | null>
  }
  /**
   * Endpoints at level 0 (whose requests are not kept) and the time of their latest request, which moves
   * their last-request time only. A batch may hold these and no request.
   */
  seen?: { endpoint: number[], time: number[] }
  /** Levels 2 and 3: what the sender found. A batch may hold these and no request. */
  diagnostics?: IngestDiagnostics
}

/**
 * Outliers (level 2) and call trees (level 3) in an ingest batch, as a sender's writer keeps them
 * (`OutlierRecord`, `ProfileRecord`) with `endpoint` an index into the batch's endpoints. Evidence is
 * redacted by the sender; the collector redacts it again by its own rules.
 */
export interface IngestDiagnostics {
  /** The sender's `outliers.maxPerEndpointHour`: the slowest kept per endpoint and UTC hour. */
  keepPerHour: number
  outliers: Array<Omit<OutlierRecord, 'endpointIndex' | 'timeMs'> & { endpoint: number, time: number }>
  /** Outliers found past the cap (not sent), counted per endpoint and UTC hour (`hour` in ms). */
  overflow: Array<{ endpoint: number, hour: number, count: number }>
  profiles: Array<Omit<ProfileRecord, 'endpointIndex' | 'timeMs'> & { endpoint: number, time: number }>
}

/** What the ingest route answers: whether the batch was new, and the level of each of its endpoints. */
export interface IngestResult {
  /** False: a batch with this id was stored before (a retry), nothing was written. */
  stored: boolean
  levels: Array<{ method: string, route: string, level: number }>
}

/** Where the records go: a PostgreSQL server, embedded PGlite, or a collector over HTTP (`remote`). */
export type StoreKind = 'postgres' | 'pglite' | 'remote'

/** What the main thread hands the writer's thread at start. */
export interface WorkerInit {
  options: StorageOptions
  /** This process's random token, stored with its instance row. */
  instanceToken: string
  /** When this process's storage was created (ms): its version is first seen then, whenever the database answers. */
  startedAtMs: number
  /** For PGlite: what an earlier database of this process left to start faster (see pglite-assets.ts). */
  pgliteAssets: PgliteAssets | undefined
}

/** Main thread → writer thread. Requests carry an id; the answer comes back as a `reply` with it. */
export type ToWorker =
  | { type: 'records', batch: RecordBatch | undefined, lastSeen: LastSeen | undefined }
  | { type: 'endpoints', id: number, endpoints: EndpointKey[] }
  /** An endpoint's level: one of this process's (by index) or any stored one (by database id, e.g. a sender's). */
  | { type: 'setLevel', id: number, endpoint: { index: number } | { endpointId: number }, level: number }
  | { type: 'query', id: number, sql: string, parameters: readonly unknown[] }
  | { type: 'outliers', outliers: OutlierRecord[], overflow: OutlierOverflow[], profiles: ProfileRecord[], keepPerHour: number }
  | { type: 'flush', id: number }
  | { type: 'close', id: number }
  /** Level 3: an endpoint's grouped profile, merged here where the call trees are (the answer is a `GroupedProfile`). */
  | { type: 'groupedProfile', id: number, endpointId: number, n: number, foldLibraries: boolean }
  /** A batch another process sent to the ingest route (the answer is an `IngestResult`). */
  | { type: 'ingest', id: number, batch: IngestBatch }

/** Writer thread → main thread. */
export type FromWorker =
  | { type: 'reply', id: number, result?: unknown, error?: ErrorSummary }
  | { type: 'ready', databaseKind: StoreKind }
  | { type: 'levels', levels: Array<[index: number, level: number]> }
  | { type: 'stats', stats: WriterStats }
  | { type: 'log', level: 'debug' | 'info' | 'warn' | 'error', msg: string, err?: ErrorSummary }
  | { type: 'pgliteAssets', assets: PgliteAssets }

/** The answer to a `query` request: what kysely's QueryResult needs. */
export interface QueryReply {
  rows: unknown[]
  numAffectedRows?: string
}
