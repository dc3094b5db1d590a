import { randomUUID } from 'node:crypto'
import { MAX_GROUP_LENGTH } from '../group-by.js'
import { MAX_IP_LENGTH, ROW_BYTES, emptyWriterStats, stringBytes, summarizeError, type ErrorSummary, type LastSeen, type RecordBatch, type WriterStats } from '../protocol.js'
import { MISSING_PARTITION_SQLSTATE, isPermanentError } from './errors.js'
import type { WriteUnit } from './store.js'
import { timeSpan } from '../time.js'

/** Attempts at a unit the database rejects as bad data before it is dropped. */
const MAX_PERMANENT_ATTEMPTS = 3
const RETRY_BASE_DELAY_MS = 50
/**
 * A partial unit with fewer rows than this per endpoint it touches is sparse: the rollups cost PostgreSQL
 * upserts per unit and endpoint, so such a unit waits longer to fill ({@link SPARSE_LINGER_FACTOR}).
 */
export const SPARSE_ROWS_PER_ENDPOINT = 4
/** How many times `lingerMs` a sparse unit may wait. */
export const SPARSE_LINGER_FACTOR = 4
/** Postgres refuses NUL in text; it is the one character that would make a whole batch fail. */
const NUL = /\u0000/g


/** What the writer needs from the database (or the collector) and the rest of the worker. */
export interface WriterSink {
  /** Where units go, as log lines name it: `the database`, `the collector`. */
  target: string
  /** Database id of an endpoint index and its level, or undefined while unknown. */
  resolveEndpoint: (index: number) => { id: number, level: number } | undefined
  /** Writes a unit (idempotent per unit id); an error with `permanent: true` (or a data SQLSTATE) is not worth retrying. */
  write: (unit: WriteUnit) => Promise<void>
  /** Makes the partitions for these UTC days. */
  ensurePartitions: (fromMs: number, toMs: number, force: boolean) => Promise<void>
  /** Moves `last_requested` of endpoints (by database id) forward. */
  touch: (lastSeen: Map<number, number>) => Promise<void>
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, err?: ErrorSummary) => void
  onStats: (stats: WriterStats) => void
}

interface QueuedBatch {
  batch: RecordBatch
  start: number
  enqueuedAtMs: number
  /**
   * The batch's strings as stored (cut, NUL replaced), by index, made when a row first uses them: a batch interns
   * each string once, so its rows share a few (one IP per client), and each is checked once instead of per row.
   */
  groupText?: Array<string | null>
  ipText?: Array<string | null>
}

/** A string as a text column stores it: cut to `max` code units, NUL (which PostgreSQL refuses in text) as U+FFFD. */
export function storableText (value: string | undefined, max: number): string | null {
  if (value === undefined) return null
  const cut = value.length > max ? value.slice(0, max) : value
  return cut.includes('\u0000') ? cut.replace(NUL, '\uFFFD') : cut
}

/**
 * Holds recorded requests until the database has them. Bounded: past `maxBufferedRecords` the
 * oldest are dropped and counted. One write in flight; a failed unit keeps its id and is retried
 * first, with exponential backoff while the database is unreachable, so order and exactly-once hold.
 *
 * ### Examples
 * ```ts
 * const writer = new Writer(sink, { maxBufferedRecords: 200_000, maxBatchSize: 5000, … })
 * writer.enqueue(batch)
 * await writer.drain()
 * ```
 */
