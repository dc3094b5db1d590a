import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { Kysely } from 'kysely'
import { Collector } from './collection/collector.js'
import { EndpointRegistry } from './collection/endpoints.js'
import { installRequestPath, type RequestPathDeps } from './collection/request-path.js'
import { OutlierRecorder } from './collection/outlier-recorder.js'
import { DecoratorConflictError, InvalidOptionError, StorageUnavailableError, UnknownEndpointError } from './errors.js'
import { resolveOptions, type MonitorLevel, type MonitorOptions, type ResolvedOptions, type StorageOptions } from './options.js'
import { StorageClient } from './storage/client.js'
import { DEFAULT_PROJECT, emptyWriterStats } from './protocol.js'
import type { Database } from './db/database.js'
import { lockDataDir } from './storage/lock.js'
import { setupMetrics, type Metrics } from './metrics/index.js'
import { RemoteDialect } from './storage/remote-dialect.js'
import { TablePrefixPlugin } from './db/table-prefix-plugin.js'
import type { MonitorApi } from './types.js'
import { dashboardRoutes } from './routes/dashboard.js'
import { SESSION_DECORATOR, provisionUsers } from './auth/index.js'
import { testTracker } from './test-monitor/tracker.js'
import { addTestMonitorHooks } from './test-monitor/hooks.js'
import { CustomGraphs, type GraphStatus } from './graphs/custom-graphs.js'

/** How long past its close timeout an app of this process may take to release the data directory. */
const LOCK_WAIT_AFTER_CLOSE_MS = 10_000

function storageOptions (resolved: ResolvedOptions): StorageOptions {
  const { groupBy, ignoreMethods, ignoreRoutes, enabled, metrics, dashboard, outliers, ...rest } = resolved
  return rest
}

function disabledApi (version: string): MonitorApi {
  const off = async (): Promise<never> => { throw new StorageUnavailableError('the plugin is registered with enabled: false') }
  return {
    enabled: false,
    version,
    ready: Promise.resolve(),
    get db (): Kysely<Database> { throw new StorageUnavailableError('the plugin is registered with enabled: false') },
    endpoints: () => [],
    setMonitorLevel: off,
    flush: async () => {},
    stats: emptyWriterStats,
    registry: undefined,
    // graphs are not run when monitoring is off; the app's code need not know
    addGraph: () => {},
    graphs: () => []
  }
}

function lockWaitMs (closeTimeoutMs: number, pluginTimeoutMs: number | undefined): number {
  const wait = closeTimeoutMs + LOCK_WAIT_AFTER_CLOSE_MS
  return pluginTimeoutMs !== undefined && pluginTimeoutMs > 0 ? Math.min(wait, pluginTimeoutMs / 2) : wait
}

