import { WorkTick } from '../work-tick.js'
import { MAX_IP_LENGTH, copyPrefix, createRecordBatch, stringBytes, trimRecordBatch, type LastSeen, type RecordBatch } from '../protocol.js'

/** Rows per batch handed to the writer's thread; big enough to amortise `postMessage`, small enough to stay in cache. */
export const DEFAULT_COLLECTOR_CAPACITY = 1024

export type BatchSink = (batch: RecordBatch | undefined, lastSeen: LastSeen | undefined) => void

/**
 * The request thread's only per-request work: write a few numbers into typed-array columns.
 * Strings (group-by value, IP) are interned per batch. Full batches go to the writer at once,
 * partial ones on an unref'd timer that a batch's first row arms. Memory held here is one batch.
 *
 * ### Examples
 * ```ts
 * const collector = new Collector((batch, lastSeen) => storage.send(batch, lastSeen), 250)
 * collector.record(endpointIndex, Date.now(), 12.5, 200, null, '127.0.0.1')
 * ```
 */
export class Collector {
  readonly #sink: BatchSink
  readonly #capacity: number
  #batch: RecordBatch
  #strings = new Map<string, number>()
  #lastSeen = new Map<number, number>()
  /** The IP interned last and its index: consecutive requests mostly come from one client (no hash lookup then). */
  #lastIp: string | undefined
  #lastIpIndex = -1
  /** Armed by a batch's first row (or last-seen time), so an idle app never wakes for the collector. */
  readonly #tick: WorkTick
  #seq = 0

  constructor (sink: BatchSink, flushIntervalMs: number, capacity = DEFAULT_COLLECTOR_CAPACITY) {
    this.#sink = sink
    this.#capacity = capacity
    this.#batch = createRecordBatch(capacity)
    // one flush hands over everything collected: nothing is left for another run
    this.#tick = new WorkTick(flushIntervalMs, () => { this.flush() }, () => false)
  }

  /** Records one request; returns its sequence number in this process. */
  record (endpoint: number, timeMs: number, durationMs: number, statusCode: number, group: string | null, ip: string | undefined): number {
    const batch = this.#batch
    const row = batch.length++
    if (row === 0) this.#tick.arm()
    const seq = ++this.#seq
    batch.seq[row] = seq
    batch.endpoint[row] = endpoint
    batch.timeMs[row] = timeMs
    batch.durationMs[row] = durationMs
    batch.statusCode[row] = statusCode
    batch.group[row] = group === null ? -1 : this.#intern(group)
    batch.ip[row] = ip === undefined ? -1 : ip === this.#lastIp ? this.#lastIpIndex : this.#internIp(ip)
    if (batch.length === this.#capacity) this.flush()
    return seq
  }

  /** A request to a level-0 endpoint: only its last-seen time is kept. */
  seen (endpoint: number, timeMs: number): void {
    this.#lastSeen.set(endpoint, timeMs)
    this.#tick.arm()
  }

  #internIp (ip: string): number {
    this.#lastIp = ip
    // cut here, not in the writer: a buffered record must not hold a 15 KB header while the database is down
    this.#lastIpIndex = this.#intern(ip.length > MAX_IP_LENGTH ? copyPrefix(ip, MAX_IP_LENGTH) : ip)
    return this.#lastIpIndex
  }

  #intern (value: string): number {
    let index = this.#strings.get(value)
    if (index === undefined) {
      index = this.#batch.strings.push(value) - 1
      this.#batch.bytes += stringBytes(value)
      this.#strings.set(value, index)
    }
    return index
  }

  /** Hands whatever is collected to the writer now. */
  flush (): void {
    const batch = this.#batch.length > 0 ? trimRecordBatch(this.#batch) : undefined
    let lastSeen: LastSeen | undefined
    if (this.#lastSeen.size > 0) {
      lastSeen = { endpoint: [...this.#lastSeen.keys()], timeMs: [...this.#lastSeen.values()] }
      this.#lastSeen.clear()
    }
    if (batch === undefined && lastSeen === undefined) return
    if (batch !== undefined) {
      this.#batch = createRecordBatch(this.#capacity)
      this.#strings.clear()
      this.#lastIp = undefined
    }
    this.#sink(batch, lastSeen)
  }

  stop (): void {
    this.#tick.close()
    this.flush()
  }
}
