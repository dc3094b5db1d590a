import { Counter, Gauge, type Registry } from 'prom-client'
import type { GraphStatus } from '../graphs/custom-graphs.js'
import { PLUGIN_METRIC_PREFIX } from './plugin-health.js'

/**
 * Custom graphs in Prometheus: the last value this process collected per graph (a gauge, so Grafana can
 * plot it too) and its failed runs. `graph` is a name the app chose in code: as bounded as its routes.
 */
export function registerGraphMetrics (registry: Registry, graphs: () => GraphStatus[]): void {
  new Gauge({
    name: `${PLUGIN_METRIC_PREFIX}custom_graph_value`,
    help: 'The last value of a custom graph (app.monitor.addGraph) collected by this process',
    labelNames: ['graph'],
    registers: [registry],
    collect () {
      for (const graph of graphs()) if (graph.lastValue !== null) this.set({ graph: graph.name }, graph.lastValue)
    }
  })
  const counted = new Map<string, number>()
  new Counter({
    name: `${PLUGIN_METRIC_PREFIX}custom_graph_errors_total`,
    help: 'Runs of a custom graph that threw, returned no finite number or timed out',
    labelNames: ['graph'],
    registers: [registry],
    collect () {
      // counters only go up by inc(): add what happened since the last scrape
      for (const graph of graphs()) {
        const before = counted.get(graph.name)
        if (before === undefined) this.inc({ graph: graph.name }, 0)
        if (graph.errors > (before ?? 0)) this.inc({ graph: graph.name }, graph.errors - (before ?? 0))
        counted.set(graph.name, graph.errors)
      }
    }
  })
}
