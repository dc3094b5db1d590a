import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { ResolvedOutliers } from '../options.js'
import { OverflowCounts, type OutlierOverflow, type OutlierRecord, type ProfileRecord } from '../protocol.js'
import { StackSampler, performanceToUs, type CodeKey, type RequestCode } from '../profiling/sampler.js'
import type { EndpointState, RouteFunction } from './endpoints.js'
import { EvidenceProbe, kHandlerReturnMs, kHandlerStartMs, requestEvidence, type TimedReply } from './evidence.js'
import { OutlierCap, OutlierDetector } from './outliers.js'
import { WorkTick } from '../work-tick.js'

/** Recent requests remembered per endpoint, to tell whether others of the same endpoint overlapped one. */
const RECENT_PER_ENDPOINT = 64

/**
 * The latest requests of each level-2/3 endpoint as [start, end] (performance.now() ms): a sampled
 * stack in the endpoint's handler belongs to whichever of them ran then, so overlapping ones cannot be
 * told apart. Two numbers per request, a fixed ring per endpoint.
 */
class RecentRequests {
  // by endpoint index, as the detector's rings
  readonly #rings: Array<{ times: Float64Array, next: number } | undefined> = []

  add (endpoint: number, startMs: number, endMs: number): void {
    let ring = this.#rings[endpoint]
    if (ring === undefined) {
      ring = { times: new Float64Array(2 * RECENT_PER_ENDPOINT).fill(-1), next: 0 }
      this.#rings[endpoint] = ring
    }
    ring.times[2 * ring.next] = startMs
    ring.times[2 * ring.next + 1] = endMs
    ring.next = (ring.next + 1) % RECENT_PER_ENDPOINT
  }

  /** Other remembered requests of the endpoint overlapping [startMs, endMs] (the request itself excluded). */
  overlapping (endpoint: number, startMs: number, endMs: number): number {
    const ring = this.#rings[endpoint]
    if (ring === undefined) return 0
    let n = 0
    for (let i = 0; i < RECENT_PER_ENDPOINT; i++) {
      const start = ring.times[2 * i]!
      const end = ring.times[2 * i + 1]!
      if (start < 0 || (start === startMs && end === endMs)) continue
      if (start < endMs && end > startMs) n++
    }
    return n
  }
}

/** How long the stack sampler keeps running after an outlier with `stackSampling: 'after-outlier'`. */
export const SAMPLING_LINGER_MS = 10 * 60_000

/**
 * Levels 2 and 3 on the request thread: decides whether a finished request is an outlier and gathers its
 * evidence. The probes (handler timing, event-loop delay, stack sampling) run only while some
 * endpoint is at level 2 or more; the stacks of an outlier (and at level 3 the call trees of a share
 * of requests) arrive when the sampler next rotates, and go to the writer in batches.
 *
 * Its one entry point, {@link OutlierRecorder.observe}, takes a finished request of a level-2/3 endpoint,
 * wherever the request's end is observed.
 */
export class OutlierRecorder {
  readonly #options: ResolvedOutliers
  readonly #detector: OutlierDetector
  readonly #cap: OutlierCap
  readonly #probe: EvidenceProbe
  readonly #sampler: StackSampler
  readonly #send: (outliers: OutlierRecord[], overflow: OutlierOverflow[], profiles: ProfileRecord[]) => void
  readonly #onOutlier: (method: string, route: string) => void
  readonly #log: FastifyBaseLogger
  #ready: OutlierRecord[] = []
  readonly #overflow = new OverflowCounts()
  #profiles: ProfileRecord[] = []
  readonly #recent = new RecentRequests()
  /** Runs while an endpoint is at level ≥ 2 and until what they left is sent: an app without one is never woken for it. */
  readonly #tick: WorkTick
  #failed = false
  /** Some endpoint is at level 2 or 3 / at level 3. */
  #active = false
  #profiling = false
  /** `stackSampling: 'after-outlier'`: the sampler runs until then (ms, `Date.now()`). */
  #samplingUntilMs = 0

