import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { WriterStats } from '../protocol.js'

export const PLUGIN_METRIC_PREFIX = 'fastify_monitor_'

/**
 * The plugin's own health, under `fastify_monitor_`: what is buffered, written, dropped, write
 * errors, batch write duration, whether the database answers, and the app's version as an info
 * metric (a label on one series, not on every series).
 */
export function registerPluginHealth (registry: Registry, deps: { version: string, stats: () => WriterStats, groupByErrors: () => number }):
{ onBatchWritten: (durationMs: number) => void } {
  const counter = (name: string, help: string, total: () => number): void => {
    let counted = 0
    // prom-client counters only go up by inc(): add what happened since the last scrape
    new Counter({
      name: `${PLUGIN_METRIC_PREFIX}${name}`,
      help,
      registers: [registry],
      collect () {
        const now = total()
        if (now > counted) this.inc(now - counted)
        counted = now
      }
    })
  }
  new Gauge({
    name: `${PLUGIN_METRIC_PREFIX}app_info`,
    help: 'The monitored app; its version is a label',
    labelNames: ['version'],
    // summed over cluster workers an info metric would count workers; it stays 1
    aggregator: 'max',
    registers: [registry]
  }).set({ version: deps.version }, 1)
  new Gauge({
    name: `${PLUGIN_METRIC_PREFIX}records_buffered`,
    help: 'Recorded requests waiting to be written to the database (or sent to the collector, with remote)',
    registers: [registry],
    collect () { this.set(deps.stats().buffered) }
  })
  new Gauge({
    name: `${PLUGIN_METRIC_PREFIX}database_up`,
    help: '1 when the last write to the monitoring database (or send to the collector) succeeded, else 0',
    registers: [registry],
    // over cluster workers: up only when every worker's writes succeed
    aggregator: 'min',
    collect () { this.set(deps.stats().databaseUp ? 1 : 0) }
  })
  counter('records_written_total', 'Recorded requests written to the database (or taken by the collector)', () => deps.stats().written)
  counter('records_dropped_total', 'Recorded requests dropped: buffer full, or not written before close', () => deps.stats().dropped)
  counter('write_errors_total', 'Failed attempts to write to the monitoring database (or to send to the collector)', () => deps.stats().writeErrors)
  counter('group_by_errors_total', 'Requests whose groupBy callback threw (stored without a group)', deps.groupByErrors)
  const batchDuration = new Histogram({
    name: `${PLUGIN_METRIC_PREFIX}batch_write_duration_seconds`,
    help: 'Time to write one batch of records to the database',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry]
  })
  return { onBatchWritten: (durationMs) => batchDuration.observe(durationMs / 1000) }
}