export class Writer {
  readonly #sink: WriterSink
  readonly #maxBuffered: number
  readonly #maxBatchSize: number
  readonly #retryMaxDelayMs: number
  readonly #lingerMs: number
  readonly #queue: QueuedBatch[] = []
  /** The unit being written or waiting to be retried; always older than anything in the queue. */
  #unit: WriteUnit | undefined
  #queuedRows = 0
  /** Memory of the queued batches (each held whole until its last row leaves) and of the unit. */
  #queuedBytes = 0
  #unitBytes = 0
  readonly #maxBufferedBytes: number
  #lastSeen = new Map<number, number>()
  #pendingLastSeen: Array<{ index: number, timeMs: number }> = []
  #running = false
  #retryDelayMs = RETRY_BASE_DELAY_MS
  #retryTimer: NodeJS.Timeout | undefined
  #droppingSince = -1
  #drainWaiters: Array<() => void> = []
  /** Per endpoint index, the last count that met it: {@link Writer.#queuedEndpoints} counts without a Set. */
  readonly #endpointMarks: number[] = []
  #marksEpoch = 0
  readonly stats: WriterStats = emptyWriterStats()

  /**
   * `lingerMs`: how long rows may wait for a unit to fill. A unit of `maxBatchSize` rows goes at once, a
   * smaller one when its oldest rows have waited this long (or on `drain`): each write then carries as
   * many rows as came in meanwhile, and the rollups, upserted once per unit and endpoint, cost PostgreSQL
   * less per row. A unit spread thin, with fewer than {@link SPARSE_ROWS_PER_ENDPOINT} rows per endpoint
   * (an app with many routes and moderate traffic), waits up to {@link SPARSE_LINGER_FACTOR} times as long:
   * at 1,000 rows a second over 300 endpoints PostgreSQL spent 47 µs per row with 250-ms units and 21 with
   * 1-s ones (`bench:writer`). 0 (the default): whatever is queued is written on every `kick`.
   */
  constructor (sink: WriterSink, opts: { maxBufferedRecords: number, maxBufferedBytes?: number, maxBatchSize: number, retryMaxDelayMs: number, lingerMs?: number }) {
    this.#sink = sink
    this.#maxBuffered = opts.maxBufferedRecords
    this.#maxBufferedBytes = opts.maxBufferedBytes ?? Number.POSITIVE_INFINITY
    this.#maxBatchSize = opts.maxBatchSize
    this.#retryMaxDelayMs = opts.retryMaxDelayMs
    this.#lingerMs = opts.lingerMs ?? 0
  }

  get buffered (): number {
    return this.#queuedRows + (this.#unit?.endpointId.length ?? 0)
  }

  get bufferedBytes (): number {
    return this.#queuedBytes + (this.#unit === undefined ? 0 : this.#unitBytes)
  }

  enqueue (batch: RecordBatch): void {
    if (batch.length > 0) {
      this.#queue.push({ batch, start: 0, enqueuedAtMs: performance.now() })
      this.#queuedRows += batch.length
      this.#queuedBytes += batch.bytes ?? batch.length * ROW_BYTES
      this.#enforceBound()
    }
  }

  /**
   * What the request thread handed over: rows, and last-seen times of level-0 endpoints. A full statement's
   * worth is written now; smaller amounts wait for the flush tick, so each write carries up to maxBatchSize
   * rows (fewer statements, less CPU per row here and in PostgreSQL).
   */
  accept (batch: RecordBatch | undefined, lastSeen: LastSeen | undefined): void {
    if (batch !== undefined) this.enqueue(batch)
    if (lastSeen !== undefined) this.touch(lastSeen.endpoint, lastSeen.timeMs)
    if (this.buffered >= this.#maxBatchSize) this.kick()
  }

  /** Level-0 endpoints only get their last-seen time moved. */
  touch (endpoint: number[], timeMs: number[]): void {
    for (let i = 0; i < endpoint.length; i++) this.#pendingLastSeen.push({ index: endpoint[i]!, timeMs: timeMs[i]! })
  }

  /** Writes whatever can be written now; called on every flush tick and after the database returns. */
  kick (): void {
    if (this.#running || this.#retryTimer !== undefined) return
    this.#running = true
    this.#run().catch((err) => {
      // #run handles database errors itself: reaching here is a bug, which must not stop the writer
      this.#sink.log('error', 'fastify-monitoring-dashboard: writer loop failed', summarizeError(err))
    }).finally(() => {
      this.#running = false
      this.#publish()
      if (this.idle) this.#resolveDrained()
    })
  }

