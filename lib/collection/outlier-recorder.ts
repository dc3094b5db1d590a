import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedOutliers } from '../options.js'
import { OverflowCounts, type OutlierOverflow, type OutlierRecord, type ProfileRecord } from '../protocol.js'
import { StackSampler, nowUs } from '../profiling/sampler.js'
import type { EndpointState } from './endpoints.js'
import { EvidenceProbe, requestEvidence } from './evidence.js'
import { OutlierCap, OutlierDetector } from './outliers.js'

/**
 * Levels 2 and 3 on the request thread: decides whether a finished request is an outlier and gathers its
 * evidence. The probes (handler timing, event-loop delay, stack sampling) run only while some
 * endpoint is at level 2 or more; the stacks of an outlier (and at level 3 the call trees of a share
 * of requests) arrive when the sampler next rotates, and go to the writer in batches.
 */
export class OutlierRecorder {
  readonly #options: ResolvedOutliers
  readonly #detector: OutlierDetector
  readonly #cap: OutlierCap
  readonly #probe: EvidenceProbe
  readonly #sampler: StackSampler
  readonly #send: (outliers: OutlierRecord[], overflow: OutlierOverflow[], profiles: ProfileRecord[]) => void
  readonly #onOutlier: (route: string) => void
  readonly #log: FastifyBaseLogger
  #ready: OutlierRecord[] = []
  readonly #overflow = new OverflowCounts()
  #profiles: ProfileRecord[] = []
  #timer: NodeJS.Timeout | undefined
  #failed = false

  constructor (options: ResolvedOutliers, deps: {
    send: (outliers: OutlierRecord[], overflow: OutlierOverflow[], profiles: ProfileRecord[]) => void
    onOutlier: (route: string) => void
    log: FastifyBaseLogger
    flushIntervalMs: number
  }) {
    this.#options = options
    this.#detector = new OutlierDetector(options.constant, options.minSamples, options.window)
    this.#cap = new OutlierCap(options.maxPerEndpointHour)
    this.#probe = new EvidenceProbe(options.envAllowList)
    this.#sampler = new StackSampler(options.sampleIntervalUs, 1_000)
    this.#send = deps.send
    this.#onOutlier = deps.onOutlier
    this.#log = deps.log
    this.#timer = setInterval(() => { this.flush() }, deps.flushIntervalMs)
    this.#timer.unref()
  }

  /** Starts or stops the probes as levels change: on while any endpoint is at level 2 or 3. */
  update (endpoints: readonly EndpointState[]): void {
    const active = endpoints.some((endpoint) => endpoint.level >= 2)
    this.#probe.setActive(active)
    if (active) this.#sampler.start(); else this.#sampler.stop()
  }

  /** Called for every finished request of an endpoint at level ≥ 2. */
  observe (endpoint: EndpointState, request: FastifyRequest, reply: FastifyReply, durationMs: number, nowMs: number): void {
    try {
      if (endpoint.level === 3 && Math.random() < this.#options.profileShare) this.#profile(endpoint, durationMs, nowMs)
      const thresholdMs = this.#detector.threshold(endpoint.index)
      if (!this.#detector.observe(endpoint.index, durationMs) || thresholdMs === undefined) return
      this.#onOutlier(endpoint.route)
      const timeMs = nowMs - durationMs
      if (!this.#cap.admit(endpoint.index, nowMs)) {
        this.#overflow.add(endpoint.index, timeMs)
        return
      }
      const record: OutlierRecord = {
        endpointIndex: endpoint.index,
        timeMs,
        durationMs,
        thresholdMs,
        statusCode: reply.statusCode,
        request: requestEvidence(request, this.#options.redactHeaders, this.#options.bodyLimitBytes),
        phases: this.#probe.phases(reply, durationMs),
        process: this.#probe.process(),
        stacks: null
      }
      const endUs = nowUs()
      const endMs = performance.now()
      const process = record.process as { eventLoopDelayMaxMs: number, cpuPercent: number | null }
      this.#sampler.samplesOf(endUs - durationMs * 1000, endUs).then((stacks) => {
        record.stacks = stacks
        // after the lag probe's next tick: it measures a block only once the loop runs again
        setTimeout(() => {
          process.eventLoopDelayMaxMs = this.#probe.eventLoopBlockedMs(endMs - durationMs, endMs)
          process.cpuPercent = this.#probe.cpuPercent(endMs - durationMs, endMs)
          this.#ready.push(record)
        }, 25).unref()
      }, () => { this.#ready.push(record) })
    } catch (err) {
      if (!this.#failed) {
        this.#failed = true
        this.#log.error({ err }, 'fastify-monitoring-dashboard: gathering outlier evidence failed (logged once)')
      }
    }
  }

  /** Level 3: the request's call tree, from the sampler's next rotation. */
  #profile (endpoint: EndpointState, durationMs: number, nowMs: number): void {
    const endUs = nowUs()
    this.#sampler.treeOf(endUs - durationMs * 1000, endUs).then((tree) => {
      if (tree !== undefined && tree.samples > 0) this.#profiles.push({ endpointIndex: endpoint.index, timeMs: nowMs - durationMs, durationMs, tree })
    }, () => {})
  }

  flush (): void {
    if (this.#ready.length === 0 && this.#overflow.size === 0 && this.#profiles.length === 0) return
    const ready = this.#ready
    const overflow = this.#overflow.take()
    const profiles = this.#profiles
    this.#ready = []
    this.#profiles = []
    this.#send(ready, overflow, profiles)
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#probe.setActive(false)
    this.#sampler.stop()
    this.flush()
  }
}
