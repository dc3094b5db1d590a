import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
// the module's binding, not the global: `globalThis.performance` is an accessor, which V8 calls at every use
// (callgrind: about 170 instructions per read in the hook and as many in the finish subscriber)
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import { resolveGroupBy, type GroupBy } from '../group-by.js'
import type { HttpDurationHistogram } from '../metrics/http-duration.js'
import type { Collector } from './collector.js'
import { kHandlerEndMs, kHandlerReturnMs, kHandlerStartMs } from './evidence.js'
import type { OutlierRecorder } from './outlier-recorder.js'
import { kEndpoints, type EndpointRegistry, type EndpointState, type RouteEndpoints, type RouteFunction } from './endpoints.js'

/** The status stored for a request whose client went away before its response was sent (nginx's "client closed request"). */
export const ABORTED_STATUS = 499

/** Node's own channel, published from the listener every `http`/`https` response already has: no listener of ours per request. */
const RESPONSE_FINISH = 'http.server.response.finish'

/**
 * Reply fields, all set by the `onRequest` hook in one order, so every reply that hook sees changes shape the
 * same way (the code after it sees one shape). Not `decorateReply`: Fastify sets decorated fields in the
 * reply's constructor by a loop over their keys, a megamorphic store per field and request (callgrind:
 * about 250 instructions each, 1,270 per request for these five).
 */
const kStartMs = Symbol('fastify-monitoring-dashboard.startMs')
/** The request's endpoint, set by the route's wrapped handler: `null` until then, `false` when its method is not monitored. */
const kEndpoint = Symbol('fastify-monitoring-dashboard.endpoint')

type MonitoredReply = FastifyReply & {
  [kStartMs]: number
  [kEndpoint]: EndpointState | false | null
  [kHandlerStartMs]: number
  [kHandlerEndMs]: number
  [kHandlerReturnMs]: number
}
/** The user's handler behind our wrapper, so a route copied by Fastify (HEAD for GET) is wrapped once, not twice. */
const kWrapped = Symbol('fastify-monitoring-dashboard.wrapped')

type Handler = RouteOptions['handler'] & { [kWrapped]?: RouteOptions['handler'] }

interface FinishMessage { request: IncomingMessage, socket: Socket }

export interface RequestPathDeps {
  registry: EndpointRegistry
  collector: Collector
  groupBy: GroupBy | undefined
  log: FastifyBaseLogger
  /** The Prometheus duration histogram, when the exporter is on; set after install (the exporter's own route must meet the `onRoute` hook installed here). */
  httpDuration: HttpDurationHistogram | undefined
  /** An endpoint seen for the first time after start (a route registered before the plugin). */
  onNewEndpoint: (endpoint: EndpointState) => void
  /** The user's groupBy threw (counted as a metric; logged here once per endpoint). */
  onGroupByError: () => void
  /** Level 2 and 3: outlier detection and evidence. */
  outliers: OutlierRecorder
}

/**
 * The request path, without an `onResponse` hook (which makes Fastify add response listeners and run
 * its hook runner for every request of every route):
 *
 * - one global `onRequest` hook, the plugin's first, stamps the start time and links the raw request to
 *   its reply. Global, so that requests answered by the app's own `onRequest`/`preHandler` hooks (401,
 *   403, 429), by validation (400) and by the not-found handler (404) are seen too;
 * - the handler of every monitored route is wrapped in `onRoute`: it names the request's endpoint
 *   without a lookup, and times the handler for outlier evidence only while that endpoint is at level
 *   ≥ 2 (routes at level ≤ 1 pay one comparison);
 * - the end of the request comes from Node's `http.server.response.finish` diagnostics channel; a
 *   request whose client goes away first is seen when its socket closes (one listener per connection,
 *   not per request) and stored as {@link ABORTED_STATUS}. Requests that reach Fastify outside Node's
 *   HTTP/1 server (`inject()`, HTTP/2) get a `finish` listener of their own instead.
 *
 * What is recorded per request: a few numbers in the collector's columns (see {@link Collector}).
 */
