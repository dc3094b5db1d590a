/**
 * Everything the writer's thread does, as a class: opens and migrates the database (retrying until it
 * answers), registers endpoints, writes batches through {@link Writer}, outliers and profiles, runs
 * maintenance, and answers the main thread's requests. It talks to the main thread only through
 * `send` and {@link WriterThread.handle}, so a test can drive it without a worker.
 *
 * ### Examples
 * ```ts
 * const thread = new WriterThread(init, (message) => port.postMessage(message))
 * port.on('message', (message) => answer(thread, message, send))
 * thread.start()
 * ```
 */
import { CompiledQuery, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { openDatabase, type OpenedDatabase } from '../db/dialect.js'
import { DEFAULT_PROJECT, MAX_IP_LENGTH, summarizeError, type EndpointKey, type FromWorker, type IngestBatch, type IngestResult, type QueryReply, type ToWorker, type WorkerInit } from '../protocol.js'
import { migrateToLatest } from '../db/migrate.js'
import { loadPgliteAssets } from '../db/pglite-assets.js'
import { PartitionManager, dayOf } from '../db/partitions.js'
import { isPermanentError } from './errors.js'
import { pruneBatchIds, pruneProfiles, readLevels, registerInstance, setLevel, touchEndpoints, upsertEndpoints, writeDiagnostics, writeUnit, type WriteUnit } from './store.js'
import { Writer, storableText } from './writer.js'
import { WorkTick } from '../work-tick.js'
import { SenderRegistry } from './sender-registry.js'
import { PendingDiagnostics } from './diagnostics.js'
import { HourFolds } from './hour-folds.js'
import type { ThreadHandler } from './worker.js'
import { MAX_GROUP_LENGTH } from '../group-by.js'
import { deleteOlderThan, vacuumForPglite } from '../db/retention.js'
import { groupedProfile } from '../queries/profiles.js'
import { ensureProject } from '../queries/projects.js'
import { DAY_MS, HOUR_MS, timeSpan } from '../time.js'

const STARTUP_RETRY_MAX_MS = 5_000
/** How often closed hours are folded into their days and months. */
const FOLD_INTERVAL_MS = 60_000
/** Call trees kept per endpoint: the grouped profile reads the latest of them. */
const PROFILES_KEPT_PER_ENDPOINT = 1_000

type Level = 'debug' | 'info' | 'warn' | 'error'

export class WriterThread implements ThreadHandler {
  readonly #options: WorkerInit['options']
  readonly #instanceToken: string
  readonly #startedAtMs: number
  readonly #pgliteAssets: WorkerInit['pgliteAssets']
  readonly #pglite: boolean
  readonly #inMemory: boolean
  readonly #send: (message: FromWorker) => void
  #opened: OpenedDatabase | undefined
  #ids: { versionId: number, instanceId: number, projectId: number } | undefined
  /** Project ids by name, for batches other processes send (a project is never renamed or removed). */
  readonly #projects = new Map<string, number>()
  /** What the database said about the senders' endpoints and instances, so a batch of known ones costs no statement for them. */
  readonly #senders: SenderRegistry
  #partitions: PartitionManager | undefined
  #closing = false
  /** Endpoints by main-thread index, once the database has them. */
  readonly #endpoints: Array<{ id: number, level: number } | undefined> = []
  #endpointKeys: EndpointKey[] = []
  #pendingEndpointReplies: number[] = []
  readonly #timers: NodeJS.Timeout[] = []
  /** Writes what the main thread handed over (rows, outliers), every flushIntervalMs while any waits. */
  readonly #tick: WorkTick
  readonly #diagnostics = new PendingDiagnostics()
  #writingOutliers = false
  readonly #writer: Writer
  readonly #folds = new HourFolds()
  #folding = false

  constructor (init: WorkerInit, send: (message: FromWorker) => void) {
    this.#options = init.options
    this.#instanceToken = init.instanceToken
    this.#startedAtMs = init.startedAtMs
    this.#pgliteAssets = init.pgliteAssets
    const { database } = init.options
    this.#pglite = database.kind === 'pglite'
    this.#inMemory = database.kind === 'pglite' && database.dataDir.startsWith('memory://')
    this.#send = send
    this.#senders = new SenderRegistry(init.options.levelPollIntervalMs)
    this.#writer = new Writer({
      target: 'the database',
      resolveEndpoint: (index) => this.#endpoints[index],
      write: async (unit) => { await writeUnit(this.#requireDb(), unit, this.#ids!.versionId, this.#ids!.instanceId, this.#opened?.copyTransaction, this.#unfolded) },
      ensurePartitions: async (fromMs, toMs, force) => {
        if (this.#partitions === undefined) throw new Error('database not ready')
        if (force) this.#partitions.reset()
        await this.#partitions.ensure(dayOf(fromMs), dayOf(toMs))
      },
      touch: async (lastSeen) => { await touchEndpoints(this.#requireDb(), lastSeen) },
      log: (level, msg, err) => this.#log(level, msg, err),
      onStats: (stats) => send({ type: 'stats', stats: { ...stats } })
    }, { ...init.options, lingerMs: init.options.flushIntervalMs })
    this.#tick = new WorkTick(init.options.flushIntervalMs, async () => { this.#writer.kick(); await this.#flushOutliers() },
      () => !this.#writer.idle || !this.#diagnostics.empty)
  }

  /** Starts the timers and opens the database (retrying in the background). */
  start (): void {
    const options = this.#options
    this.#timers.push(setInterval(() => { this.#pollLevels().catch(() => {}) }, options.levelPollIntervalMs))
    this.#timers.push(setInterval(() => { this.#foldHours() }, FOLD_INTERVAL_MS))
    // hourly; PGlite's vacuum too, but not at start, where it would only slow every new app down
    this.#timers.push(setInterval(() => this.#runMaintenance({ vacuum: this.#options.database.kind === 'pglite' }), HOUR_MS))
    for (const timer of this.#timers) timer.unref()
    this.#open().catch((err: unknown) => this.#log('error', 'fastify-monitoring-dashboard: writer failed to start', summarizeError(err)))
  }

  #log (level: Level, msg: string, err?: ReturnType<typeof summarizeError>): void {
    this.#send({ type: 'log', level, msg, err })
  }

  #requireDb (): Kysely<Database> {
    if (this.#opened === undefined || this.#ids === undefined) throw Object.assign(new Error('database not ready'), { code: 'ENOTREADY' })
    return this.#opened.db
  }

  /** Opens, migrates and registers, retrying with backoff until the database answers. */
  async #open (): Promise<void> {
    let delay = 100
    for (let attempt = 1; !this.#closing; attempt++) {
      try {
        // a PGlite starts from what an earlier one of this process left (see pglite-assets.ts)
        const assets = this.#pglite ? this.#pgliteAssets ?? await loadPgliteAssets(this.#options.tablePrefix) : undefined
        this.#opened ??= await openDatabase(this.#options, { assets })
        await migrateToLatest(this.#opened.rawDb, this.#options.tablePrefix)
        if (assets !== undefined && this.#inMemory && assets.snapshot === undefined && this.#opened.dumpDataDir !== undefined) {
          this.#send({ type: 'pgliteAssets', assets: { ...assets, snapshot: await this.#opened.dumpDataDir() } })
        } else if (assets !== undefined && this.#pgliteAssets === undefined) {
          this.#send({ type: 'pgliteAssets', assets })
        }
        const projectId = await this.#project(this.#opened.db, this.#options.project ?? DEFAULT_PROJECT)
        this.#ids = { ...await registerInstance(this.#opened.db, this.#options.appVersion, this.#instanceToken, new Date(this.#startedAtMs)), projectId }
        this.#partitions = new PartitionManager(this.#opened.db, this.#options.tablePrefix)
        const today = dayOf(Date.now())
        await this.#partitions.ensure(today - 1, today + this.#options.partitionDaysAhead)
        this.#writer.stats.databaseUp = true
        // stats first: whoever awaits `ready` then sees the database as up
        this.#send({ type: 'stats', stats: { ...this.#writer.stats } })
        this.#send({ type: 'ready', databaseKind: this.#opened.kind })
        this.#log('debug', `fastify-monitoring-dashboard: ${this.#opened.kind} database ready`)
        await this.#syncEndpoints()
        this.#writer.kick()
        this.#runMaintenance()
        this.#foldHours()
        return
      } catch (err) {
        this.#writer.stats.writeErrors++
        this.#writer.stats.databaseUp = false
        this.#send({ type: 'stats', stats: { ...this.#writer.stats } })
        this.#log(attempt === 1 ? 'warn' : 'debug', `fastify-monitoring-dashboard: cannot open the database (attempt ${attempt}); records are buffered meanwhile`, summarizeError(err))
        await new Promise((resolve) => setTimeout(resolve, delay).unref())
        delay = Math.min(delay * 2, Math.min(this.#options.retryMaxDelayMs, STARTUP_RETRY_MAX_MS))
      }
    }
  }

  /** Registers the endpoints the main thread discovered, and tells it their stored levels. */
  async #syncEndpoints (): Promise<void> {
    if (this.#ids === undefined || this.#endpointKeys.length === 0) return
    const keys = this.#endpointKeys
    try {
      const rows = await upsertEndpoints(this.#requireDb(), keys, this.#options.defaultMonitorLevel, this.#ids.projectId)
      rows.forEach((row, i) => { this.#endpoints[keys[i]!.index] = row })
      this.#send({ type: 'levels', levels: keys.map((key, i) => [key.index, rows[i]!.level]) })
      for (const id of this.#pendingEndpointReplies) this.#send({ type: 'reply', id })
      this.#pendingEndpointReplies = []
      this.#writer.kick()
    } catch (err) {
      this.#log('warn', 'fastify-monitoring-dashboard: cannot register endpoints; will retry', summarizeError(err))
      setTimeout(() => { this.#syncEndpoints().catch(() => {}) }, 1_000).unref()
    }
  }

  /** Picks up levels changed by an admin in this or another process. */
  async #pollLevels (): Promise<void> {
    if (this.#ids === undefined || this.#endpointKeys.length === 0) return
    const stored = await readLevels(this.#requireDb(), this.#ids.projectId)
    const changed: Array<[number, number]> = []
    for (const key of this.#endpointKeys) {
      const endpoint = this.#endpoints[key.index]
      const level = endpoint === undefined ? undefined : stored.get(endpoint.id)
      if (endpoint !== undefined && level !== undefined && level !== endpoint.level) {
        endpoint.level = level
        changed.push([key.index, level])
      }
    }
    if (changed.length > 0) this.#send({ type: 'levels', levels: changed })
  }

  async #maintain ({ vacuum }: { vacuum: boolean }): Promise<void> {
    if (this.#partitions === undefined) return
    const today = dayOf(Date.now())
    await this.#partitions.ensure(today - 1, today + this.#options.partitionDaysAhead)
    await pruneBatchIds(this.#requireDb(), DAY_MS)
    await pruneProfiles(this.#requireDb(), PROFILES_KEPT_PER_ENDPOINT)
    const now = Date.now()
    const removed = await deleteOlderThan(this.#requireDb(), this.#options.tablePrefix, new Date(now - this.#options.retentionDays * DAY_MS), new Date(now - this.#options.rollupRetentionDays * DAY_MS))
    if (removed.droppedPartitions > 0) {
      this.#partitions.reset()
      this.#log('info', `fastify-monitoring-dashboard: retention dropped ${removed.droppedPartitions} daily partitions`)
    }
    if (vacuum) await vacuumForPglite(this.#requireDb())
  }

  async handle (message: ToWorker): Promise<unknown> {
    switch (message.type) {
      case 'records':
        this.#writer.accept(message.batch, message.lastSeen)
        this.#tick.arm()
        return undefined
      case 'endpoints':
        this.#endpointKeys = message.endpoints
        this.#pendingEndpointReplies.push(message.id)
        await this.#syncEndpoints()
        return undefined
      case 'setLevel': {
        const own = 'index' in message.endpoint ? this.#endpoints[message.endpoint.index] : undefined
        const endpointId = 'endpointId' in message.endpoint ? message.endpoint.endpointId : own?.id
        if (endpointId === undefined) throw new Error('endpoint not registered in the database yet')
        await setLevel(this.#requireDb(), endpointId, message.level)
        if (own !== undefined) own.level = message.level
        this.#senders.levelChanged(endpointId, message.level)
        return undefined
      }
      case 'query': {
        const result = await this.#requireDb().executeQuery(CompiledQuery.raw(message.sql, [...message.parameters]))
        const reply: QueryReply = { rows: result.rows as unknown[], numAffectedRows: result.numAffectedRows?.toString() }
        return reply
      }
      case 'outliers':
        this.#diagnostics.add(message)
        this.#tick.arm()
        return undefined
      case 'groupedProfile':
        return await groupedProfile(this.#requireDb(), message.endpointId, message.n, message.foldLibraries)
      case 'ingest':
        return await this.#ingest(message.batch)
      case 'flush':
        await this.#writer.drain()
        await this.#flushOutliers()
        return undefined
      case 'close': {
        this.#closing = true
        for (const timer of this.#timers) clearInterval(timer)
        this.#tick.close()
        // the main thread logs what is lost, once
        const lost = this.#writer.abandon()
        await this.#opened?.rawDb.destroy()
        return lost
      }
    }
  }

  /**
   * Stores a batch another process sent, as this process's own are stored: its endpoints created at the
   * default level, its version and instance registered, rows of endpoints at level 0 kept only as their
   * last request, the rest written in one transaction under the sender's batch id (so a retry after a
   * lost answer writes nothing). Answers the level of each endpoint, for the sender to follow.
   */
  async #ingest (batch: IngestBatch): Promise<IngestResult> {
    const db = this.#requireDb()
    // the route's schema bounded every length; NUL, which text columns refuse, is left to clear
    const text = (value: string): string => storableText(value, value.length)!
    const keys = batch.endpoints.map((e, index) => ({ index, method: text(e.method), route: text(e.route) }))
    const projectId = await this.#project(db, batch.project ?? DEFAULT_PROJECT)
    const endpoints = this.#senders.endpoints(projectId, keys) ??
      this.#senders.knowEndpoints(projectId, keys, await upsertEndpoints(db, keys, this.#options.defaultMonitorLevel, projectId))
    const sender = { version: text(batch.version), token: text(batch.instance.token), host: text(batch.instance.host), pid: batch.instance.pid }
    const { requests } = batch
    // a sender's version is first seen with the oldest request of its first batch (it may have buffered them)
    const { versionId, instanceId } = this.#senders.instance(sender) ??
      this.#senders.knowInstance(sender, await registerInstance(db, sender.version, sender.token, new Date(Math.min(Date.now(), ...requests.time)), sender.host, sender.pid))
    const unit: WriteUnit = { id: batch.batch, endpointId: [], timeMs: [], durationMs: [], statusCode: [], seq: [], group: [], ip: [], attempts: 0 }
    const lastSeen = new Map<number, number>()
    const seenAt = (id: number, timeMs: number): void => { if (timeMs > (lastSeen.get(id) ?? 0)) lastSeen.set(id, timeMs) }
    for (let i = 0; i < requests.endpoint.length; i++) {
      const endpoint = endpoints[requests.endpoint[i]!]!
      const timeMs = requests.time[i]!
      seenAt(endpoint.id, timeMs)
      if (endpoint.level === 0) continue
      unit.endpointId.push(endpoint.id)
      unit.timeMs.push(timeMs)
      unit.durationMs.push(requests.durationMs[i]!)
      unit.statusCode.push(requests.statusCode[i]!)
      unit.seq.push(requests.seq?.[i] ?? null)
      unit.group.push(storableText(requests.group?.[i] ?? undefined, MAX_GROUP_LENGTH))
      unit.ip.push(storableText(requests.ip?.[i] ?? undefined, MAX_IP_LENGTH))
    }
    const seen = batch.seen ?? { endpoint: [], time: [] }
    for (let i = 0; i < seen.endpoint.length; i++) seenAt(endpoints[seen.endpoint[i]!]!.id, seen.time[i]!)
    let stored = true
    if (unit.endpointId.length > 0) {
      const { firstMs, lastMs } = timeSpan(unit.timeMs)
      await this.#partitions!.ensure(dayOf(firstMs), dayOf(lastMs))
      stored = await writeUnit(db, unit, versionId, instanceId, this.#opened?.copyTransaction, this.#unfolded)
    }
    await touchEndpoints(db, lastSeen)
    const { diagnostics } = batch
    if (diagnostics !== undefined) {
      const id = (endpoint: number): number => endpoints[endpoint]!.id
      // claimed apart from the rows (another id), so each part of a batch is stored once whichever failed
      const written = await writeDiagnostics(db, {
        outliers: diagnostics.outliers.map(({ endpoint, time, ...o }) => ({ ...o, endpointId: id(endpoint), timeMs: time })),
        overflow: diagnostics.overflow.map(({ endpoint, hour, count }) => ({ endpointId: id(endpoint), hourMs: hour, count })),
        profiles: diagnostics.profiles.map(({ endpoint, time, ...p }) => ({ ...p, endpointId: id(endpoint), timeMs: time }))
      }, { versionId, instanceId, keepPerHour: diagnostics.keepPerHour, batchId: `${batch.batch}/diagnostics` })
      stored &&= written
    }
    return { stored, levels: keys.map((key, i) => ({ method: key.method, route: key.route, level: endpoints[i]!.level })) }
  }

  async #project (db: Kysely<Database>, name: string): Promise<number> {
    let id = this.#projects.get(name)
    if (id === undefined) {
      id = await ensureProject(db, name)
      this.#projects.set(name, id)
    }
    return id
  }

  /** Writes the outliers and call trees whose endpoints the database knows; on failure they wait for the next tick. */
  async #flushOutliers (): Promise<void> {
    if (this.#writingOutliers || this.#ids === undefined || this.#diagnostics.empty) return
    this.#writingOutliers = true
    const part = this.#diagnostics.take((index) => this.#endpoints[index] !== undefined)
    const id = (index: number): number => this.#endpoints[index]!.id
    try {
      await writeDiagnostics(this.#requireDb(), {
        outliers: part.outliers.map(({ endpointIndex, ...o }) => ({ ...o, endpointId: id(endpointIndex) })),
        overflow: part.overflow.map(([index, hourMs, count]) => ({ endpointId: id(index), hourMs, count })),
        profiles: part.profiles.map(({ endpointIndex, ...p }) => ({ ...p, endpointId: id(endpointIndex) }))
      }, { ...this.#ids, keepPerHour: this.#diagnostics.keepPerHour })
    } catch (err) {
      if (isPermanentError(err)) {
        // the database refuses these rows themselves: retried, they would hold back every later outlier
        this.#diagnostics.drop(part)
        this.#writer.stats.writeErrors++
        this.#log('error', `fastify-monitoring-dashboard: the database refused ${part.outliers.length} outliers and ${part.profiles.length} call trees; they are dropped (still counted as found)`, summarizeError(err))
      } else {
        this.#diagnostics.putBack(part)
        this.#log('debug', 'fastify-monitoring-dashboard: writing outliers failed; will retry', summarizeError(err))
      }
    } finally {
      this.#writingOutliers = false
    }
  }

  readonly #unfolded = (hoursMs: number[]): void => { this.#folds.add(hoursMs) }

  /** Folds the closed hours this writer stored rows of into their days and months (see hour-folds.ts). */
  #foldHours (): void {
    if (this.#folding || this.#opened === undefined || this.#ids === undefined) return
    this.#folding = true
    this.#folds.foldClosed(this.#opened.db, Date.now())
      .catch((err: unknown) => this.#log('warn', 'fastify-monitoring-dashboard: folding closed hours into their days failed; retried in a minute (reads stay right meanwhile)', summarizeError(err)))
      .finally(() => { this.#folding = false })
  }

  #runMaintenance (options = { vacuum: false }): void {
    this.#maintain(options).catch((err: unknown) => this.#log('warn', 'fastify-monitoring-dashboard: partition maintenance and retention failed', summarizeError(err)))
  }
}
