/**
 * The writer's thread. It owns the database connection (PGlite must have exactly one owner, and
 * a `pg` insert of thousands of rows costs milliseconds of CPU): the request thread only posts
 * compact batches here, so no SQL work happens on the thread serving requests.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { CompiledQuery, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { openDatabase, type OpenedDatabase } from '../db/dialect.js'
import { OverflowCounts, summarizeError, type EndpointKey, type FromWorker, type OutlierRecord, type ProfileRecord, type QueryReply, type ToWorker, type WorkerInit } from '../protocol.js'
import { migrateToLatest } from '../db/migrate.js'
import { loadPgliteAssets } from '../db/pglite-assets.js'
import { PartitionManager, dayOf } from '../db/partitions.js'
import { pruneBatchIds, pruneProfiles, readLevels, registerInstance, setLevel, touchEndpoints, upsertEndpoints, writeOutliers, writeProfiles, writeUnit } from './store.js'
import { Writer } from './writer.js'
import { deleteOlderThan } from '../db/retention.js'
import { groupedProfile } from '../queries/profiles.js'

const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000
const STARTUP_RETRY_MAX_MS = 5_000

const port = parentPort!
const { options, instanceToken, pgliteAssets } = workerData as WorkerInit
const inMemory = options.database.kind === 'pglite' && options.database.dataDir.startsWith('memory://')
const send = (message: FromWorker): void => port.postMessage(message)
const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, err?: ReturnType<typeof summarizeError>): void =>
  send({ type: 'log', level, msg, err })

let opened: OpenedDatabase | undefined
let ids: { versionId: number, instanceId: number } | undefined
let partitions: PartitionManager | undefined
let closing = false
/** Endpoints by main-thread index, once the database has them. */
const endpoints: Array<{ id: number, level: number } | undefined> = []
let endpointKeys: EndpointKey[] = []
let pendingEndpointReplies: number[] = []
const timers: NodeJS.Timeout[] = []
/** Outliers waiting for the database: few and large, so bounded by count; the oldest go first. */
const MAX_PENDING_OUTLIERS = 1_000
let pendingOutliers: OutlierRecord[] = []
const pendingOverflow = new OverflowCounts()
const MAX_PENDING_PROFILES = 2_000
/** Call trees kept per endpoint: the grouped profile reads the latest of them. */
const PROFILES_KEPT_PER_ENDPOINT = 1_000
let pendingProfiles: ProfileRecord[] = []
let writingOutliers = false
/** `outliers.maxPerEndpointHour`, sent with the outliers. */
let outliersKeptPerHour = 100

const writer = new Writer({
  resolveEndpoint: (index) => endpoints[index],
  write: async (unit) => { await writeUnit(requireDb(), unit, ids!.versionId, ids!.instanceId) },
  ensurePartitions: async (fromMs, toMs, force) => {
    if (partitions === undefined) throw new Error('database not ready')
    if (force) partitions.reset()
    await partitions.ensure(dayOf(fromMs), dayOf(toMs))
  },
  touch: async (lastSeen) => { await touchEndpoints(requireDb(), lastSeen) },
  log,
  onStats: (stats) => send({ type: 'stats', stats: { ...stats } })
}, options)

function requireDb (): Kysely<Database> {
  if (opened === undefined || ids === undefined) throw Object.assign(new Error('database not ready'), { code: 'ENOTREADY' })
  return opened.db
}