const fastifyMonitoringDashboard: FastifyPluginAsync<MonitorOptions> = async (fastify: FastifyInstance, opts) => {
  const resolved = resolveOptions(opts)
  if (resolved instanceof Error) throw resolved
  // checked before anything starts: a failed register must leave no thread or timer behind
  if (fastify.hasDecorator('monitor')) throw new DecoratorConflictError('instance', 'monitor')
  if (resolved.dashboard !== false && fastify.hasRequestDecorator(SESSION_DECORATOR)) throw new DecoratorConflictError('request', SESSION_DECORATOR)
  const tests = testTracker()
  if (tests !== undefined) addTestMonitorHooks(fastify, tests)
  if (!resolved.enabled) {
    fastify.decorate('monitor', disabledApi(resolved.appVersion))
    return
  }
  const log = fastify.log.child({ plugin: 'fastify-monitoring-dashboard' })
  const { database } = resolved
  const { remote } = resolved
  const releaseLock = remote === undefined && database.kind === 'pglite' && !database.dataDir.startsWith('memory://')
    // an app of this process still closing (a test suite that does not await close) is waited for,
    // within half of Fastify's plugin timeout so that the refusal, not a plugin timeout, is reported
    ? await lockDataDir(database.dataDir, lockWaitMs(resolved.closeTimeoutMs, fastify.initialConfig.pluginTimeout))
    : () => {}

  const registry = new EndpointRegistry(resolved, resolved.dashboard === false ? undefined : resolved.dashboard.prefix)
  // the exporter reads the writer's counters; the storage client feeds it batch durations
  let metrics: Metrics | undefined
  let groupByErrors = 0
  // made once the database handle exists (below); the exporter reads it at scrape time
  let customGraphs: CustomGraphs | undefined
  // the storage client below is its writer; it only sends once requests arrive
  const outliers = new OutlierRecorder(resolved.outliers, {
    send: (found, overflow, profiles) => storage.sendOutliers(found, overflow, profiles, resolved.outliers.maxPerEndpointHour),
    onOutlier: (method, route) => metrics?.onOutlier(method, route),
    log,
    flushIntervalMs: resolved.flushIntervalMs
  })
  const storage: StorageClient = new StorageClient(storageOptions(resolved), log, {
    onBatchWritten: (durationMs) => metrics?.onBatchWritten(durationMs),
    onLevels: (levels) => {
      for (const [index, level] of levels) {
        const endpoint = registry.list[index]
        if (endpoint !== undefined) endpoint.level = level as MonitorLevel
      }
      outliers.update(registry.list)
    }
  })
  const collector = new Collector((batch, lastSeen) => storage.send(batch, lastSeen), resolved.flushIntervalMs)
  /** The latest registration of the endpoints with the database (from `onReady` on): a level is set once it is done. */
  let registration: Promise<void> | undefined
  const registerEndpoints = (): void => {
    // waits while the database is down; the writer keeps those endpoints' records meanwhile
    registration = storage.registerEndpoints(registry.keys()).catch((err: unknown) => {
      log.warn({ err }, 'fastify-monitoring-dashboard: endpoint registration failed')
    })
  }

  const requestPath: RequestPathDeps = {
    registry,
    collector,
    groupBy: resolved.groupBy,
    log,
    httpDuration: undefined,
    // before onReady the first registration has not run: it will take this endpoint with the rest
    onNewEndpoint: () => { if (registration !== undefined) registerEndpoints() },
    onGroupByError: () => { groupByErrors++ },
    outliers
  }
  // before any route of ours, so the metrics route is known (and skipped) like every other
  installRequestPath(fastify, requestPath)
  if (resolved.metrics !== false) {
    metrics = setupMetrics(fastify, resolved.metrics, { version: resolved.appVersion, instanceToken: storage.instanceToken, stats: () => storage.stats, groupByErrors: () => groupByErrors, graphs: (): GraphStatus[] => customGraphs?.list() ?? [] })
    requestPath.httpDuration = metrics.httpDuration
  }
  fastify.addHook('onReady', async () => {
    outliers.update(registry.list)
    registerEndpoints()
  })
  fastify.addHook('onClose', async () => {
    // first: a graph's run in progress still writes its value through the storage client
    await customGraphs?.close()
    outliers.stop()
    collector.stop()
    try {
      const lost = await storage.close(resolved.closeTimeoutMs)
      if (lost > 0) log.error(`fastify-monitoring-dashboard: ${lost} records could not be written before close`)
    } finally {
      releaseLock()
    }
  })

  const db = new Kysely<Database>({ dialect: new RemoteDialect(storage) }).withPlugin(new TablePrefixPlugin(resolved.tablePrefix))
  const dashboard = resolved.dashboard
  // `ready` includes the configured dashboard users: a login right after it must work
  const ready = dashboard === false
    ? storage.ready
    : storage.ready.then(async () => { await provisionUsers(db, dashboard.users, log) }).catch((err: unknown) => {
      log.error({ err }, 'fastify-monitoring-dashboard: dashboard users not provisioned')
    })
  customGraphs = new CustomGraphs({ db, log, ready: storage.ready, instanceToken: storage.instanceToken, project: resolved.project ?? DEFAULT_PROJECT })
  const graphs = customGraphs
  const withoutDatabase = (what: string): Error => new StorageUnavailableError(`${what} needs the database, and this process sends its records to the collector at ${remote!.ingestUrl} (remote): use the collector's dashboard and API, and add custom graphs in a process that has the database (its \`database\` and \`project\` options)`)
  const api: MonitorApi = {
    enabled: true,
    version: resolved.appVersion,
    ready,
    get db (): Kysely<Database> {
      if (remote !== undefined) throw withoutDatabase('app.monitor.db')
      return db
    },
    endpoints: () => registry.list.map(({ method, route, level }) => ({ method, route, level })),
    async setMonitorLevel (method, route, level) {
      if (remote !== undefined) throw withoutDatabase('setMonitorLevel')
      if (![0, 1, 2, 3].includes(level)) throw new InvalidOptionError('level', `must be 0, 1, 2 or 3, got ${String(level)}`)
      const endpoint = registry.find(method.toUpperCase(), route)
      if (endpoint === undefined) throw new UnknownEndpointError(`${method} ${route}`)
      if (registration === undefined) throw new StorageUnavailableError('endpoints are registered when the app is ready: call setMonitorLevel after await app.ready()')
      // right after start the endpoint may not have its database row yet (a trial's README snippet failed so)
      await registration
      await storage.setLevel({ index: endpoint.index }, level)
      endpoint.level = level
      outliers.update(registry.list)
    },
    async flush () {
      collector.flush()
      outliers.flush()
      await storage.flush()
    },
    stats: () => storage.stats,
    registry: metrics?.registry,
    addGraph: (name, fn, schedule) => {
      if (remote !== undefined) throw withoutDatabase(`addGraph('${name}')`)
      graphs.add(name, fn, schedule)
    },
    graphs: () => graphs.list()
  }
  fastify.decorate('monitor', api)

  if (dashboard !== false) {
    const setLevel = async (endpoint: { id: number, method: string, route: string, project: string }, level: 0 | 1 | 2 | 3): Promise<void> => {
      // an endpoint only another process serves (or another project's) is changed in the database; that process polls it
      if (endpoint.project === (resolved.project ?? DEFAULT_PROJECT) && registry.find(endpoint.method, endpoint.route) !== undefined) await api.setMonitorLevel(endpoint.method, endpoint.route, level)
      else await storage.setLevel({ endpointId: endpoint.id }, level)
    }
    await fastify.register(async (child) => {
      await dashboardRoutes(child, {
        db,
        options: dashboard,
        tablePrefix: resolved.tablePrefix,
        version: resolved.appVersion,
        databaseKind: () => storage.databaseKind,
        retentionDays: resolved.retentionDays,
        rollupRetentionDays: resolved.rollupRetentionDays,
        groupedProfile: async (endpointId, n, foldLibraries) => await storage.groupedProfile(endpointId, n, foldLibraries),
        ingest: async (batch) => await storage.ingest(batch),
        onIngest: (project, outcome, rows) => metrics?.onIngest(project, outcome, rows),
        adminOnlyRequestValues: resolved.outliers.adminOnlyRequestValues,
        redaction: resolved.outliers.redaction,
        sessionKeyFile: database.kind === 'pglite' && !database.dataDir.startsWith('memory://') ? `${database.dataDir}.session-key` : undefined,
        setLevel
      })
    }, { prefix: dashboard.prefix })
  }
}

