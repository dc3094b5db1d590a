import type { FastifyReply, FastifyRequest } from 'fastify'
import { REDACTED, isSecretName, redactObject, redactText, redactUrl, redactValue, type RedactionRules } from './redact.js'

/** The request as stored with an outlier: secrets redacted, sizes capped. */
export interface RequestEvidence {
  method: string
  url: string
  params: unknown
  query: unknown
  headers: Record<string, string>
  body: string | null
  bodyTruncated: boolean
  ip: string
}

/** What a guest sees of an outlier's request when request values are for admins only: no headers, query, params, body or IP. */
export interface HiddenRequestEvidence {
  method: string
  /** The path, without its query string. */
  url: string
  hidden: true
}

/** Time per phase of the Fastify lifecycle, in ms. */
export interface PhaseEvidence {
  /** onRequest, parsing, validation and preHandler hooks: from the start until the handler ran. */
  beforeHandler: number | null
  /** The route handler, until its promise settled (or it returned). */
  handler: number | null
  /** Serialisation, onSend hooks and writing the response. */
  afterHandler: number | null
  total: number
}

/** The process while the request ran. */
export interface ProcessEvidence {
  /** Process CPU time over wall time around the request (10 ms ticks), % of one core, all threads. */
  cpuPercent: number | null
  rssBytes: number
  heapUsedBytes: number
  /** Longest the event loop was blocked within the request's time, ms (10 ms resolution). */
  eventLoopDelayMaxMs: number
  /** Environment variables on the allow-list, if any. */
  env: Record<string, string>
}

const MAX_URL = 2_048
const MAX_HEADER_VALUE = 1_024
const MAX_HEADERS = 64
const MAX_JSON = 4_096
/** A text body longer than this is redacted as text (pairs and shapes), not parsed. */
const MAX_PARSED_BODY = 65_536