  /** Resolves once everything enqueued so far is written (or dropped). */
  async drain (): Promise<void> {
    if (this.idle) return
    await new Promise<void>((resolve) => {
      this.#drainWaiters.push(resolve)
      this.kick()
    })
  }

  /** Stops retrying and counts what is still buffered as dropped. */
  abandon (): number {
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    const lost = this.buffered
    this.stats.dropped += lost
    this.#unit = undefined
    this.#queue.length = 0
    this.#queuedRows = 0
    this.#queuedBytes = 0
    this.#publish()
    this.#resolveDrained()
    return lost
  }

  /** Whether the queue is worth a write now (see `lingerMs`); a `drain` waits for everything. */
  #unitDue (): boolean {
    const oldest = this.#queue[0]
    if (oldest === undefined) return false
    if (this.#queuedRows >= this.#maxBatchSize || this.#drainWaiters.length > 0) return true
    const waitedMs = performance.now() - oldest.enqueuedAtMs
    if (waitedMs < this.#lingerMs) return false
    return waitedMs >= this.#lingerMs * SPARSE_LINGER_FACTOR || this.#queuedRows >= SPARSE_ROWS_PER_ENDPOINT * this.#queuedEndpoints()
  }

  /** How many endpoints the queued rows touch (fewer than `maxBatchSize` rows when asked: a partial unit). */
  #queuedEndpoints (): number {
    const marks = this.#endpointMarks
    const epoch = ++this.#marksEpoch
    let endpoints = 0
    for (const { batch, start } of this.#queue) {
      for (let row = start; row < batch.length; row++) {
        const index = batch.endpoint[row]!
        if (marks[index] !== epoch) {
          marks[index] = epoch
          endpoints++
        }
      }
    }
    return endpoints
  }

  /** Nothing buffered, nothing to touch, nothing being written. */
  get idle (): boolean {
    return this.buffered === 0 && this.#lastSeen.size === 0 && this.#pendingLastSeen.length === 0 && !this.#running
  }

