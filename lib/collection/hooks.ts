import type { FastifyBaseLogger, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { resolveGroupBy, type GroupBy } from '../group-by.js'
import type { HttpDurationHistogram } from '../metrics/http-duration.js'
import type { Collector } from './collector.js'
import type { OutlierRecorder } from './outlier-recorder.js'
import { kEndpoints, type EndpointRegistry, type EndpointState, type RouteEndpoints } from './endpoints.js'

export type ResponseHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/**
 * The one hook on the request path. It runs after the response is sent, reads what Fastify
 * already measured (`reply.elapsedTime`, high-resolution, from the start of the request), and
 * writes one row into the collector: no allocation beyond that, no I/O, no await.
 */
export function createResponseHook (deps: {
  registry: EndpointRegistry
  collector: Collector
  groupBy: GroupBy | undefined
  log: FastifyBaseLogger
  /** The Prometheus duration histogram, when the exporter is on. */
  httpDuration: HttpDurationHistogram | undefined
  /** An endpoint seen for the first time after start (a route registered before the plugin). */
  onNewEndpoint: (endpoint: EndpointState) => void
  /** The user's groupBy threw (counted as a metric; logged here once per endpoint). */
  onGroupByError: () => void
  /** Level 2 and 3: outlier detection and evidence. */
  outliers: OutlierRecorder
}): ResponseHook {
  const { registry, collector, groupBy, log, onNewEndpoint, onGroupByError, httpDuration, outliers } = deps

  function endpointOf (request: FastifyRequest): EndpointState | undefined {
    const config = request.routeOptions.config as { [kEndpoints]?: RouteEndpoints, url?: string, method?: string, monitor?: boolean }
    const endpoints = config[kEndpoints]
    if (endpoints !== undefined) return endpoints?.[request.method]
    if (request.is404) return registry.ignores(request.method, '') ? undefined : registry.unmatched
    // a route registered before the plugin: onRoute never saw it
    const route = config.url ?? ''
    if (config.monitor === false || registry.ignores(request.method, route)) return undefined
    const known = registry.find(request.method, route)
    if (known !== undefined) return known
    const added = registry.add(request.method, route)
    onNewEndpoint(added)
    return added
  }

  function group (endpoint: EndpointState, request: FastifyRequest): string | null {
    try {
      return resolveGroupBy(groupBy, request)
    } catch (err) {
      onGroupByError()
      if (!endpoint.groupByFailed) {
        endpoint.groupByFailed = true
        log.warn({ err, route: endpoint.route }, 'fastify-monitoring-dashboard: groupBy threw; requests of this endpoint are stored without a group (logged once per endpoint)')
      }
      return null
    }
  }

  return function onResponse (request, reply, done) {
    const endpoint = endpointOf(request)
    if (endpoint !== undefined) {
      const now = Date.now()
      const durationMs = reply.elapsedTime
      const statusCode = reply.statusCode
      let seq = 0
      if (endpoint.level === 0) {
        collector.seen(endpoint.index, now)
      } else {
        seq = collector.record(endpoint.index, now - durationMs, durationMs, statusCode,
          groupBy === undefined ? null : group(endpoint, request), request.ip)
        if (endpoint.level >= 2) outliers.observe(endpoint, request, reply, durationMs, now)
      }
      // Prometheus sees every request whatever the endpoint's storage level; stored ones become exemplars
      httpDuration?.observe(request.method, endpoint.route, statusCode, durationMs / 1000, seq, now)
    }
    done()
  }
}