/** Opens, migrates and registers, retrying with backoff until the database answers. */
async function start (): Promise<void> {
  let delay = 100
  for (let attempt = 1; !closing; attempt++) {
    try {
      // a throw-away database starts from what an earlier one of this process left (see pglite-assets.ts)
      const assets = inMemory ? pgliteAssets ?? await loadPgliteAssets(options.tablePrefix) : undefined
      opened ??= await openDatabase(options, assets)
      await migrateToLatest(opened.rawDb, options.tablePrefix)
      if (assets !== undefined && assets.snapshot === undefined && opened.dumpDataDir !== undefined) {
        send({ type: 'pgliteAssets', assets: { ...assets, snapshot: await opened.dumpDataDir() } })
      }
      ids = await registerInstance(opened.db, options.appVersion, instanceToken)
      partitions = new PartitionManager(opened.db, options.tablePrefix)
      const today = dayOf(Date.now())
      await partitions.ensure(today - 1, today + options.partitionDaysAhead)
      writer.stats.databaseUp = true
      // stats first: whoever awaits `ready` then sees the database as up
      send({ type: 'stats', stats: { ...writer.stats } })
      send({ type: 'ready', databaseKind: opened.kind })
      log('debug', `fastify-monitoring-dashboard: ${opened.kind} database ready`)
      await syncEndpoints()
      writer.kick()
      runMaintenance()
      return
    } catch (err) {
      writer.stats.writeErrors++
      writer.stats.databaseUp = false
      send({ type: 'stats', stats: { ...writer.stats } })
      log(attempt === 1 ? 'warn' : 'debug', `fastify-monitoring-dashboard: cannot open the database (attempt ${attempt}); records are buffered meanwhile`, summarizeError(err))
      await new Promise((resolve) => setTimeout(resolve, delay).unref())
      delay = Math.min(delay * 2, Math.min(options.retryMaxDelayMs, STARTUP_RETRY_MAX_MS))
    }
  }
}

/** Registers the endpoints the main thread discovered, and tells it their stored levels. */
async function syncEndpoints (): Promise<void> {
  if (ids === undefined || endpointKeys.length === 0) return
  const keys = endpointKeys
  try {
    const rows = await upsertEndpoints(requireDb(), keys, options.defaultMonitorLevel)
    rows.forEach((row, i) => { endpoints[keys[i]!.index] = row })
    send({ type: 'levels', levels: keys.map((key, i) => [key.index, rows[i]!.level]) })
    for (const id of pendingEndpointReplies) send({ type: 'reply', id })
    pendingEndpointReplies = []
    writer.kick()
  } catch (err) {
    log('warn', 'fastify-monitoring-dashboard: cannot register endpoints; will retry', summarizeError(err))
    setTimeout(() => { syncEndpoints().catch(() => {}) }, 1_000).unref()
  }
}

/** Picks up levels changed by an admin in this or another process. */
async function pollLevels (): Promise<void> {
  if (ids === undefined || endpointKeys.length === 0) return
  const stored = await readLevels(requireDb())
  const changed: Array<[number, number]> = []
  for (const key of endpointKeys) {
    const endpoint = endpoints[key.index]
    const level = endpoint === undefined ? undefined : stored.get(endpoint.id)
    if (endpoint !== undefined && level !== undefined && level !== endpoint.level) {
      endpoint.level = level
      changed.push([key.index, level])
    }
  }
  if (changed.length > 0) send({ type: 'levels', levels: changed })
}

async function maintain (): Promise<void> {
  if (partitions === undefined) return
  const today = dayOf(Date.now())
  await partitions.ensure(today - 1, today + options.partitionDaysAhead)
  await pruneBatchIds(requireDb(), DAY_MS)
  await pruneProfiles(requireDb(), PROFILES_KEPT_PER_ENDPOINT)
  const now = Date.now()
  const removed = await deleteOlderThan(requireDb(), options.tablePrefix, new Date(now - options.retentionDays * DAY_MS), new Date(now - options.rollupRetentionDays * DAY_MS))
  if (removed.droppedPartitions > 0) {
    partitions.reset()
    log('info', `fastify-monitoring-dashboard: retention dropped ${removed.droppedPartitions} daily partitions`)
  }
}

