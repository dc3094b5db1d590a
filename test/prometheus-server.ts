import { spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, tmpDir, until } from './helpers.js'

/** One series of an instant query's answer. */
export interface InstantSample { metric: Record<string, string>, value: [number, string] }

/** A real Prometheus started by {@link startPrometheus}. */
export interface PrometheusServer {
  /** Runs an instant query; a PromQL error rejects (it never reads as "no data"). */
  query: (expr: string) => Promise<InstantSample[]>
  /** The values of one label over the series a selector matches (what Grafana's label_values() asks). */
  labelValues: (label: string, selector: string) => Promise<string[]>
  /** The exemplars stored for the series an expression selects, in the last `seconds`. */
  exemplars: (expr: string, seconds: number) => Promise<Array<{ seriesLabels: Record<string, string>, exemplars: Array<{ labels: Record<string, string>, value: string }> }>>
  /** The loaded rules, each with its evaluation health. */
  rules: () => Promise<Array<{ name: string, type: 'recording' | 'alerting', query: string, health: string, lastError?: string }>>
  stop: () => Promise<void>
}

/**
 * Starts Debian's `prometheus` on a free loopback port with a temporary TSDB, scraping each job's target
 * every second and evaluating the given rule files every second.
 *
 * ### Examples
 * ```ts
 * const prometheus = await startPrometheus({ jobs: { app: '127.0.0.1:3000' } })
 * await prometheus.query('up')
 * ```
 */
export async function startPrometheus (options: { jobs: Record<string, string>, ruleFiles?: string[], flags?: string[] }): Promise<PrometheusServer> {
  const dir = tmpDir()
  writeFileSync(join(dir, 'prometheus.yml'), `
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ${JSON.stringify(options.ruleFiles ?? [])}
scrape_configs:
${Object.entries(options.jobs).map(([job, target]) => `  - job_name: ${job}\n    static_configs: [{ targets: ['${target}'] }]`).join('\n')}
`)
  // freePort's port can be taken before Prometheus binds it (another test's server, or an exporter started just
  // before and not yet listening, which answers every path with its HTML page): ready means Prometheus's own
  // answer; a Prometheus that exits (address in use) is started again on another port
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const server = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...(options.flags ?? [])], { stdio: 'ignore' })
    // a missing binary emits 'error' and no 'exit'
    let hasExited = false
    const exited = new Promise((resolve) => {
      server.once('exit', resolve)
      server.once('error', resolve)
    }).then(() => { hasExited = true })
    const stop = async (): Promise<void> => {
      server.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
    const readyText = async (): Promise<string | undefined> => await fetch(`${base}/-/ready`).then(async (r) => r.ok ? await r.text() : undefined, () => undefined)
    const ready = await until(async () => hasExited || (await readyText())?.startsWith('Prometheus') === true, 30_000, 100)
    if (ready && !hasExited) return prometheusApi(base, stop)
    if (!hasExited || attempt === 5) {
      await stop()
      throw new Error(hasExited ? 'prometheus exited 5 times before it was ready' : 'prometheus did not become ready in 30 s')
    }
  }
}

function prometheusApi (base: string, stop: () => Promise<void>): PrometheusServer {
  const api = async <T>(path: string): Promise<T> => {
    const json = await (await fetch(base + path)).json() as { status: string, error?: string, data: T }
    if (json.status !== 'success') throw new Error(`${path}: ${json.error}`)
    return json.data
  }
  return {
    query: async (expr) => (await api<{ result: InstantSample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    exemplars: async (expr, seconds) => {
      const end = Date.now() / 1000
      return await api(`/api/v1/query_exemplars?query=${encodeURIComponent(expr)}&start=${end - seconds}&end=${end}`)
    },
    labelValues: async (label, selector) => await api<string[]>(`/api/v1/label/${label}/values?match[]=${encodeURIComponent(selector)}`),
    rules: async () => (await api<{ groups: Array<{ rules: Array<{ name: string, type: 'recording' | 'alerting', query: string, health: string, lastError?: string }> }> }>('/api/v1/rules'))
      .groups.flatMap((group) => group.rules),
    stop
  }
}