export function installRequestPath (fastify: FastifyInstance, deps: RequestPathDeps): void {
  const { registry, collector, groupBy, log, onNewEndpoint, onGroupByError, outliers } = deps
  // per app: two apps in one process never read each other's requests from the shared channel
  const kReply = Symbol('fastify-monitoring-dashboard.reply')
  const kInFlight = Symbol('fastify-monitoring-dashboard.inFlight')
  const kAddress = Symbol('fastify-monitoring-dashboard.address')
  const kEarlier = Symbol('fastify-monitoring-dashboard.earlier')
  type Raw = IncomingMessage & { [kReply]?: MonitoredReply }
  /**
   * A connection's requests not yet finished: the latest in `kInFlight`; when a client pipelines (a request
   * arrives before the one before it finished), the earlier ones in `kEarlier`, a set made only then.
   */
  type TrackedSocket = Socket & { [kInFlight]?: MonitoredReply | null, [kEarlier]?: Set<MonitoredReply>, [kAddress]?: string }

  // wall-clock ms as performance.now() plus an offset read again by the first request to end a second after
  // the last reading (so a step of the system clock shows within a second): Date.now() is a call into V8's
  // runtime, about 0.17 µs per request; a timer would wake an idle app every second
  let wallOffsetMs = 0
  let nextClockReadMs = 0
  const readClock = (nowMs: number): void => {
    wallOffsetMs = Date.now() - nowMs
    nextClockReadMs = nowMs + 1000
  }

  /** The endpoint of a request that did not reach a wrapped handler: 404s, requests answered by hooks or validation, routes registered before the plugin. */
  function endpointOf (request: FastifyRequest): EndpointState | undefined {
    if (request.is404) return registry.ignores(request.method, '') ? undefined : registry.unmatched
    const config = request.routeOptions.config as { [kEndpoints]?: RouteEndpoints, url?: string, monitor?: boolean }
    const endpoints = config[kEndpoints]
    if (endpoints !== undefined) return endpoints?.[request.method]
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

  function finish (reply: MonitoredReply, aborted: boolean): void {
    const known = reply[kEndpoint]
    const endpoint = known === null ? endpointOf(reply.request) : known
    if (endpoint === undefined || endpoint === false) return
    // once: a response that still finishes after its client went away is not counted again
    reply[kEndpoint] = false
    const end = performance.now()
    if (end >= nextClockReadMs) readClock(end)
    const durationMs = end - reply[kStartMs]
    const now = end + wallOffsetMs
    const statusCode = aborted ? ABORTED_STATUS : reply.statusCode
    let seq = 0
    if (endpoint.level === 0) {
      collector.seen(endpoint.index, now)
    } else {
      const request = reply.request
      seq = collector.record(endpoint.index, now - durationMs, durationMs, statusCode,
        groupBy === undefined ? null : group(endpoint, request), clientAddress(request))
      if (endpoint.level >= 2) outliers.observe(endpoint, request, reply, statusCode, durationMs, now, end)
    }
    // Prometheus sees every request whatever the endpoint's storage level; stored ones become exemplars
    deps.httpDuration?.observe(endpoint, reply.request.method, statusCode, durationMs / 1000, seq, now)
  }

  /**
   * `request.ip`, read once per connection where it can be: without an `X-Forwarded-For` header Fastify's
   * `ip` is the socket's address whatever `trustProxy` says, and reading that from the socket costs about
   * 0.2 µs per request (a megamorphic lookup in net's `_getpeername`).
   */
  function clientAddress (request: FastifyRequest): string | undefined {
    const raw = request.raw
    const cached = raw.headers['x-forwarded-for'] === undefined ? (raw.socket as TrackedSocket | null)?.[kAddress] : undefined
    return cached ?? request.ip
  }

  /** The client went away: every request of the connection that had not finished is stored as aborted, the earliest first. */
  function onSocketClose (this: TrackedSocket): void {
    const earlier = this[kEarlier]
    if (earlier !== undefined) {
      this[kEarlier] = undefined
      for (const reply of earlier) finish(reply, true)
    }
    const reply = this[kInFlight]
    if (reply === undefined || reply === null) return
    this[kInFlight] = null
    finish(reply, true)
  }

  const onResponseFinish = (message: unknown): void => {
    const { request, socket } = message as FinishMessage
    const reply = (request as Raw)[kReply]
    if (reply === undefined) return
    const tracked = socket as TrackedSocket | null
    if (tracked !== null) {
      if (tracked[kInFlight] === reply) tracked[kInFlight] = null
      else tracked[kEarlier]?.delete(reply)
    }
    finish(reply, false)
  }

  fastify.addHook('onRequest', function stamp (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const monitored = reply as MonitoredReply
    monitored[kStartMs] = performance.now()
    monitored[kEndpoint] = null
    monitored[kHandlerStartMs] = Number.NaN
    monitored[kHandlerEndMs] = Number.NaN
    monitored[kHandlerReturnMs] = Number.NaN
    const raw = request.raw
    if (raw instanceof IncomingMessage) {
      (raw as Raw)[kReply] = monitored
      const socket = raw.socket as TrackedSocket
      const previous = socket[kInFlight]
      // first request on this connection: one listener for its lifetime, whatever the number of requests
      if (previous === undefined) {
        socket.on('close', onSocketClose)
        socket[kAddress] = socket.remoteAddress
      } else if (previous !== null) {
        // pipelined: the one before has not finished, and is still the client's to lose
        (socket[kEarlier] ??= new Set()).add(previous)
      }
      socket[kInFlight] = monitored
    } else {
      reply.raw.once('finish', () => { finish(monitored, false) })
    }
    done()
  })

  fastify.addHook('onRoute', (routeOptions) => {
    registry.onRoute(routeOptions)
    const endpoints = (routeOptions.config as { [kEndpoints]?: RouteEndpoints } | undefined)?.[kEndpoints]
    const original = routeOptions.handler as Handler
    const handler = original[kWrapped] ?? original
    // ignored routes (config.monitor false, ignoreRoutes, /metrics, the dashboard) keep their own handler
    routeOptions.handler = endpoints === null || endpoints === undefined ? handler : wrap(handler, endpoints)
  })

  subscribe(RESPONSE_FINISH, onResponseFinish)
  fastify.addHook('onClose', async () => {
    unsubscribe(RESPONSE_FINISH, onResponseFinish)
  })
}

/** The route's handler, naming the request's endpoint for {@link installRequestPath} and timing it at level ≥ 2. */
function wrap (handler: Handler, endpoints: Record<string, EndpointState>): Handler {
  const methods = Object.keys(endpoints)
  const only = methods.length === 1 ? endpoints[methods[0]!]! : undefined
  const monitored = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): unknown {
    const endpoint = only ?? endpoints[request.method]
    const timed = reply as MonitoredReply
    timed[kEndpoint] = endpoint ?? false
    if (endpoint === undefined || endpoint.level < 2) return (handler as RouteFunction).call(this, request as never, reply as never)
    return timedCall(this, handler, request, timed)
  } as unknown as Handler
  monitored[kWrapped] = handler
  return monitored
}

/**
 * Level ≥ 2: the handler's start and end in ms from the request's start, for outlier evidence. An async
 * handler ends when its promise settles; the promise itself goes back to Fastify unchanged.
 */
function timedCall (self: FastifyInstance, handler: Handler, request: FastifyRequest, reply: MonitoredReply): unknown {
  reply[kHandlerStartMs] = performance.now() - reply[kStartMs]
  const end = (): void => { reply[kHandlerEndMs] = performance.now() - reply[kStartMs] }
  let result: unknown
  try {
    result = (handler as RouteFunction).call(self, request as never, reply as never)
  } catch (err) {
    end()
    throw err
  } finally {
    // the thread ran only this handler until here: its stack samples are this request's (sampler.ts)
    reply[kHandlerReturnMs] = performance.now() - reply[kStartMs]
  }
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    (result as PromiseLike<unknown>).then(end, end)
  } else {
    end()
  }
  return result
}