async function handle (message: ToWorker): Promise<unknown> {
  switch (message.type) {
    case 'records':
      if (message.batch !== undefined) writer.enqueue(message.batch)
      if (message.lastSeen !== undefined) writer.touch(message.lastSeen.endpoint, message.lastSeen.timeMs)
      // a full statement's worth now; smaller amounts wait for the flush tick, so each insert
      // carries up to maxBatchSize rows (fewer statements, less CPU per row here and in Postgres)
      if (writer.buffered >= options.maxBatchSize) writer.kick()
      return undefined
    case 'endpoints':
      endpointKeys = message.endpoints
      pendingEndpointReplies.push(message.id)
      await syncEndpoints()
      return undefined
    case 'setLevel': {
      const endpoint = endpoints[message.index]
      if (endpoint === undefined) throw new Error('endpoint not registered in the database yet')
      await setLevel(requireDb(), endpoint.id, message.level)
      endpoint.level = message.level
      return undefined
    }
    case 'query': {
      const result = await requireDb().executeQuery(CompiledQuery.raw(message.sql, [...message.parameters]))
      const reply: QueryReply = { rows: result.rows as unknown[], numAffectedRows: result.numAffectedRows?.toString() }
      return reply
    }
    case 'outliers':
      outliersKeptPerHour = message.keepPerHour
      pendingOutliers.push(...message.outliers)
      for (const [index, hourMs, count] of message.overflow) pendingOverflow.add(index, hourMs, count)
      pendingProfiles.push(...message.profiles)
      if (pendingProfiles.length > MAX_PENDING_PROFILES) pendingProfiles.splice(0, pendingProfiles.length - MAX_PENDING_PROFILES)
      if (pendingOutliers.length > MAX_PENDING_OUTLIERS) {
        const dropped = pendingOutliers.splice(0, pendingOutliers.length - MAX_PENDING_OUTLIERS)
        // still counted as found
        for (const o of dropped) pendingOverflow.add(o.endpointIndex, o.timeMs)
      }
      return undefined
    case 'groupedProfile':
      return await groupedProfile(requireDb(), message.endpointId, message.n, message.foldLibraries)
    case 'flush':
      await writer.drain()
      await flushOutliers()
      return undefined
    case 'close': {
      closing = true
      for (const timer of timers) clearInterval(timer)
      const lost = writer.abandon()
      if (lost > 0) log('error', `fastify-monitoring-dashboard: closing with the database unreachable; ${lost} records were not written`)
      await opened?.rawDb.destroy()
      return lost
    }
  }
}

port.on('message', (message: ToWorker) => {
  handle(message).then((result) => {
    if ('id' in message && message.type !== 'endpoints') send({ type: 'reply', id: message.id, result })
  }, (err: unknown) => {
    if ('id' in message) send({ type: 'reply', id: message.id, error: summarizeError(err) })
  })
})

timers.push(setInterval(() => { writer.kick(); flushOutliers().catch(() => {}) }, options.flushIntervalMs))
timers.push(setInterval(() => { pollLevels().catch(() => {}) }, options.levelPollIntervalMs))
/** Writes the outliers whose endpoints the database knows; on failure they wait for the next tick. */
async function flushOutliers (): Promise<void> {
  if (writingOutliers || ids === undefined || (pendingOutliers.length === 0 && pendingOverflow.size === 0 && pendingProfiles.length === 0)) return
  writingOutliers = true
  const outliers = pendingOutliers.filter((o) => endpoints[o.endpointIndex] !== undefined)
  const overflow = pendingOverflow.take((index) => endpoints[index] !== undefined)
  const profiles = pendingProfiles.filter((p) => endpoints[p.endpointIndex] !== undefined)
  try {
    await writeProfiles(requireDb(), profiles.map((p) => ({ ...p, endpointId: endpoints[p.endpointIndex]!.id })), ids.versionId, ids.instanceId)
    pendingProfiles = pendingProfiles.filter((p) => !profiles.includes(p))
    await writeOutliers(requireDb(), outliers.map((o) => ({ ...o, endpointId: endpoints[o.endpointIndex]!.id })),
      overflow.map(([index, hourMs, count]) => ({ endpointId: endpoints[index]!.id, hourMs, count })), ids.versionId, ids.instanceId, outliersKeptPerHour)
    const written = new Set(outliers)
    pendingOutliers = pendingOutliers.filter((o) => !written.has(o))
  } catch (err) {
    for (const [index, hourMs, count] of overflow) pendingOverflow.add(index, hourMs, count)
    log('debug', 'fastify-monitoring-dashboard: writing outliers failed; will retry', summarizeError(err))
  } finally {
    writingOutliers = false
  }
}

function runMaintenance (): void {
  maintain().catch((err: unknown) => log('warn', 'fastify-monitoring-dashboard: partition maintenance and retention failed', summarizeError(err)))
}
timers.push(setInterval(runMaintenance, HOUR_MS))
for (const timer of timers) timer.unref()
start().catch((err: unknown) => log('error', 'fastify-monitoring-dashboard: writer failed to start', summarizeError(err)))
