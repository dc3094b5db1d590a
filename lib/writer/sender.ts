/**
 * The HTTP side of a service that sends to a collector (`remote`): turns a unit of rows into the ingest
 * route's batch and posts it, gzip-compressed, on a kept-alive connection (Node's fetch pools them), with a
 * timeout. Runs on the writer's thread, where the database client would otherwise be.
 *
 * ### Examples
 * ```ts
 * const sender = new IngestSender(remote, { version: '1.4.2', instance })
 * const result = await sender.post(sender.batch(unitId, keys, rows))
 * ```
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { promisify } from 'node:util'
import { gzip } from 'node:zlib'
import type { ResolvedRemote } from '../options.js'
import { MAX_INGEST_ENDPOINTS, type EndpointKey, type IngestBatch, type IngestDiagnostics, type IngestResult } from '../protocol.js'
import type { DiagnosticsPart } from './diagnostics.js'
import type { WriteUnit } from './store.js'

const gzipAsync = promisify(gzip)
/** Longest part of the collector's answer kept in an error message. */
const MAX_ANSWER_IN_MESSAGE = 300

/**
 * A send the collector answered with an error. `permanent` for answers that say the batch itself is wrong
 * (400, 413, 415): sent again, it would be refused again. Everything else (401 until the token is fixed,
 * 404 until the collector's ingest route is on, 429, 5xx) is retried with the writer's backoff.
 */
export class CollectorError extends Error {
  readonly status: number
  readonly permanent: boolean
  readonly code: string

  constructor (status: number, answer: string) {
    super(`${CollectorError.#explain(status)} (HTTP ${status}): ${answer.slice(0, MAX_ANSWER_IN_MESSAGE)}`)
    this.status = status
    this.permanent = status === 400 || status === 413 || status === 415
    this.code = `HTTP_${status}`
  }

  static #explain (status: number): string {
    if (status === 401) return 'the collector refused the token: remote.token must be a project\'s token not revoked, or the collector\'s FASTIFY_MONITOR_INGEST_TOKEN'
    if (status === 403) return 'the collector refused the project: the `project` option must be the token\'s project'
    if (status === 404) return 'the collector has no ingest route at remote.url: is it the dashboard URL, and is the collector\'s FASTIFY_MONITOR_INGEST_TOKEN set?'
    if (status === 400 || status === 413 || status === 415) return 'the collector refused the batch'
    return 'the collector failed'
  }
}

/**
 * fetch's own error says only "fetch failed"; the cause (ECONNREFUSED, ENOTFOUND, a timeout) is one level
 * down. This one names the URL and the cause, and keeps the cause's code for the writer's log and retries.
 */
function unreachable (url: string, timeoutMs: number, err: unknown): Error {
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  const name = (err as { name?: string }).name
  const why = name === 'TimeoutError' ? `no answer within ${timeoutMs} ms (remote.timeoutMs)` : cause?.code ?? cause?.message ?? (err as Error).message
  return Object.assign(new Error(`cannot reach the collector at ${url}: ${why}`), { code: cause?.code ?? (name === 'TimeoutError' ? 'ETIMEDOUT' : undefined) })
}

/** A batch to post, with the main thread's index of each of its endpoints (the answer's levels are in that order). */
export interface OutgoingBatch {
  body: IngestBatch
  indexes: number[]
}

/** Rows of a unit whose endpoint ids are the main thread's endpoint indexes (a sender has no database). */
export type IndexedUnit = Pick<WriteUnit, 'id' | 'endpointId' | 'timeMs' | 'durationMs' | 'statusCode' | 'seq' | 'group' | 'ip'>

/** The endpoints a batch names, each once, in the order first met: its requests and diagnostics refer to them by position. */
class BatchEndpoints {
  readonly endpoints: IngestBatch['endpoints'] = []
  /** The main thread's index of each, in the same order (the answer's levels come in it). */
  readonly indexes: number[] = []
  readonly #positions = new Map<number, number>()
  readonly #keys: ReadonlyArray<EndpointKey | undefined>
  readonly #max: number

  constructor (keys: ReadonlyArray<EndpointKey | undefined>, max: number) {
    this.#keys = keys
    this.#max = max
  }

  /** The endpoint's position in the batch, added if new; undefined when it is new and the batch names `max` already. */
  position (index: number): number | undefined {
    let at = this.#positions.get(index)
    if (at === undefined) {
      if (this.endpoints.length === this.#max) return undefined
      at = this.endpoints.length
      this.#positions.set(index, at)
      const key = this.#keys[index]!
      this.endpoints.push({ method: key.method, route: key.route })
      this.indexes.push(index)
    }
    return at
  }
}

export class IngestSender {
  readonly #remote: ResolvedRemote
  readonly #version: string
  readonly #instance: IngestBatch['instance']
  readonly #project: { project?: string }

  constructor (remote: ResolvedRemote, { version, instanceToken }: { version: string, instanceToken: string }) {
    this.#remote = remote
    this.#version = version
    this.#instance = { host: hostname().slice(0, 255), pid: process.pid, token: instanceToken }
    this.#project = remote.project === undefined ? {} : { project: remote.project }
  }

