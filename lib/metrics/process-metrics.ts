import { Registry, collectDefaultMetrics } from 'prom-client'

/** A metric every prom-client default set has; its presence in a registry means the set is already there. */
const DEFAULT_METRIC_PROBE = 'process_cpu_user_seconds_total'

let processRegistry: Registry | undefined

/**
 * prom-client's runtime metrics (`nodejs_*`, `process_*`), collected once per process into a registry
 * of their own. `collectDefaultMetrics` starts a GC observer and an event-loop delay monitor that live
 * as long as the process and hold the registry they were given (prom-client 15 offers no way to stop
 * them). Given an app's registry, they would keep that registry, its collect callbacks, the logger and
 * so the whole Fastify instance alive after `app.close()`; and a test suite building 50 apps would run
 * 50 monitors. They describe the process, not an app, so every app serves this one set.
 */
export function sharedProcessRegistry (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/**
 * The registries an app's metrics route serves: its own, then the process's runtime metrics unless
 * they are off or the app's registry already holds a default set (a caller's registry may).
 */
export function servedRegistries (registry: Registry, defaultMetrics: boolean): Registry[] {
  if (!defaultMetrics || registry.getSingleMetric(DEFAULT_METRIC_PROBE) !== undefined) return [registry]
  return [registry, sharedProcessRegistry()]
}
