import { randomUUID } from 'node:crypto'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker, type WorkerOptions } from 'node:worker_threads'
import type { FastifyBaseLogger } from 'fastify'
import { DatabaseUnavailableError } from '../errors.js'
import type { PgliteAssets } from '../db/pglite-assets.js'
import type { StorageOptions } from '../options.js'
import type { GroupedProfile } from '../queries/profiles.js'
import {
  emptyWriterStats, transferList,
  type EndpointKey, type ErrorSummary, type FromWorker, type IngestBatch, type IngestResult, type LastSeen, type OutlierOverflow, type OutlierRecord,
  type ProfileRecord, type RecordBatch, type StoreKind, type ToWorker, type WorkerInit, type WriterStats
} from '../protocol.js'

type Request = ToWorker extends infer M ? M extends { id: number } ? Omit<M, 'id'> : never : never

const RESTART_DELAY_MS = 1_000
/** How long close() waits for the writer thread to close its database before terminating it. */
const CLOSE_REPLY_TIMEOUT_MS = 5_000

function toError (summary: ErrorSummary): Error {
  return Object.assign(new Error(summary.message), { code: summary.code })
}

/**
 * What the first PGlite database of this process left for the next ones (compiled PGlite, and from a
 * `memory://` one a migrated snapshot): a test suite building an app per test then starts each in a
 * fraction of the time.
 */
let keptPgliteAssets: PgliteAssets | undefined

/** Node's socket errors while reaching the database server. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])

/**
 * Whether a failed query says the database cannot be reached (as opposed to a bad query): not opened
 * yet (ENOTREADY from the writer thread), a network error, PostgreSQL's connection exceptions (class
 * 08) or shutdown/start-up states (57P01–57P03), pg's own messages for a lost or timed-out connection.
 */
export function isDatabaseUnavailable (err: Error & { code?: unknown }): boolean {
  const code = typeof err.code === 'string' ? err.code : ''
  return code === 'ENOTREADY' || NETWORK_CODES.has(code) || code.startsWith('08') || /^57P0[123]$/.test(code) ||
    /Connection terminated|timeout exceeded when trying to connect|writer thread (exited|not running)/.test(err.message)
}

let workerFromSources: URL | undefined

/**
 * The writer thread's entry: the compiled `.js` beside this file in the package. Run from the
 * TypeScript sources (the tests), a thread under the TypeScript loader compiles its whole module
 * graph again at every start (about 2 s of CPU per app), so the compiled build is taken while it is
 * newer than every source file, and the `.ts` entry otherwise.
 */
function workerUrl (): URL {
  if (!import.meta.url.endsWith('.ts')) return new URL('../writer/worker.js', import.meta.url)
  workerFromSources ??= buildIsCurrent(new URL('../../dist/writer/worker.js', import.meta.url), new URL('../', import.meta.url))
    ? new URL('../../dist/writer/worker.js', import.meta.url)
    : new URL('../writer/worker.ts', import.meta.url)
  return workerFromSources
}

/** Node options that load code into a thread: a module loader or a preload. */
const PRELOAD_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader'])

/** `args` less the preload options and their values (`--import x` as well as `--import=x`). */
export function withoutPreloads (args: readonly string[]): string[] {
  const kept: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const flag = arg.startsWith('--') ? arg.split('=', 1)[0]! : arg
    if (!PRELOAD_FLAGS.has(flag)) kept.push(arg)
    else if (!arg.includes('=')) i++
  }
  return kept
}

/**
 * The compiled writer needs none of the host's preloads, and a thread that inherits its options runs them
 * again: under ts-node or tsx the TypeScript compiler is loaded into the thread (about 1 s of CPU and tens
 * of MB at every start), and an APM agent would trace the writer's own queries as the app's. The other
 * options stay (`--dns-result-order` decides how the thread's connections resolve `localhost`). The `.ts`
 * entry (tests run from the sources without a build) needs the TypeScript loader, so it inherits all.
 */
