/**
 * The writer's thread of a service that sends to a collector (`remote`) instead of writing to a database.
 * The same {@link Writer} holds the records (bounded, drops counted, one unit in flight, retried with
 * backoff under its id so the collector stores it once); its sink posts to the collector's ingest route.
 * The endpoints' levels come back in every answer, and from a poll every `levelPollIntervalMs`, which also
 * registers endpoints not requested yet: levels an admin sets in the collector's dashboard reach the service.
 * Outliers and call trees (levels 2 and 3) go in batches of their own, each stored once as the rows are.
 *
 * ### Examples
 * ```ts
 * const thread = new SenderThread(init, (message) => port.postMessage(message))
 * port.on('message', (message) => answer(thread, message, send))
 * thread.start()
 * ```
 */
import { INGEST_BODY_LIMIT, MAX_INGEST_DIAGNOSTICS, MAX_INGEST_ENDPOINTS, summarizeError, type EndpointKey, type FromWorker, type IngestResult, type ToWorker, type WorkerInit } from '../protocol.js'
import type { ResolvedRemote } from '../options.js'
import { PendingDiagnostics, type DiagnosticsPart } from './diagnostics.js'
import { CollectorError, IngestSender, type OutgoingBatch } from './sender.js'
import { Writer } from './writer.js'
import { WorkTick } from '../work-tick.js'
import type { ThreadHandler } from './worker.js'

/** The first wait after a failed poll; it doubles up to `retryMaxDelayMs`, as the writer's retries do. */
const POLL_RETRY_BASE_MS = 1_000

export class SenderThread implements ThreadHandler {
  readonly #options: WorkerInit['options']
  readonly #send: (message: FromWorker) => void
  readonly #sender: IngestSender
  readonly #writer: Writer
  /** The main thread's endpoints by index. */
  #keys: Array<EndpointKey | undefined> = []
  /** The collector's level of each endpoint, by index, once it answered. */
  readonly #levels: number[] = []
  #pendingEndpointReplies: number[] = []
  #registered = false
  #ready = false
  #polling = false
  /** After a failed poll, none is sent before this time (backoff with jitter). */
  #pollAfterMs = 0
  #pollRetryMs = POLL_RETRY_BASE_MS
  readonly #timers: NodeJS.Timeout[] = []
  /** Writes what the main thread handed over (rows, outliers), every flushIntervalMs while any waits. */
  readonly #tick: WorkTick
  readonly #diagnostics = new PendingDiagnostics()
  /** Diagnostics sent and not yet answered: sent again under the same batch id until they are. */
  #diagnosticsInFlight: { part: DiagnosticsPart, batch: OutgoingBatch } | undefined
  #sendingDiagnostics = false

