import type { Kysely } from 'kysely'
import type { Registry } from 'prom-client'
import type { MonitorLevel } from './options.js'
import type { Database } from './db/database.js'
import type { WriterStats } from './protocol.js'
import type { GraphFunction, GraphSchedule, GraphStatus } from './graphs/custom-graphs.js'

/** An endpoint as `app.monitor.endpoints()` lists it. */
export interface MonitoredEndpoint {
  method: string
  route: string
  level: MonitorLevel
}

/**
 * What the plugin adds to the Fastify instance as `app.monitor`.
 *
 * ### Examples
 * ```ts
 * await app.monitor.setMonitorLevel('GET', '/users/:id', 3)
 * await app.monitor.flush()
 * const rows = await app.monitor.db.selectFrom('request').selectAll().limit(10).execute()
 * ```
 */
export interface MonitorApi {
  /** False when the plugin was registered with `enabled: false`. */
  readonly enabled: boolean
  /** The version stored with every request (from `git` or `appVersion`). */
  readonly version: string
  /** Resolves once the database is reachable and its schema is current. */
  readonly ready: Promise<void>
  /** Read access to the monitoring database (typed kysely; table names without the prefix). */
  readonly db: Kysely<Database>
  /** Every endpoint discovered so far, with its monitoring level. */
  endpoints: () => MonitoredEndpoint[]
  /** Changes an endpoint's level now in this process and, in the database, for every process sharing it. */
  setMonitorLevel: (method: string, route: string, level: MonitorLevel) => Promise<void>
  /** Resolves once every request recorded so far is in the database, with the outliers whose evidence is complete. */
  flush: () => Promise<void>
  /** The writer's counters. */
  stats: () => WriterStats
  /** The prom-client registry served on the metrics path (add your own metrics to it); undefined with `metrics: false`. */
  readonly registry: Registry | undefined
  /**
   * Adds a custom graph: `fn` runs on the schedule (`{ cron }` or `{ everySeconds }`) and its value is
   * stored with its time, shown in the dashboard and exported as `fastify_monitor_custom_graph_value`.
   * Throws `FST_MONITORING_GRAPH` for a bad argument or a name already added. Does nothing when disabled.
   *
   * ```ts
   * app.monitor.addGraph('registered users', async () => await db.countUsers(), { cron: '*\/5 * * * *' })
   * app.monitor.addGraph('queue depth', () => queue.length, { everySeconds: 10 })
   * ```
   */
  addGraph: (name: string, fn: GraphFunction, schedule: GraphSchedule) => void
  /** This process's custom graphs: last value, last error, runs and failures. */
  graphs: () => GraphStatus[]
}

declare module 'fastify' {
  interface FastifyInstance {
    monitor: MonitorApi
  }
  interface FastifyContextConfig {
    /** `false` keeps this route out of monitoring. */
    monitor?: boolean
  }
}