  constructor (options: ResolvedOutliers, deps: {
    send: (outliers: OutlierRecord[], overflow: OutlierOverflow[], profiles: ProfileRecord[]) => void
    onOutlier: (method: string, route: string) => void
    log: FastifyBaseLogger
    flushIntervalMs: number
  }) {
    this.#options = options
    this.#detector = new OutlierDetector(options.constant, options.minSamples, options.window)
    this.#cap = new OutlierCap(options.maxPerEndpointHour)
    this.#probe = new EvidenceProbe(options.envAllowList)
    this.#sampler = new StackSampler(options.sampleIntervalUs, 1_000, options.appRoot)
    this.#send = deps.send
    this.#onOutlier = deps.onOutlier
    this.#log = deps.log
    this.#tick = new WorkTick(deps.flushIntervalMs, () => {
      if (this.#sampler.running && !this.#profiling) this.#applySampler(Date.now())
      this.flush()
    }, () => this.#active)
  }

  /** Starts or stops the probes as levels change: on while any endpoint is at level 2 or 3. */
  update (endpoints: readonly EndpointState[]): void {
    this.#active = endpoints.some((endpoint) => endpoint.level >= 2)
    this.#profiling = endpoints.some((endpoint) => endpoint.level === 3)
    this.#probe.setActive(this.#active)
    this.#applySampler(Date.now())
    if (this.#active) this.#tick.arm()
  }

  /**
   * Runs the sampler while it is wanted: level 3 needs it for its call trees; level 2 per
   * `stackSampling` (`'after-outlier'`: from an outlier until {@link SAMPLING_LINGER_MS} have passed without
   * one). It costs every request of the process while it runs, outliers or not.
   */
  #applySampler (nowMs: number): void {
    const mode = this.#options.stackSampling
    const wanted = this.#profiling || (this.#active && (mode === 'always' || (mode === 'after-outlier' && nowMs < this.#samplingUntilMs)))
    if (wanted) this.#sampler.start(); else this.#sampler.stop()
  }

