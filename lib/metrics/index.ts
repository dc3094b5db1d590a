import cluster from 'node:cluster'
import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { AggregatorRegistry, Counter, Registry, register as globalRegistry } from 'prom-client'
import type { ResolvedMetrics } from '../options.js'
import type { WriterStats } from '../protocol.js'
import { HttpDurationHistogram } from './http-duration.js'
import { OPENMETRICS_CONTENT_TYPE, renderOpenMetrics, wantsOpenMetrics } from './openmetrics.js'
import { registerPluginHealth } from './plugin-health.js'
import { servedRegistries } from './process-metrics.js'
import { registerGraphMetrics } from './custom-graphs.js'
import { registerIngestMetrics, type IngestOutcome } from './ingest.js'
import type { GraphStatus } from '../graphs/custom-graphs.js'

/** What the request path and the storage client feed into the exporter. */
export interface Metrics {
  readonly registry: Registry
  readonly httpDuration: HttpDurationHistogram
  onBatchWritten: (durationMs: number) => void
  /** An outlier was found on a route (level ≥ 2), stored or beyond the hourly cap. */
  onOutlier: (method: string, route: string) => void
  /** A collector's ingest route answered a batch (see ingest.ts). */
  onIngest: (project: string, outcome: IngestOutcome, rows: number) => void
}

function sameToken (given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * Builds the metrics in the caller's registry (or a new one, so two apps in one process never
 * collide) and serves them on `options.path`, outside monitoring itself: in the Prometheus text
 * format, or OpenMetrics when the scraper's Accept header asks for it.
 */
export function setupMetrics (fastify: FastifyInstance, options: ResolvedMetrics, deps: { version: string, instanceToken: string, stats: () => WriterStats, groupByErrors: () => number, graphs: () => GraphStatus[] }): Metrics {
  const registry = options.registry ?? new Registry()
  const httpDuration = new HttpDurationHistogram(options.buckets, deps.instanceToken)
  registry.registerMetric(httpDuration as never)
  const { onBatchWritten } = registerPluginHealth(registry, deps)
  registerGraphMetrics(registry, deps.graphs)
  // the runtime metrics are the process's: one set, outside this app (see process-metrics.ts)
  const served = servedRegistries(registry, options.defaultMetrics)
  if (options.cluster && cluster.isWorker) {
    // prom-client answers the primary's AggregatorRegistry with these registries' metrics; a worker
    // only listens for the primary's requests once an AggregatorRegistry was constructed in it
    AggregatorRegistry.setRegistries([...new Set([...served, globalRegistry])])
    // eslint-disable-next-line no-new
    new AggregatorRegistry()
    // the aggregator's list is process-wide: leave nothing of this app in it
    fastify.addHook('onClose', async () => { AggregatorRegistry.setRegistries([globalRegistry]) })
  }

  const expected = options.token === undefined ? undefined : `Bearer ${options.token}`
  fastify.get(options.path, { config: { monitor: false }, logLevel: 'warn' }, async (request, reply) => {
    if (expected !== undefined && !sameToken(request.headers.authorization ?? '', expected)) {
      return await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'a bearer token is required' })
    }
    // a caller's OpenMetrics registry renders with its # EOF: the families are joined here instead
    if (wantsOpenMetrics(request.headers.accept) || registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE) {
      return await reply.type(OPENMETRICS_CONTENT_TYPE).send(await renderOpenMetrics(served))
    }
    const texts = await Promise.all(served.map(async (r) => await r.metrics()))
    return await reply.type(registry.contentType).send(texts.join(''))
  })
  // method and route (the URL template) name an endpoint, bounded like http_request_duration_seconds' own labels
  const outliers = new Counter({ name: 'fastify_monitor_outliers_total', help: 'Requests slower than their endpoint\'s outlier threshold (endpoints at level 2 or 3).', labelNames: ['method', 'route'], registers: [registry] })
  const onIngest = registerIngestMetrics(registry)
  return { registry, httpDuration, onBatchWritten, onOutlier: (method, route) => { outliers.inc({ method, route }) }, onIngest }
}
