/**
 * FMD's outlier rule, learnt per endpoint in this process: a request is an outlier when it took
 * longer than `constant` × the mean of the endpoint's last `window` durations, once at least
 * `minSamples` were seen (so a new endpoint does not flag everything). The outlier itself joins the
 * window, so a lasting slowdown raises the threshold instead of flagging every request.
 */
export class OutlierDetector {
  readonly #constant: number
  readonly #minSamples: number
  readonly #window: number
  readonly #rings = new Map<number, { values: Float64Array, next: number, count: number, sum: number }>()

  constructor (constant: number, minSamples: number, window: number) {
    this.#constant = constant
    this.#minSamples = minSamples
    this.#window = window
  }

  /** Adds a duration; true when it is an outlier. */
  observe (endpoint: number, durationMs: number): boolean {
    let ring = this.#rings.get(endpoint)
    if (ring === undefined) {
      ring = { values: new Float64Array(this.#window), next: 0, count: 0, sum: 0 }
      this.#rings.set(endpoint, ring)
    }
    const outlier = ring.count >= this.#minSamples && durationMs > this.#constant * (ring.sum / ring.count)
    if (ring.count === this.#window) ring.sum -= ring.values[ring.next]!
    else ring.count++
    ring.values[ring.next] = durationMs
    ring.sum += durationMs
    ring.next = (ring.next + 1) % this.#window
    return outlier
  }

  /** The current threshold of an endpoint, or undefined while it warms up. */
  threshold (endpoint: number): number | undefined {
    const ring = this.#rings.get(endpoint)
    return ring === undefined || ring.count < this.#minSamples ? undefined : this.#constant * (ring.sum / ring.count)
  }
}

/** Keeps at most `max` outliers per endpoint per hour; the rest are only counted. */
export class OutlierCap {
  readonly #max: number
  #hour = -1
  readonly #stored = new Map<number, number>()

  constructor (max: number) {
    this.#max = max
  }

  /** True when this outlier may be stored in full. */
  admit (endpoint: number, timeMs: number): boolean {
    const hour = Math.floor(timeMs / 3_600_000)
    if (hour !== this.#hour) {
      this.#hour = hour
      this.#stored.clear()
    }
    const stored = this.#stored.get(endpoint) ?? 0
    if (stored >= this.#max) return false
    this.#stored.set(endpoint, stored + 1)
    return true
  }
}
