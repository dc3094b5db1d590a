import type { MetricValueWithName } from 'prom-client'

/** What prom-client's registry reads from a metric at scrape (its own type wants fields we do not have). */
export interface MetricSnapshot {
  name: string
  help: string
  type: 'histogram'
  aggregator: 'sum'
  values: Array<MetricValueWithName<string>>
}

/**
 * prom-client's default buckets (5 ms … 10 s) preceded by six more from 50 µs: a Fastify route often
 * answers in 0.05–1 ms, which the defaults put all in their first bucket (p50/p95/p99 read 2.5/4.75/4.95 ms).
 */
export const DEFAULT_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
export const HTTP_DURATION_NAME = 'http_request_duration_seconds'

interface Series {
  readonly labels: { method: string, route: string, status_code: string }
  /** Count per bucket, not cumulative (made cumulative at scrape). The last slot is +Inf. */
  readonly counts: Float64Array
  /** Latest stored request per bucket: its sequence number (0: none), duration and time. Arrays, so observe allocates nothing. */
  readonly exemplarSeq: Float64Array
  readonly exemplarSeconds: Float64Array
  readonly exemplarTimeMs: Float64Array
  sum: number
  count: number
}

/** An OpenMetrics exemplar as prom-client's JSON snapshot carries it. */
export interface Exemplar {
  labelSet: { request_id: string }
  value: number
  /** Seconds since the epoch. */
  timestamp: number
}

/**
 * `http_request_duration_seconds{method, route, status_code}` as a prom-client collector.
 * prom-client's Histogram hashes the label object on every observe; here a series is found by one
 * Map lookup on a short string key, and bucket counts are plain array increments, because this
 * runs for every request. Labels are bounded: route is the URL template (one value for all
 * unmatched requests), method is one of the few Node's parser accepts, status is a number.
 *
 * ### Examples
 * ```ts
 * const histogram = new HttpDurationHistogram(DEFAULT_BUCKETS_SECONDS)
 * registry.registerMetric(histogram)
 * histogram.observe('GET', '/users/:id', 200, 0.012)
 * ```
 */
export class HttpDurationHistogram {
  readonly name = HTTP_DURATION_NAME
  readonly help = 'Duration of HTTP requests in seconds, from the request to the end of its response'
  readonly type = 'histogram' as const
  /** Cluster workers' series add up. */
  readonly aggregator = 'sum' as const
  readonly #buckets: number[]
  readonly #series = new Map<string, Series>()
  readonly #exemplarPrefix: string

  /** `instanceToken` names this process in exemplars: `request_id="<token>:<seq>"`. */
  constructor (buckets: number[], instanceToken = '') {
    this.#buckets = buckets
    this.#exemplarPrefix = `${instanceToken}:`
  }

  /** `seq` is the stored request's number in this process, 0 when the request was not stored (level 0); `nowMs` the exemplar's time. */
  observe (method: string, route: string, statusCode: number, seconds: number, seq = 0, nowMs = 0): void {
    const key = `${statusCode}${method} ${route}`
    let series = this.#series.get(key)
    if (series === undefined) {
      const slots = this.#buckets.length + 1
      series = {
        labels: { method, route, status_code: String(statusCode) },
        counts: new Float64Array(slots),
        exemplarSeq: new Float64Array(slots),
        exemplarSeconds: new Float64Array(slots),
        exemplarTimeMs: new Float64Array(slots),
        sum: 0,
        count: 0
      }
      this.#series.set(key, series)
    }
    const buckets = this.#buckets
    let i = 0
    while (i < buckets.length && seconds > buckets[i]!) i++
    series.counts[i]!++
    series.sum += seconds
    series.count++
    if (seq > 0) {
      series.exemplarSeq[i] = seq
      series.exemplarSeconds[i] = seconds
      series.exemplarTimeMs[i] = nowMs
    }
  }

  async get (): Promise<MetricSnapshot> {
    const values: Array<MetricValueWithName<string>> = []
    for (const series of this.#series.values()) {
      let cumulative = 0
      for (let i = 0; i <= this.#buckets.length; i++) {
        cumulative += series.counts[i]!
        const le = i < this.#buckets.length ? this.#buckets[i]! : '+Inf'
        const seq = series.exemplarSeq[i]!
        const exemplar: Exemplar | undefined = seq === 0
          ? undefined
          : { labelSet: { request_id: this.#exemplarPrefix + String(seq) }, value: series.exemplarSeconds[i]!, timestamp: series.exemplarTimeMs[i]! / 1000 }
        values.push({ metricName: `${this.name}_bucket`, labels: { ...series.labels, le }, value: cumulative, ...(exemplar === undefined ? {} : { exemplar }) } as MetricValueWithName<string>)
      }
      values.push({ metricName: `${this.name}_sum`, labels: series.labels, value: series.sum })
      values.push({ metricName: `${this.name}_count`, labels: series.labels, value: series.count })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#series.clear()
  }
}