  /**
   * The batches of a unit: one, unless its rows name more endpoints than a batch may, when they are cut
   * into runs of rows (`<unit id>/1`, `/2`, … so a retry of the same unit carries the same ids).
   */
  batches (unit: IndexedUnit, keys: ReadonlyArray<EndpointKey | undefined>): OutgoingBatch[] {
    const batches: OutgoingBatch[] = []
    let start = 0
    while (start < unit.endpointId.length) {
      const named = new BatchEndpoints(keys, MAX_INGEST_ENDPOINTS)
      const endpoint: number[] = []
      let end = start
      for (; end < unit.endpointId.length; end++) {
        const position = named.position(unit.endpointId[end]!)
        if (position === undefined) break
        endpoint.push(position)
      }
      const whole = start === 0 && end === unit.endpointId.length
      batches.push(this.#batch(whole ? unit.id : `${unit.id}/${batches.length + 1}`, named.endpoints, named.indexes, {
        endpoint,
        time: unit.timeMs.slice(start, end),
        durationMs: unit.durationMs.slice(start, end),
        statusCode: unit.statusCode.slice(start, end),
        seq: unit.seq.slice(start, end).map((seq) => seq ?? 0),
        group: unit.group.slice(start, end),
        ip: unit.ip.slice(start, end)
      }))
      start = end
    }
    return batches
  }

  /**
   * Batches of no request that name these endpoints (the collector registers them and answers their
   * levels) and move the last-request time of those in `seen` (endpoint index → ms).
   */
  polls (keys: readonly EndpointKey[], seen: ReadonlyMap<number, number> = new Map()): OutgoingBatch[] {
    const batches: OutgoingBatch[] = []
    for (let from = 0; from < keys.length; from += MAX_INGEST_ENDPOINTS) {
      const chunk = keys.slice(from, from + MAX_INGEST_ENDPOINTS)
      const touched = chunk.flatMap((key, position) => seen.has(key.index) ? [[position, seen.get(key.index)!] as const] : [])
      batches.push(this.#batch(randomUUID(), chunk.map(({ method, route }) => ({ method, route })), chunk.map((key) => key.index),
        { endpoint: [], time: [], durationMs: [], statusCode: [] },
        touched.length === 0 ? undefined : { endpoint: touched.map(([position]) => position), time: touched.map(([, time]) => time) }))
    }
    return batches
  }

  /**
   * A batch of what levels 2 and 3 found (no request): the endpoints it names, each once. Its id is new;
   * the caller keeps the batch to send it again, under the same id, until the collector answers.
   */
  diagnostics (part: DiagnosticsPart, keys: ReadonlyArray<EndpointKey | undefined>, keepPerHour: number): OutgoingBatch {
    // PendingDiagnostics.take cut the part at MAX_INGEST_ENDPOINTS endpoints: each has a position
    const named = new BatchEndpoints(keys, MAX_INGEST_ENDPOINTS)
    const position = (index: number): number => named.position(index)!
    const diagnostics: IngestDiagnostics = {
      keepPerHour,
      outliers: part.outliers.map(({ endpointIndex, timeMs, ...o }) => ({ ...o, endpoint: position(endpointIndex), time: timeMs })),
      overflow: part.overflow.map(([index, hourMs, count]) => ({ endpoint: position(index), hour: hourMs, count })),
      profiles: part.profiles.map(({ endpointIndex, timeMs, ...p }) => ({ ...p, endpoint: position(endpointIndex), time: timeMs }))
    }
    const batch = this.#batch(randomUUID(), named.endpoints, named.indexes, { endpoint: [], time: [], durationMs: [], statusCode: [] })
    batch.body.diagnostics = diagnostics
    return batch
  }

  #batch (id: string, endpoints: IngestBatch['endpoints'], indexes: number[], requests: IngestBatch['requests'], seen?: IngestBatch['seen']): OutgoingBatch {
    const body: IngestBatch = { batch: id, ...this.#project, version: this.#version, instance: this.#instance, endpoints, requests, ...(seen === undefined ? {} : { seen }) }
    return { body, indexes }
  }

  /** Posts a batch; resolves with the collector's answer, or throws (a {@link CollectorError}, a network error, a timeout). */
  async post ({ body }: OutgoingBatch): Promise<IngestResult> {
    const json = JSON.stringify(body)
    const { compress, ingestUrl, timeoutMs, token } = this.#remote
    const response = await fetch(ingestUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        ...(compress ? { 'content-encoding': 'gzip' } : {})
      },
      // level 1: the numbers and repeated strings of a batch compress about as well at the fastest level
      body: compress ? await gzipAsync(json, { level: 1 }) : json,
      signal: AbortSignal.timeout(timeoutMs)
    }).catch((err: unknown) => { throw unreachable(ingestUrl, timeoutMs, err) })
    const answer = await response.text()
    if (!response.ok) throw new CollectorError(response.status, answer)
    return JSON.parse(answer) as IngestResult
  }
}