  constructor (init: WorkerInit, send: (message: FromWorker) => void) {
    this.#options = init.options
    this.#send = send
    const remote = init.options.remote as ResolvedRemote
    this.#sender = new IngestSender(remote, { version: init.options.appVersion, instanceToken: init.instanceToken })
    this.#writer = new Writer({
      target: 'the collector',
      // a sender has no database ids: rows carry the endpoint's index, and the collector applies its level
      resolveEndpoint: (index) => this.#keys[index] === undefined ? undefined : { id: index, level: this.#levels[index] ?? 1 },
      write: async (unit) => {
        for (const batch of this.#sender.batches(unit, this.#keys)) this.#applyLevels(batch, await this.#sender.post(batch))
        this.#markReady()
      },
      ensurePartitions: async () => {},
      touch: async (lastSeen) => {
        const keys = [...lastSeen.keys()].map((index) => this.#keys[index]!)
        for (const batch of this.#sender.polls(keys, lastSeen)) this.#applyLevels(batch, await this.#sender.post(batch))
      },
      log: (level, msg, err) => this.#send({ type: 'log', level, msg, err }),
      onStats: (stats) => send({ type: 'stats', stats: { ...stats } })
    // rows wait for a fuller post as the writer thread's wait for a fuller unit: the collector writes each
    // post as one unit, its rollups upserted per endpoint
    }, { ...init.options, lingerMs: init.options.flushIntervalMs })
    this.#tick = new WorkTick(init.options.flushIntervalMs, async () => { this.#writer.kick(); await this.#sendDiagnostics() },
      () => !this.#writer.idle || !this.#diagnostics.empty)
  }

  start (): void {
    this.#timers.push(setInterval(() => { this.#poll().catch(() => {}) }, this.#options.levelPollIntervalMs))
    for (const timer of this.#timers) timer.unref()
  }

  async handle (message: ToWorker): Promise<unknown> {
    switch (message.type) {
      case 'records':
        this.#writer.accept(message.batch, message.lastSeen)
        this.#tick.arm()
        return undefined
      case 'endpoints':
        this.#keys = []
        for (const key of message.endpoints) this.#keys[key.index] = key
        this.#pendingEndpointReplies.push(message.id)
        this.#registered = false
        await this.#register()
        return undefined
      case 'flush':
        await this.#writer.drain()
        await this.#sendDiagnostics()
        return undefined
      case 'close': {
        for (const timer of this.#timers) clearInterval(timer)
        this.#tick.close()
        // the main thread logs what is lost, once
        return this.#writer.abandon()
      }
      case 'outliers':
        this.#diagnostics.add(message)
        this.#tick.arm()
        return undefined
      case 'setLevel':
      case 'query':
      case 'groupedProfile':
      case 'ingest':
        throw new Error(`no database in this process: it sends its records to the collector (remote), whose dashboard and database have them (${message.type})`)
    }
  }

  /**
   * Sends what levels 2 and 3 found, in batches up to half the ingest route's body limit, while the
   * collector answers (during an outage the writer and the poll find out when it is back). A batch that
   * failed is sent again under its id; one the collector refuses as wrong is dropped, its outliers counted.
   */
  async #sendDiagnostics (): Promise<void> {
    if (this.#sendingDiagnostics || !this.#writer.stats.databaseUp) return
    this.#sendingDiagnostics = true
    try {
      for (;;) {
        if (this.#diagnosticsInFlight === undefined) {
          if (this.#diagnostics.empty) return
          const part = this.#diagnostics.take((index) => this.#keys[index] !== undefined,
            { maxItems: MAX_INGEST_DIAGNOSTICS, maxEndpoints: MAX_INGEST_ENDPOINTS, maxBytes: INGEST_BODY_LIMIT / 2, sizeOf: (item) => JSON.stringify(item).length })
          if (part.outliers.length === 0 && part.overflow.length === 0 && part.profiles.length === 0) return
          this.#diagnosticsInFlight = { part, batch: this.#sender.diagnostics(part, this.#keys, this.#diagnostics.keepPerHour) }
        }
        const { part, batch } = this.#diagnosticsInFlight
        try {
          this.#applyLevels(batch, await this.#sender.post(batch))
        } catch (err) {
          if (!(err instanceof CollectorError && err.permanent)) {
            this.#send({ type: 'log', level: 'debug', msg: 'fastify-monitoring-dashboard: sending outliers failed; will retry', err: summarizeError(err) })
            return
          }
          this.#diagnostics.drop(part)
          this.#writer.stats.writeErrors++
          this.#send({ type: 'log', level: 'error', msg: `fastify-monitoring-dashboard: the collector refused ${part.outliers.length} outliers and ${part.profiles.length} call trees; they are dropped (still counted as found)`, err: summarizeError(err) })
        }
        this.#diagnosticsInFlight = undefined
      }
    } finally {
      this.#sendingDiagnostics = false
    }
  }

  /** Registers every endpoint with the collector and learns their levels; retried (with backoff) until it answers. */
  async #register (): Promise<void> {
    if (await this.#poll()) return
    setTimeout(() => { if (!this.#registered) this.#register().catch(() => {}) }, Math.max(this.#pollAfterMs - Date.now(), 0) + 10).unref()
  }

  /** Sends every endpoint, for the collector to register and answer its level; true when it answered. */
  async #poll (): Promise<boolean> {
    const keys = this.#keys.filter((key) => key !== undefined)
    if (this.#polling || keys.length === 0 || Date.now() < this.#pollAfterMs) return false
    this.#polling = true
    try {
      for (const batch of this.#sender.polls(keys)) this.#applyLevels(batch, await this.#sender.post(batch))
    } catch (err) {
      // counted and logged as the writer counts and logs a failed send (whichever comes first logs, once
      // per outage), so an app without traffic still says why nothing arrives
      const { stats } = this.#writer
      stats.writeErrors++
      const level = stats.databaseUp || stats.writeErrors === 1 ? 'warn' : 'debug'
      stats.databaseUp = false
      this.#send({ type: 'stats', stats: { ...stats } })
      this.#send({ type: 'log', level, msg: 'fastify-monitoring-dashboard: cannot send to the collector; records are buffered and sent when it takes them', err: summarizeError(err) })
      this.#pollAfterMs = Date.now() + this.#pollRetryMs * (0.5 + Math.random() / 2)
      this.#pollRetryMs = Math.min(this.#pollRetryMs * 2, this.#options.retryMaxDelayMs)
      return false
    } finally {
      this.#polling = false
    }
    this.#registered = true
    this.#pollRetryMs = POLL_RETRY_BASE_MS
    for (const id of this.#pendingEndpointReplies) this.#send({ type: 'reply', id })
    this.#pendingEndpointReplies = []
    if (this.#ready) this.#writer.markUp()
    this.#markReady()
    this.#writer.kick()
    return true
  }

  /** The collector answered for the first time: the main thread learns that records can flow. */
  #markReady (): void {
    if (this.#ready) return
    this.#ready = true
    this.#writer.stats.databaseUp = true
    // stats first: whoever awaits `ready` then sees the collector as up
    this.#send({ type: 'stats', stats: { ...this.#writer.stats } })
    this.#send({ type: 'ready', databaseKind: 'remote' })
    if (this.#writer.stats.writeErrors > 0) this.#send({ type: 'log', level: 'info', msg: 'fastify-monitoring-dashboard: the collector answers now' })
  }

  /** The levels the collector answered, in the order of the batch's endpoints; changes go to the main thread. */
  #applyLevels ({ indexes }: OutgoingBatch, result: IngestResult): void {
    const changed: Array<[number, number]> = []
    indexes.forEach((index, position) => {
      const level = result.levels[position]?.level
      if (level === undefined || this.#levels[index] === level) return
      this.#levels[index] = level
      changed.push([index, level])
    })
    if (changed.length > 0) this.#send({ type: 'levels', levels: changed })
  }
}