  /**
   * Called for every finished request of an endpoint at level ≥ 2, once its reply is sent (or its client
   * gone: `statusCode` is then the stored 499). `nowMs`: wall-clock ms at the end, `endMs` the same end as
   * `performance.now()` read it; `durationMs`: from its start.
   */
  observe (endpoint: EndpointState, request: FastifyRequest, reply: FastifyReply, statusCode: number, durationMs: number, nowMs: number, endMs: number): void {
    try {
      this.#recent.add(endpoint.index, endMs - durationMs, endMs)
      if (endpoint.level === 3 && Math.random() < this.#options.profileShare) this.#profile(endpoint, request, reply, durationMs, nowMs, endMs)
      const thresholdMs = this.#detector.observe(endpoint.index, durationMs)
      if (thresholdMs === undefined) return
      // fast requests are noise, whatever the endpoint's mean (and the unmatched endpoint's too)
      if (durationMs < this.#options.minDurationMs) return
      this.#onOutlier(endpoint.method, endpoint.route)
      // stacks only if the sampler ran for the whole request; an outlier (re)starts it for the next ones
      const sampled = this.#sampler.running
      if (this.#options.stackSampling === 'after-outlier') {
        this.#samplingUntilMs = nowMs + SAMPLING_LINGER_MS
        if (!sampled) this.#applySampler(nowMs)
      }
      const timeMs = nowMs - durationMs
      if (!this.#cap.admit(endpoint.index, nowMs, durationMs)) {
        this.#overflow.add(endpoint.index, timeMs)
        this.#tick.arm()
        return
      }
      const record: OutlierRecord = {
        endpointIndex: endpoint.index,
        timeMs,
        durationMs,
        // what the request had to exceed: the mean's multiple, or minDurationMs when that is more
        thresholdMs: Math.max(thresholdMs, this.#options.minDurationMs),
        statusCode,
        request: requestEvidence(request, this.#options.redaction, this.#options.bodyLimitBytes),
        phases: this.#probe.phases(reply, durationMs),
        process: this.#probe.process(),
        stacks: null
      }
      const endUs = performanceToUs(endMs)
      const process = record.process as { eventLoopDelayMaxMs: number, cpuPercent: number | null }
      const stacks = sampled
        ? this.#sampler.samplesOf(endUs - durationMs * 1000, endUs, this.#requestCode(endpoint, request, reply, endMs, durationMs, endUs))
        : Promise.resolve(null)
      stacks.then((stacks) => {
        record.stacks = stacks
        // after the lag probe's next tick: it measures a block only once the loop runs again
        setTimeout(() => {
          process.eventLoopDelayMaxMs = this.#probe.eventLoopBlockedMs(endMs - durationMs, endMs)
          process.cpuPercent = this.#probe.cpuPercent(endMs - durationMs, endMs)
          this.#ready.push(record)
          this.#tick.arm()
        }, 25).unref()
      }, () => { this.#ready.push(record); this.#tick.arm() })
    } catch (err) {
      if (!this.#failed) {
        this.#failed = true
        this.#log.error({ err }, 'fastify-monitoring-dashboard: gathering outlier evidence failed (logged once)')
      }
    }
  }

  /** The code keys of what a request of this endpoint runs: its handler and the route's own hooks. */
  #codeOf (endpoint: EndpointState, request: FastifyRequest): Set<CodeKey> {
    const keys = new Set<CodeKey>()
    const functions: unknown[] = [endpoint.handler ?? request.routeOptions.handler, ...endpoint.hooks]
    for (const fn of functions) {
      const key = typeof fn === 'function' ? this.#sampler.locate(fn as RouteFunction) : undefined
      if (key !== undefined) keys.add(key)
    }
    return keys
  }

  /**
   * What tells the request's samples apart; the overlap with other requests of its endpoint is read once
   * the samples arrive, when those that ran at the same time have ended too.
   */
  #requestCode (endpoint: EndpointState, request: FastifyRequest, reply: FastifyReply, endMs: number, durationMs: number, endUs: number): RequestCode {
    const recent = this.#recent
    const keys = this.#codeOf(endpoint, request)
    const startMs = (reply as TimedReply)[kHandlerStartMs]
    const returnMs = (reply as TimedReply)[kHandlerReturnMs]
    const handler = endpoint.handler ?? request.routeOptions.handler
    const startUs = endUs - durationMs * 1000
    return {
      keys,
      get concurrent () { return recent.overlapping(endpoint.index, endMs - durationMs, endMs) },
      ...(Number.isNaN(startMs) || Number.isNaN(returnMs) ? {} : {
        handlerCall: {
          startUs: startUs + startMs * 1000,
          endUs: startUs + returnMs * 1000,
          key: typeof handler === 'function' ? this.#sampler.locate(handler as RouteFunction) : undefined,
          name: typeof handler === 'function' ? handler.name : ''
        }
      })
    }
  }

  /** Level 3: the request's call tree, from the sampler's next rotation. */
  #profile (endpoint: EndpointState, request: FastifyRequest, reply: FastifyReply, durationMs: number, nowMs: number, endMs: number): void {
    const endUs = performanceToUs(endMs)
    const code = this.#requestCode(endpoint, request, reply, endMs, durationMs, endUs)
    this.#sampler.treeOf(endUs - durationMs * 1000, endUs, code).then((tree) => {
      if (tree !== undefined && tree.samples > 0) {
        this.#profiles.push({ endpointIndex: endpoint.index, timeMs: nowMs - durationMs, durationMs, tree })
        this.#tick.arm()
      }
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
    this.#tick.close()
    this.#probe.setActive(false)
    this.#sampler.stop()
    this.flush()
  }
}
