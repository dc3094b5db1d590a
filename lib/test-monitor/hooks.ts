import type { FastifyInstance, FastifyRequest } from 'fastify'
import { TEST_HEADER } from './results.js'
import type { TestTracker, TrackedTest } from './tracker.js'

/**
 * In a test process run by the `test` command (the tracker is preloaded), every request the app
 * answers is counted for the test that made it: the test named by the request's header (a `fetch`
 * from a test of this process) or the test whose code is running (`app.inject`). Installed only
 * there, so an app in production carries none of it, and also when monitoring is `enabled: false`,
 * as apps often have it in their tests.
 */
export function addTestMonitorHooks (fastify: FastifyInstance, tracker: TestTracker): void {
  tracker.active = true
  const testOf = new WeakMap<FastifyRequest, TrackedTest>()
  fastify.addHook('onRequest', (request, _reply, done) => {
    const named = request.headers[TEST_HEADER]
    const test = typeof named === 'string' && /^[0-9]{1,9}$/.test(named) ? tracker.byKey(Number(named)) : tracker.current()
    if (test !== undefined) testOf.set(request, test)
    done()
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    const test = testOf.get(request)
    const config = request.routeOptions.config as { monitor?: boolean } | undefined
    // the app's routes only: not a 404 and not the dashboard's own routes
    if (test !== undefined && !request.is404 && config?.monitor !== false && request.routeOptions.url !== undefined) {
      tracker.record(test, request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime)
    }
    done()
  })
}