function capped (value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max)}…` : value
}

function cappedJson (value: unknown): unknown {
  if (value === undefined || value === null) return null
  const text = JSON.stringify(value)
  return text.length > MAX_JSON ? `${text.slice(0, MAX_JSON)}…` : value
}

/** A body as text, redacted: a parsed body field by field, a text body as JSON when it parses, else as text. */
function redactedBody (body: unknown, rules: RedactionRules): string {
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) return JSON.stringify(redactObject(body, rules)) ?? ''
  const text = typeof body === 'string' ? body : body.toString('utf8')
  if (text.length <= MAX_PARSED_BODY && /^\s*[[{]/.test(text)) {
    try { return JSON.stringify(redactObject(JSON.parse(text), rules)) } catch { /* not JSON: redacted as text */ }
  }
  return redactText(text, rules)
}

/**
 * The request's evidence, redacted before it is kept: header, query, route-parameter and body-field
 * names matching the rules are replaced, credential-shaped values cut (see {@link redactObject}); then
 * sizes are capped and the body cut at `bodyLimit` bytes.
 */
export function requestEvidence (request: FastifyRequest, rules: RedactionRules, bodyLimit: number): RequestEvidence {
  const headers: Record<string, string> = {}
  let n = 0
  for (const [name, value] of Object.entries(request.headers)) {
    if (n++ >= MAX_HEADERS) break
    const text = Array.isArray(value) ? value.join(', ') : String(value ?? '')
    headers[name] = isSecretName(name, rules) ? REDACTED : capped(redactValue(text), MAX_HEADER_VALUE)
  }
  let body: string | null = null
  let bodyTruncated = false
  if (request.body !== undefined && request.body !== null && bodyLimit > 0) {
    const text = redactedBody(request.body, rules)
    bodyTruncated = Buffer.byteLength(text) > bodyLimit
    body = bodyTruncated ? Buffer.from(text).subarray(0, bodyLimit).toString('utf8') : text
  }
  return {
    method: request.method,
    url: capped(redactUrl(request.url, rules), MAX_URL),
    params: cappedJson(redactObject(request.params, rules)),
    query: cappedJson(redactObject(request.query, rules)),
    headers,
    body,
    bodyTruncated,
    ip: request.ip
  }
}

/**
 * Evidence another process sent to the ingest route, redacted again by this process's rules: a sender in
 * another language may redact less than this package does, and what this collector stores must hold none
 * of the secrets its own options name. Redacting twice changes nothing already redacted.
 */
export function redactSentEvidence (request: RequestEvidence, rules: RedactionRules): RequestEvidence {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) headers[name] = isSecretName(name, rules) ? REDACTED : redactValue(value)
  return {
    ...request,
    url: redactUrl(request.url, rules),
    params: redactObject(request.params, rules),
    query: redactObject(request.query, rules),
    headers,
    body: typeof request.body === 'string' ? redactText(request.body, rules) : null
  }
}

/**
 * Reply fields holding handler start and end, ms into the request: NaN from the request path's `onRequest`
 * hook (every reply gets them there, in one order: one shape), set by the route's wrapped handler while its
 * endpoint is at level ≥ 2 (see request-path.ts).
 */
export const kHandlerStartMs = Symbol('fastify-monitoring-dashboard.handlerStartMs')
export const kHandlerEndMs = Symbol('fastify-monitoring-dashboard.handlerEndMs')
/** When the handler's synchronous call returned (an async handler's promise may settle later, at kHandlerEndMs). */
export const kHandlerReturnMs = Symbol('fastify-monitoring-dashboard.handlerReturnMs')
export type TimedReply = FastifyReply & { [kHandlerStartMs]: number, [kHandlerEndMs]: number, [kHandlerReturnMs]: number }

const LAG_INTERVAL_MS = 10
/** 3 s of lag samples at 10 ms: enough for a request's evidence to be read after it ended. */
const LAG_SAMPLES = 300
/**
 * Process state for outliers, and the handler timing the request path leaves on the reply. It watches
 * event-loop delay only while some endpoint is at level 2 or more: started and stopped with
 * {@link EvidenceProbe.setActive}. (Handler timing no longer listens on Fastify's diagnostics channel:
 * a subscriber there makes Fastify build a store for every request of every route.)
 */
export class EvidenceProbe {
  readonly #envAllowList: readonly string[]
  /** When the lag probe last ran and how late it was: the loop was blocked for [at − lag, at]. */
  readonly #lagAt = new Float64Array(LAG_SAMPLES)
  readonly #lag = new Float64Array(LAG_SAMPLES)
  /** Process CPU time (µs, all threads) at each tick, for CPU % over a request without a syscall per request. */
  readonly #cpu = new Float64Array(LAG_SAMPLES)
  #lagNext = 0
  #lagTimer: NodeJS.Timeout | undefined
  #lagExpected = 0
  #active = false

  constructor (envAllowList: readonly string[]) {
    this.#envAllowList = envAllowList
  }

  setActive (active: boolean): void {
    if (active === this.#active) return
    this.#active = active
    if (active) {
      this.#lagExpected = performance.now() + LAG_INTERVAL_MS
      this.#lagTimer = setInterval(() => {
        const now = performance.now()
        this.#lagAt[this.#lagNext] = now
        this.#lag[this.#lagNext] = Math.max(0, now - this.#lagExpected)
        const cpu = process.cpuUsage()
        this.#cpu[this.#lagNext] = cpu.user + cpu.system
        this.#lagNext = (this.#lagNext + 1) % LAG_SAMPLES
        this.#lagExpected = now + LAG_INTERVAL_MS
      }, LAG_INTERVAL_MS)
      this.#lagTimer.unref()
    } else {
      if (this.#lagTimer !== undefined) clearInterval(this.#lagTimer)
      this.#lagTimer = undefined
    }
  }

  /**
   * The longest the event loop was blocked in [startMs, endMs] (`performance.now()` times). Read once
   * the loop ran again after the request (when its stacks arrive), so a request that blocked the
   * loop sees its own block.
   */
  eventLoopBlockedMs (startMs: number, endMs: number): number {
    let max = 0
    for (let i = 0; i < LAG_SAMPLES; i++) {
      const at = this.#lagAt[i]!
      // the part of that block inside the request's window
      const blocked = Math.min(at, endMs) - Math.max(at - this.#lag[i]!, startMs)
      if (blocked > max) max = blocked
    }
    return Math.round(max * 100) / 100
  }

  phases (reply: FastifyReply, totalMs: number): PhaseEvidence {
    const start = (reply as TimedReply)[kHandlerStartMs]
    const end = (reply as TimedReply)[kHandlerEndMs]
    if (Number.isNaN(start) || Number.isNaN(end) || start === undefined || end === undefined) return { beforeHandler: null, handler: null, afterHandler: null, total: totalMs }
    return { beforeHandler: start, handler: end - start, afterHandler: Math.max(0, totalMs - end), total: totalMs }
  }

  /**
   * Process CPU (all threads) over [startMs, endMs] as % of one core, from the ticks around it; read
   * once the loop ran again after the request. Null when the ticks do not cover the window.
   */
  cpuPercent (startMs: number, endMs: number): number | null {
    let before = -1
    let after = -1
    for (let i = 0; i < LAG_SAMPLES; i++) {
      const at = this.#lagAt[i]!
      if (at === 0) continue
      if (at <= startMs && (before < 0 || at > this.#lagAt[before]!)) before = i
      if (at >= endMs && (after < 0 || at < this.#lagAt[after]!)) after = i
    }
    if (before < 0 || after < 0) return null
    const wallMs = this.#lagAt[after]! - this.#lagAt[before]!
    return wallMs <= 0 ? null : Math.round((this.#cpu[after]! - this.#cpu[before]!) / 10 / wallMs)
  }

  /** Memory now and the allow-listed environment; CPU and loop blocking are filled in later. */
  process (): ProcessEvidence {
    const memory = process.memoryUsage()
    const env: Record<string, string> = {}
    for (const name of this.#envAllowList) if (process.env[name] !== undefined) env[name] = process.env[name]!
    return {
      cpuPercent: null,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      eventLoopDelayMaxMs: 0,
      env
    }
  }
}
