/**
 * `node --import fastify-monitoring-dashboard/test-monitor`: what the `test` command puts in
 * NODE_OPTIONS, so every process of the app's test suite tracks its tests.
 */
import { installTracker } from './tracker.js'

installTracker()
