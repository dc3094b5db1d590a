import { Counter, type Registry } from 'prom-client'
import { PLUGIN_METRIC_PREFIX } from './plugin-health.js'

/** How an ingest request ended: stored, a batch already stored (a retry), refused (4xx), or failed here (5xx). */
export type IngestOutcome = 'stored' | 'duplicate' | 'refused' | 'failed'

/**
 * Projects named as a label, at most; later ones are counted under `other`. Projects are made by admins or
 * by holders of the collector's own token, so there are few, but a label set must stay bounded whatever happens.
 */
export const MAX_PROJECT_LABELS = 100

/**
 * A collector's view of its senders: ingest requests by project and outcome, and the rows stored. The
 * project is the one the token grants or the batch names; empty when none is known (a refused token).
 */
export function registerIngestMetrics (registry: Registry): (project: string, outcome: IngestOutcome, rows: number) => void {
  const batches = new Counter({
    name: `${PLUGIN_METRIC_PREFIX}ingest_batches_total`,
    help: 'Batches other processes sent to the ingest route, by project and outcome (stored, duplicate, refused, failed)',
    labelNames: ['project', 'outcome'],
    registers: [registry]
  })
  const rows = new Counter({
    name: `${PLUGIN_METRIC_PREFIX}ingest_rows_total`,
    help: 'Requests in the batches other processes sent that were stored (a retried batch counts once), by project',
    labelNames: ['project'],
    registers: [registry]
  })
  const labelled = new Set<string>()
  return (project, outcome, stored) => {
    if (!labelled.has(project)) {
      if (labelled.size >= MAX_PROJECT_LABELS) project = 'other'
      else labelled.add(project)
    }
    batches.inc({ project, outcome })
    if (stored > 0) rows.inc({ project }, stored)
  }
}