  #resolveDrained (): void {
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const resolve of waiters) resolve()
  }

  async #run (): Promise<void> {
    this.#resolvePendingLastSeen()
    while (true) {
      if (this.#unit === undefined && !this.#unitDue()) break
      this.#unit ??= this.#takeUnit()
      if (this.#unit === undefined) break
      if (!await this.#attempt(this.#unit)) return
    }
    if (this.#lastSeen.size > 0) {
      const lastSeen = this.#lastSeen
      this.#lastSeen = new Map()
      try {
        await this.#sink.touch(lastSeen)
      } catch (err) {
        for (const [id, time] of lastSeen) this.#lastSeen.set(id, Math.max(time, this.#lastSeen.get(id) ?? 0))
        this.#failed(err)
      }
    }
  }

  /** One try at writing a unit; false when the loop must stop and wait for a retry. */
  async #attempt (unit: WriteUnit): Promise<boolean> {
    const started = performance.now()
    try {
      const { firstMs, lastMs } = timeSpan(unit.timeMs)
      await this.#sink.ensurePartitions(firstMs, lastMs, unit.attempts > 0)
      await this.#sink.write(unit)
    } catch (err) {
      unit.attempts++
      if (isPermanentError(err) && unit.attempts >= MAX_PERMANENT_ATTEMPTS) {
        this.stats.writeErrors++
        this.stats.dropped += unit.endpointId.length
        this.#unit = undefined
        this.#sink.log('error', `fastify-monitoring-dashboard: ${this.#sink.target} rejected a batch ${unit.attempts} times; dropped its ${unit.endpointId.length} records`, summarizeError(err))
        return true
      }
      this.#failed(err)
      return false
    }
    this.stats.lastBatchDurationMs = performance.now() - started
    this.stats.batchesWritten++
    this.stats.written += unit.endpointId.length
    // by runs of one endpoint (a busy one's requests follow each other): a Map access per run, not per row
    for (let i = 0; i < unit.endpointId.length;) {
      const id = unit.endpointId[i]!
      let latest = unit.timeMs[i]!
      for (i++; i < unit.endpointId.length && unit.endpointId[i] === id; i++) if (unit.timeMs[i]! > latest) latest = unit.timeMs[i]!
      if (latest > (this.#lastSeen.get(id) ?? 0)) this.#lastSeen.set(id, latest)
    }
    this.#unit = undefined
    this.markUp()
    this.#retryDelayMs = RETRY_BASE_DELAY_MS
    this.#publish()
    return true
  }

  #failed (err: unknown): void {
    this.stats.writeErrors++
    const summary = summarizeError(err)
    if (this.stats.databaseUp || this.stats.writeErrors === 1) {
      this.#sink.log('warn', `fastify-monitoring-dashboard: cannot write to ${this.#sink.target}, buffering up to ${this.#maxBuffered} records and retrying`, summary)
    } else {
      this.#sink.log('debug', 'fastify-monitoring-dashboard: write retry failed', summary)
    }
    if (summary.code !== MISSING_PARTITION_SQLSTATE) this.stats.databaseUp = false
    this.#publish()
    // jittered (half to all of the delay): processes that lost the same database or collector do not all
    // come back to it in the same millisecond
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.kick()
    }, this.#retryDelayMs * (0.5 + Math.random() / 2))
    this.#retryTimer.unref()
    this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, this.#retryMaxDelayMs)
  }

  #resolvePendingLastSeen (): void {
    const pending = this.#pendingLastSeen
    this.#pendingLastSeen = []
    for (const entry of pending) {
      const endpoint = this.#sink.resolveEndpoint(entry.index)
      if (endpoint === undefined) this.#pendingLastSeen.push(entry)
      else if (entry.timeMs > (this.#lastSeen.get(endpoint.id) ?? 0)) this.#lastSeen.set(endpoint.id, entry.timeMs)
    }
  }

  /**
   * Copies up to maxBatchSize of the oldest rows into one unit. Rows of endpoints whose stored
   * level is 0 only move last-seen; rows of endpoints not yet registered wait in the queue.
   */
  #takeUnit (): WriteUnit | undefined {
    // sized for the most rows it can take, trimmed at the end: arrays grown by push copy their elements as they grow
    const capacity = Math.min(this.#maxBatchSize, this.#queuedRows)
    const unit: WriteUnit = {
      id: randomUUID(),
      endpointId: new Array<number>(capacity),
      timeMs: new Array<number>(capacity),
      durationMs: new Array<number>(capacity),
      statusCode: new Array<number>(capacity),
      seq: new Array<number>(capacity),
      group: new Array<string | null>(capacity),
      ip: new Array<string | null>(capacity),
      attempts: 0
    }
    let n = 0
    let unitBytes = 0
    while (this.#queue.length > 0) {
      const queued = this.#queue[0]!
      const { batch } = queued
      const groupText = queued.groupText ??= []
      const ipText = queued.ipText ??= []
      while (queued.start < batch.length && n < capacity) {
        const row = queued.start
        const endpoint = this.#sink.resolveEndpoint(batch.endpoint[row]!)
        if (endpoint === undefined) break
        queued.start++
        this.#queuedRows--
        const timeMs = batch.timeMs[row]!
        if (endpoint.level === 0) {
          if (timeMs > (this.#lastSeen.get(endpoint.id) ?? 0)) this.#lastSeen.set(endpoint.id, timeMs)
          continue
        }
        const group = batch.group[row]!
        const ip = batch.ip[row]!
        const groupValue = group < 0 ? null : (groupText[group] ??= storableText(batch.strings[group], MAX_GROUP_LENGTH))
        const ipValue = ip < 0 ? null : (ipText[ip] ??= storableText(batch.strings[ip], MAX_IP_LENGTH))
        unit.endpointId[n] = endpoint.id
        unit.timeMs[n] = timeMs
        unit.durationMs[n] = batch.durationMs[row]!
        unit.statusCode[n] = batch.statusCode[row]!
        unit.seq[n] = batch.seq[row]!
        unit.group[n] = groupValue
        unit.ip[n] = ipValue
        n++
        unitBytes += ROW_BYTES + (groupValue === null ? 0 : stringBytes(groupValue)) + (ipValue === null ? 0 : stringBytes(ipValue))
      }
      if (queued.start < batch.length) break
      this.#shift()
      if (n === capacity) break
    }
    if (n === 0) return undefined
    for (const column of [unit.endpointId, unit.timeMs, unit.durationMs, unit.statusCode, unit.seq, unit.group, unit.ip]) column.length = n
    this.#unitBytes = unitBytes
    return unit
  }

  /** The oldest queued batch leaves the queue: its memory is free. */
  #shift (): void {
    const queued = this.#queue.shift()
    if (queued !== undefined) this.#queuedBytes -= queued.batch.bytes ?? queued.batch.length * ROW_BYTES
  }

  /**
   * Drops the oldest rows while more than maxBufferedRecords are held, and the oldest queued batches
   * while they hold more than maxBufferedBytes (strings are cut when recorded, so bytes per row are bounded).
   */
  #enforceBound (): void {
    let excess = this.buffered - this.#maxBuffered
    if (excess <= 0 && this.bufferedBytes <= this.#maxBufferedBytes) {
      if (this.#droppingSince >= 0) {
        this.#sink.log('warn', `fastify-monitoring-dashboard: buffer has room again; ${this.stats.dropped - this.#droppingSince} records were dropped`)
        this.#droppingSince = -1
      }
      return
    }
    if (this.#droppingSince < 0) {
      this.#droppingSince = this.stats.dropped
      this.#sink.log('warn', `fastify-monitoring-dashboard: buffer full (${this.#maxBuffered} records or ${this.#maxBufferedBytes} bytes); dropping the oldest`)
    }
    const before = this.buffered
    // the unit waiting for a retry holds the oldest rows; a unit being written now is left alone
    if (excess > 0 && this.#unit !== undefined && !this.#running) {
      const cut = Math.min(excess, this.#unit.endpointId.length)
      const unit = this.#unit
      this.#unitBytes = Math.round(this.#unitBytes * (unit.endpointId.length - cut) / unit.endpointId.length)
      for (const column of [unit.endpointId, unit.timeMs, unit.durationMs, unit.statusCode, unit.seq, unit.group, unit.ip]) {
        column.splice(0, cut)
      }
      excess -= cut
      if (this.#unit.endpointId.length === 0) this.#unit = undefined
    }
    while (excess > 0 && this.#queue.length > 0) {
      const queued = this.#queue[0]!
      const cut = Math.min(excess, queued.batch.length - queued.start)
      queued.start += cut
      this.#queuedRows -= cut
      excess -= cut
      if (queued.start >= queued.batch.length) this.#shift()
    }
    while (this.bufferedBytes > this.#maxBufferedBytes && this.#queue.length > 0) {
      const queued = this.#queue[0]!
      this.#queuedRows -= queued.batch.length - queued.start
      this.#shift()
    }
    // rows of a unit being written cannot be taken back: the excess waits for that write to end
    this.stats.dropped += before - this.buffered
    this.#publish()
  }

  /** The target answers after an outage (a write, or a sender's poll, went through): said once, with what still waits. */
  markUp (): void {
    if (this.stats.databaseUp) return
    this.stats.databaseUp = true
    this.#sink.log('info', `fastify-monitoring-dashboard: ${this.#sink.target} answers again; ${this.buffered} records still buffered`)
    this.#publish()
  }

  #publish (): void {
    this.stats.buffered = this.buffered
    this.stats.bufferedBytes = this.bufferedBytes
    this.#sink.onStats(this.stats)
  }
}
