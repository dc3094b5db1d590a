import type { Registry } from 'prom-client'
import type { Exemplar } from './http-duration.js'

export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8'

interface MetricJson {
  name: string
  help: string
  type: string
  values: Array<{ value: number, labels: Record<string, string | number>, metricName?: string, exemplar?: Exemplar | null }>
}

function escapeLabel (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function formatValue (value: number): string {
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return Number.isNaN(value) ? 'NaN' : String(value)
}

function formatLabels (labels: Record<string, string | number>): string {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(String(value))}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/** True when a scraper asks for OpenMetrics (Prometheus does by default). */
export function wantsOpenMetrics (accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/openmetrics-text')
}

/**
 * The registries in the OpenMetrics text format. prom-client can render it, but does so by renaming
 * counter objects in place (dropping `_total`), which would corrupt the Prometheus-format output of
 * the same registry; so the snapshot prom-client exposes as JSON is rendered here instead.
 * A counter's family is named without `_total`, its sample with it, histogram buckets carry their
 * exemplar (the latest stored request that fell in them), and the text ends with `# EOF`.
 */
export async function renderOpenMetrics (registries: Registry[]): Promise<string> {
  const families = (await Promise.all(registries.map(async (registry) => await registry.getMetricsAsJSON()))).flat() as unknown as MetricJson[]
  const lines: string[] = []
  for (const family of families) {
    const isCounter = family.type === 'counter'
    const name = isCounter ? family.name.replace(/_total$/, '') : family.name
    const type = ['counter', 'gauge', 'histogram', 'summary'].includes(family.type) ? family.type : 'unknown'
    lines.push(`# TYPE ${name} ${type}`, `# HELP ${name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`)
    for (const sample of family.values) {
      const sampleName = sample.metricName ?? (isCounter ? `${name}_total` : name)
      // prom-client's own metrics carry exemplar: null
      const exemplar = sample.exemplar === undefined || sample.exemplar === null
        ? ''
        : ` # ${formatLabels(sample.exemplar.labelSet)} ${formatValue(sample.exemplar.value)} ${sample.exemplar.timestamp.toFixed(3)}`
      lines.push(`${sampleName}${formatLabels(sample.labels)} ${formatValue(sample.value)}${exemplar}`)
    }
  }
  lines.push('# EOF', '')
  return lines.join('\n')
}
