import type { RouteOptions } from 'fastify'
import { UNMATCHED_ROUTE, type MonitorLevel } from '../options.js'
import type { EndpointKey } from '../protocol.js'

/** What the request thread knows of one endpoint (method + URL template). */
export interface EndpointState {
  readonly index: number
  readonly method: string
  readonly route: string
  level: MonitorLevel
  /** The user's groupBy threw for this endpoint already: logged once, not again. */
  groupByFailed: boolean
  /**
   * The route's own hooks (given in its route options): with its handler, the code a request of this
   * endpoint runs, which its stack samples are attributed by.
   */
  hooks: readonly RouteFunction[]
  /**
   * The route's own handler, as given (the request sees the plugin's wrapper, whose code is the same
   * for every route); undefined for a route registered before the plugin, whose handler is its own.
   */
  handler: RouteFunction | undefined
}

/** A handler or hook of a route. */
export type RouteFunction = (...args: never[]) => unknown

const ROUTE_HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onSend', 'onResponse', 'onTimeout', 'onError', 'onRequestAbort'] as const

function routeHooks (routeOptions: RouteOptions): RouteFunction[] {
  const hooks: RouteFunction[] = []
  for (const name of ROUTE_HOOKS) {
    const value = (routeOptions as unknown as Record<string, unknown>)[name]
    for (const hook of Array.isArray(value) ? value : [value]) if (typeof hook === 'function') hooks.push(hook as RouteFunction)
  }
  return hooks
}

/** Per-method endpoints of one route, kept in the route's config under this symbol. */
export const kEndpoints = Symbol('fastify-monitoring-dashboard.endpoints')
export type RouteEndpoints = Record<string, EndpointState> | null

export const UNMATCHED_METHOD = '*'

/**
 * Every endpoint the app has, in discovery order; an endpoint's index is its id on this thread.
 * Index 0 is the one endpoint that counts requests matching no route.
 */
export class EndpointRegistry {
  readonly #byKey = new Map<string, EndpointState>()
  readonly list: EndpointState[] = []
  readonly unmatched: EndpointState
  readonly #defaultLevel: MonitorLevel
  readonly #ignoreMethods: ReadonlySet<string>
  readonly #ignoreRoutes: ReadonlySet<string>
  readonly #ownPrefix: string | undefined

  /** `ownPrefix`: where the plugin serves its dashboard; those routes are never endpoints. */
  constructor (opts: { defaultMonitorLevel: MonitorLevel, ignoreMethods: ReadonlySet<string>, ignoreRoutes: ReadonlySet<string> }, ownPrefix?: string) {
    this.#defaultLevel = opts.defaultMonitorLevel
    this.#ignoreMethods = opts.ignoreMethods
    this.#ignoreRoutes = opts.ignoreRoutes
    this.#ownPrefix = ownPrefix
    this.unmatched = this.add(UNMATCHED_METHOD, UNMATCHED_ROUTE)
  }

  ignores (method: string, route: string): boolean {
    return this.#ignoreMethods.has(method) || this.#ignoreRoutes.has(route) ||
      (this.#ownPrefix !== undefined && (route === this.#ownPrefix || route.startsWith(`${this.#ownPrefix}/`)))
  }

  add (method: string, route: string): EndpointState {
    const key = `${method} ${route}`
    let state = this.#byKey.get(key)
    if (state === undefined) {
      state = { index: this.list.length, method, route, level: this.#defaultLevel, groupByFailed: false, hooks: [], handler: undefined }
      this.list.push(state)
      this.#byKey.set(key, state)
    }
    return state
  }

  find (method: string, route: string): EndpointState | undefined {
    return this.#byKey.get(`${method} ${route}`)
  }

  /**
   * `onRoute` hook: registers the route's endpoints and stores them in its config, where the
   * response hook finds them without a lookup. `config.monitor === false` opts a route out.
   */
  onRoute (routeOptions: RouteOptions): void {
    const config = (routeOptions.config ?? {}) as Record<string | symbol, unknown>
    const methods = Array.isArray(routeOptions.method) ? routeOptions.method : [routeOptions.method]
    let endpoints: RouteEndpoints = null
    if (config.monitor !== false) {
      for (const method of methods) {
        if (this.ignores(method, routeOptions.url)) continue
        endpoints ??= {}
        const endpoint = this.add(method, routeOptions.url)
        endpoint.hooks = routeHooks(routeOptions)
        endpoint.handler = routeOptions.handler as RouteFunction
        endpoints[method] = endpoint
      }
    }
    routeOptions.config = { ...config, [kEndpoints]: endpoints } as RouteOptions['config']
  }

  keys (): EndpointKey[] {
    return this.list.map(({ index, method, route }) => ({ index, method, route }))
  }
}