function threadOptions (entry: URL, execArgv: readonly string[]): Pick<WorkerOptions, 'execArgv' | 'env'> {
  if (entry.pathname.endsWith('.ts')) return {}
  // a copy of the environment at start, as a thread gets by default; NODE_OPTIONS with quoted values is not split here, so it goes
  const env = { ...process.env }
  const hostOptions = env.NODE_OPTIONS
  if (hostOptions !== undefined) env.NODE_OPTIONS = /["']/.test(hostOptions) ? '' : withoutPreloads(hostOptions.trim().split(/\s+/)).join(' ')
  return { execArgv: withoutPreloads(execArgv), env }
}

/** A writer thread; an option a thread may not take (`--expose-gc` and other process-wide ones) leaves it with none. */
function startThread (entry: URL, options: WorkerOptions): Worker {
  const own = threadOptions(entry, process.execArgv)
  try {
    return new Worker(entry, { ...options, ...own })
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err
    return new Worker(entry, { ...options, ...own, execArgv: [] })
  }
}

/** True when `built` exists and is newer than every `.ts` file under `sources`. */
export function buildIsCurrent (built: URL, sources: URL): boolean {
  let builtMs: number
  try { builtMs = statSync(built).mtimeMs } catch { return false }
  const dir = fileURLToPath(sources)
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .every((file) => statSync(join(dir, file)).mtimeMs < builtMs)
}

/**
 * The main thread's handle on the writer's thread: posts record batches, asks for queries and
 * flushes, and restarts the thread if it dies (counting what it held as dropped).
 *
 * ### Examples
 * ```ts
 * const storage = new StorageClient(options, app.log, { onLevels, onStats })
 * storage.send(batch, undefined)
 * await storage.close(10_000)
 * ```
 */
export class StorageClient {
  readonly #options: StorageOptions
  readonly #log: FastifyBaseLogger
  readonly #onLevels: (levels: Array<[number, number]>) => void
  readonly #onBatchWritten: ((durationMs: number) => void) | undefined
  #worker: Worker | undefined
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()
  #endpoints: EndpointKey[] = []
  #closed = false
  #restartTimer: NodeJS.Timeout | undefined
  /** Records handed to the current worker, to count what a crash loses. */
  #sentToWorker = 0
  #droppedByCrashes = 0
  #stats: WriterStats = emptyWriterStats()
  #statsBase = { written: 0, dropped: 0, writeErrors: 0, batchesWritten: 0 }
  databaseKind: StoreKind | undefined
  /** Random per process start: `<instanceToken>:<seq>` names a stored request (Prometheus exemplars). */
  readonly instanceToken = randomUUID()
  readonly #startedAtMs = Date.now()
  readonly ready: Promise<void>
  #markReady!: () => void

  constructor (options: StorageOptions, log: FastifyBaseLogger, hooks: {
    onLevels: (levels: Array<[number, number]>) => void
    onBatchWritten?: (durationMs: number) => void
  }) {
    this.#options = options
    this.#log = log
    this.#onLevels = hooks.onLevels
    this.#onBatchWritten = hooks.onBatchWritten
    this.ready = new Promise((resolve) => { this.#markReady = resolve })
    this.#spawn()
  }

  /** Counters of the writer, summed over restarts of its thread. */
  get stats (): WriterStats {
    const s = this.#stats
    return {
      buffered: s.buffered,
      bufferedBytes: s.bufferedBytes,
      written: this.#statsBase.written + s.written,
      dropped: this.#statsBase.dropped + s.dropped + this.#droppedByCrashes,
      writeErrors: this.#statsBase.writeErrors + s.writeErrors,
      databaseUp: s.databaseUp,
      lastBatchDurationMs: s.lastBatchDurationMs,
      batchesWritten: this.#statsBase.batchesWritten + s.batchesWritten
    }
  }

  #spawn (): void {
    const { database } = this.#options
    const inMemory = database.kind === 'pglite' && database.dataDir.startsWith('memory://')
    // the snapshot is of a migrated memory:// database of one table prefix; the compiled modules suit any PGlite
    const pgliteAssets = database.kind !== 'pglite' || keptPgliteAssets === undefined ? undefined
      : inMemory && keptPgliteAssets.tablePrefix === this.#options.tablePrefix ? keptPgliteAssets : { ...keptPgliteAssets, snapshot: undefined }
    const init: WorkerInit = { options: this.#options, instanceToken: this.instanceToken, startedAtMs: this.#startedAtMs, pgliteAssets }
    const entry = workerUrl()
    const worker = startThread(entry, { workerData: init, name: 'fastify-monitoring-dashboard writer' })
    // the app decides when the process ends; app.close() flushes before that
    worker.unref()
    worker.on('message', (message: FromWorker) => this.#receive(message))
    worker.on('error', (err) => {
      this.#log.error({ err }, 'fastify-monitoring-dashboard: writer thread failed')
    })
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return
      this.#worker = undefined
      for (const { reject } of this.#pending.values()) reject(new Error('writer thread exited'))
      this.#pending.clear()
      if (this.#closed) return
      // what the dead thread held is lost: count it, then start again
      const lost = Math.max(0, this.#sentToWorker - this.#stats.written - this.#stats.dropped)
      this.#droppedByCrashes += lost
      for (const key of ['written', 'dropped', 'writeErrors', 'batchesWritten'] as const) this.#statsBase[key] += this.#stats[key]
      this.#stats = { ...emptyWriterStats(), lastBatchDurationMs: this.#stats.lastBatchDurationMs }
      this.#sentToWorker = 0
      this.#log.error(`fastify-monitoring-dashboard: writer thread exited with code ${code}; ${lost} records lost; restarting`)
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = undefined
        if (this.#closed) return
        this.#spawn()
        if (this.#endpoints.length > 0) this.#request({ type: 'endpoints', endpoints: this.#endpoints }).catch(() => {})
      }, RESTART_DELAY_MS).unref()
    })
    this.#worker = worker
  }

  #receive (message: FromWorker): void {
    switch (message.type) {
      case 'reply': {
        const pending = this.#pending.get(message.id)
        if (pending === undefined) return
        this.#pending.delete(message.id)
        if (message.error !== undefined) pending.reject(toError(message.error))
        else pending.resolve(message.result)
        return
      }
      case 'ready':
        this.databaseKind = message.databaseKind
        this.#markReady()
        return
      case 'levels':
        this.#onLevels(message.levels)
        return
      case 'stats':
        // one stats message follows every written batch
        if (message.stats.batchesWritten > this.#stats.batchesWritten) this.#onBatchWritten?.(message.stats.lastBatchDurationMs)
        this.#stats = message.stats
        return
      case 'pgliteAssets':
        // a snapshot-less message (an on-disk database's) keeps the snapshot an earlier one left
        keptPgliteAssets = message.assets.snapshot === undefined && keptPgliteAssets !== undefined ? keptPgliteAssets : message.assets
        return
      case 'log': {
        const err = message.err === undefined ? undefined : toError(message.err)
        this.#log[message.level](err === undefined ? {} : { err }, message.msg)
      }
    }
  }

  async #request (message: Request): Promise<unknown> {
    const worker = this.#worker
    if (worker === undefined) throw new Error('writer thread not running')
    const id = this.#nextId++
    return await new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      worker.postMessage({ ...message, id })
    })
  }

  /** Hands recorded requests to the writer; never blocks, never throws. */
  send (batch: RecordBatch | undefined, lastSeen: LastSeen | undefined): void {
    const worker = this.#worker
    if (worker === undefined || this.#closed) {
      this.#droppedByCrashes += batch?.length ?? 0
      return
    }
    this.#sentToWorker += batch?.length ?? 0
    const message: ToWorker = { type: 'records', batch, lastSeen }
    worker.postMessage(message, batch === undefined ? [] : transferList(batch))
  }

  /**
   * Hands outliers (and the count of those over the hourly cap) and level-3 call trees to the writer,
   * which keeps the `keepPerHour` slowest outliers per endpoint and hour.
   */
  sendOutliers (outliers: OutlierRecord[], overflow: OutlierOverflow[], profiles: ProfileRecord[], keepPerHour: number): void {
    if (this.#worker === undefined || this.#closed) return
    const message: ToWorker = { type: 'outliers', outliers, overflow, profiles, keepPerHour }
    this.#worker.postMessage(message)
  }

  /** Registers endpoints; resolves once the database has them (which waits while it is down). */
  async registerEndpoints (endpoints: EndpointKey[]): Promise<void> {
    this.#endpoints = endpoints
    await this.#request({ type: 'endpoints', endpoints })
  }

  async setLevel (endpoint: { index: number } | { endpointId: number }, level: number): Promise<void> {
    await this.#request({ type: 'setLevel', endpoint, level })
  }

  /** Runs one compiled query in the writer's thread (the only owner of the connection). */
  async query (sql: string, parameters: readonly unknown[]): Promise<unknown> {
    try {
      return await this.#request({ type: 'query', sql, parameters })
    } catch (err) {
      // a coded 503 that callers (the dashboard, app.monitor.db users) can tell from a bad query
      if (isDatabaseUnavailable(err as Error)) throw new DatabaseUnavailableError((err as Error).message, { cause: err })
      throw err
    }
  }

  /** Level 3: an endpoint's grouped profile, merged on the writer's thread (never on the request thread). */
  async groupedProfile (endpointId: number, n: number, foldLibraries: boolean): Promise<GroupedProfile> {
    return await this.#request({ type: 'groupedProfile', endpointId, n, foldLibraries }) as GroupedProfile
  }

  /** Stores a batch another process sent (the ingest route), on the writer's thread, at most once. */
  async ingest (batch: IngestBatch): Promise<IngestResult> {
    return await this.#request({ type: 'ingest', batch }) as IngestResult
  }

  /** Resolves when everything sent so far is in the database. */
  async flush (): Promise<void> {
    await this.#request({ type: 'flush' })
  }

  /**
   * Writes what is buffered, waiting at most `timeoutMs` for the database, then closes it.
   * Resolves with the number of records that could not be written.
   */
  async close (timeoutMs: number): Promise<number> {
    if (this.#closed) return 0
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })
    await Promise.race([this.flush().catch(() => {}), timedOut])
    clearTimeout(timer)
    clearTimeout(this.#restartTimer)
    this.#closed = true
    const worker = this.#worker
    if (worker === undefined) return 0
    let lost = 0
    let closeTimer: NodeJS.Timeout | undefined
    try {
      lost = await Promise.race([
        this.#request({ type: 'close' }) as Promise<number>,
        new Promise<number>((resolve) => { closeTimer = setTimeout(() => resolve(this.#stats.buffered), CLOSE_REPLY_TIMEOUT_MS) })
      ])
    } finally {
      // a pending timer would keep this client, its logger and so the closed app reachable
      clearTimeout(closeTimer)
      this.#worker = undefined
      await worker.terminate()
    }
    return lost
  }
}
