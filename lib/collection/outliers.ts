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
  // by endpoint index (small, dense): an array read, not a Map lookup, on every level-2 request
  readonly #rings: Array<{ values: Float64Array, next: number, count: number, sum: number } | undefined> = []

  constructor (constant: number, minSamples: number, window: number) {
    this.#constant = constant
    this.#minSamples = minSamples
    this.#window = window
  }

  /** Adds a duration; returns the threshold it exceeded when it is an outlier, else undefined. */
  observe (endpoint: number, durationMs: number): number | undefined {
    let ring = this.#rings[endpoint]
    if (ring === undefined) {
      ring = { values: new Float64Array(this.#window), next: 0, count: 0, sum: 0 }
      this.#rings[endpoint] = ring
    }
    const thresholdMs = ring.count >= this.#minSamples ? this.#constant * (ring.sum / ring.count) : Infinity
    if (ring.count === this.#window) ring.sum -= ring.values[ring.next]!
    else ring.count++
    ring.values[ring.next] = durationMs
    ring.sum += durationMs
    ring.next = (ring.next + 1) % this.#window
    return durationMs > thresholdMs ? thresholdMs : undefined
  }
}

export class OutlierCap {
  readonly #max: number
  #hour = -1
  readonly #kept = new Map<number, number[]>()

  constructor (max: number) {
    this.#max = max
  }

  /** True when this outlier is worth its evidence: there is room, or it is slower than the fastest kept. */
  admit (endpoint: number, timeMs: number, durationMs: number): boolean {
    if (this.#max === 0) return false
    const hour = Math.floor(timeMs / 3_600_000)
    if (hour !== this.#hour) {
      this.#hour = hour
      this.#kept.clear()
    }
    let heap = this.#kept.get(endpoint)
    if (heap === undefined) {
      heap = []
      this.#kept.set(endpoint, heap)
    }
    if (heap.length < this.#max) {
      heapPush(heap, durationMs)
      return true
    }
    if (durationMs <= heap[0]!) return false
    heapReplaceTop(heap, durationMs)
    return true
  }
}

function heapPush (heap: number[], value: number): void {
  let i = heap.push(value) - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (heap[parent]! <= value) break
    heap[i] = heap[parent]!
    i = parent
  }
  heap[i] = value
}

function heapReplaceTop (heap: number[], value: number): void {
  const n = heap.length
  let i = 0
  while (true) {
    const left = 2 * i + 1
    if (left >= n) break
    const right = left + 1
    const child = right < n && heap[right]! < heap[left]! ? right : left
    if (heap[child]! >= value) break
    heap[i] = heap[child]!
    i = child
  }
  heap[i] = value
}