/**
 * The Fastify plugin. Register it before your routes.
 *
 * ### Examples
 * ```ts
 * import Fastify from 'fastify'
 * import monitor from 'fastify-monitoring-dashboard'
 *
 * const app = Fastify({ logger: true })
 * await app.register(monitor, { appVersion: '1.4.2', groupBy: (request) => request.headers['x-user'] })
 * ```
 */
const plugin = fp(fastifyMonitoringDashboard, { fastify: '5.x', name: 'fastify-monitoring-dashboard' })

export default plugin
export { plugin as fastifyMonitoringDashboard }
export { errors } from './errors.js'
export { readGitCommit } from './version.js'
export { UNMATCHED_ROUTE } from './options.js'
export { findRequestByExemplarId, type RequestDetail } from './queries/requests.js'
export type { MonitorOptions, MonitorLevel, MetricsOptions } from './options.js'
export type { GroupBy } from './group-by.js'
export type { MonitorApi, MonitoredEndpoint } from './types.js'
export type { Database, Endpoint, StoredRequest } from './db/database.js'
export type { WriterStats } from './protocol.js'
export { buildReport, type Report } from './queries/reports.js'
export { parseSelector, type Selector } from './reports/selector.js'
export { DEFAULT_THRESHOLDS, type ReportThresholds, type EndpointComparison } from './reports/compare.js'
