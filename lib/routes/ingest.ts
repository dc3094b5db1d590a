import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { bearerMatcher } from '../auth/bearer.js'
import { PROJECT_TOKEN_PREFIX } from '../auth/project-tokens.js'
import { MAX_GROUP_LENGTH } from '../group-by.js'
import { redactSentEvidence, type RequestEvidence } from '../collection/evidence.js'
import type { RedactionRules } from '../collection/redact.js'
import { DEFAULT_PROJECT, INGEST_BODY_LIMIT, MAX_INGEST_DIAGNOSTICS, MAX_INGEST_ENDPOINTS, MAX_INGEST_REQUESTS, MAX_IP_LENGTH, PROJECT_NAME, type IngestBatch } from '../protocol.js'
import { DAY_MS, HOUR_MS } from '../time.js'
import { BadRequest, NOT_MONITORED, type ApiRoutes } from './context.js'
import { replies } from './schemas.js'

const column = <T>(items: T) => ({ type: 'array', maxItems: MAX_INGEST_REQUESTS, items }) as const
const endpointIndex = { type: 'integer', minimum: 0, maximum: MAX_INGEST_ENDPOINTS - 1 } as const
const duration = { type: 'number', minimum: 0, maximum: 86_400_000 } as const
const nullableMs = { type: ['number', 'null'] } as const

/** An outlier's request as this package's senders store it (RequestEvidence), sizes capped. */
const SENT_REQUEST = {
  type: 'object',
  required: ['method', 'url', 'headers'],
  additionalProperties: false,
  properties: {
    method: { type: 'string', maxLength: 32 },
    url: { type: 'string', maxLength: 4_096 },
    params: {},
    query: {},
    headers: { type: 'object', maxProperties: 64, additionalProperties: { type: 'string', maxLength: 2_048 } },
    body: { type: ['string', 'null'], maxLength: 1_048_576 },
    bodyTruncated: { type: 'boolean' },
    ip: { type: 'string', maxLength: MAX_IP_LENGTH }
  }
} as const

/** Levels 2 and 3 (IngestDiagnostics): outliers with their evidence, counts past the cap, call trees. */
const DIAGNOSTICS = {
  type: 'object',
  required: ['keepPerHour', 'outliers', 'overflow', 'profiles'],
  additionalProperties: false,
  properties: {
    keepPerHour: { type: 'integer', minimum: 0, maximum: 1_000_000 },
    outliers: {
      type: 'array',
      maxItems: MAX_INGEST_DIAGNOSTICS,
      items: {
        type: 'object',
        required: ['endpoint', 'time', 'durationMs', 'thresholdMs', 'statusCode', 'request', 'phases', 'process', 'stacks'],
        additionalProperties: false,
        properties: {
          endpoint: endpointIndex,
          time: { type: 'number' },
          durationMs: duration,
          thresholdMs: duration,
          statusCode: { type: 'integer', minimum: 100, maximum: 999 },
          request: SENT_REQUEST,
          phases: {
            type: 'object',
            required: ['total'],
            additionalProperties: false,
            properties: { beforeHandler: nullableMs, handler: nullableMs, afterHandler: nullableMs, total: { type: 'number' } }
          },
          process: { type: 'object' },
          stacks: { type: ['object', 'null'] }
        }
      }
    },
    overflow: {
      type: 'array',
      maxItems: MAX_INGEST_DIAGNOSTICS,
      items: {
        type: 'object',
        required: ['endpoint', 'hour', 'count'],
        additionalProperties: false,
        properties: { endpoint: endpointIndex, hour: { type: 'number' }, count: { type: 'integer', minimum: 1, maximum: 1_000_000_000 } }
      }
    },
    profiles: {
      type: 'array',
      maxItems: MAX_INGEST_DIAGNOSTICS,
      items: {
        type: 'object',
        required: ['endpoint', 'time', 'durationMs', 'tree'],
        additionalProperties: false,
        properties: { endpoint: endpointIndex, time: { type: 'number' }, durationMs: duration, tree: { type: 'object' } }
      }
    }
  }
} as const

/** `POST <prefix>/api/ingest`: the body's JSON schema (the README's ingest format). */
export const INGEST_BATCH = {
  type: 'object',
  required: ['batch', 'version', 'instance', 'endpoints', 'requests'],
  additionalProperties: false,
  properties: {
    batch: { type: 'string', minLength: 1, maxLength: 64 },
    project: { type: 'string', pattern: PROJECT_NAME.source },
    version: { type: 'string', minLength: 1, maxLength: 100 },
    instance: {
      type: 'object',
      required: ['host', 'pid', 'token'],
      additionalProperties: false,
      properties: {
        host: { type: 'string', maxLength: 255 },
        pid: { type: 'integer', minimum: 0, maximum: 2_147_483_647 },
        token: { type: 'string', minLength: 8, maxLength: 64 }
      }
    },
    endpoints: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_INGEST_ENDPOINTS,
      items: {
        type: 'object',
        required: ['method', 'route'],
        additionalProperties: false,
        properties: { method: { type: 'string', minLength: 1, maxLength: 32 }, route: { type: 'string', minLength: 1, maxLength: 2_000 } }
      }
    },
    requests: {
      type: 'object',
      required: ['endpoint', 'time', 'durationMs', 'statusCode'],
      additionalProperties: false,
      properties: {
        endpoint: column(endpointIndex),
        time: column({ type: 'number' }),
        durationMs: column(duration),
        statusCode: column({ type: 'integer', minimum: 100, maximum: 999 }),
        seq: column({ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
        group: column({ type: ['string', 'null'], maxLength: MAX_GROUP_LENGTH }),
        ip: column({ type: ['string', 'null'], maxLength: MAX_IP_LENGTH })
      }
    },
    seen: {
      type: 'object',
      required: ['endpoint', 'time'],
      additionalProperties: false,
      properties: {
        endpoint: column(endpointIndex),
        time: column({ type: 'number' })
      }
    },
    diagnostics: DIAGNOSTICS
  }
} as const

const INGEST_REPLY = {
  type: 'object',
  required: ['stored', 'levels'],
  additionalProperties: false,
  properties: {
    stored: { type: 'boolean' },
    levels: { type: 'array', items: { type: 'object', required: ['method', 'route', 'level'], additionalProperties: false, properties: { method: { type: 'string' }, route: { type: 'string' }, level: { type: 'integer' } } } }
  }
} as const

/** What the schema cannot say: the columns line up, indexes name an endpoint, times are within what is kept. */
function checkBatch (batch: IngestBatch, retentionDays: number, nowMs: number): void {
  const oldest = nowMs - retentionDays * DAY_MS
  const columns: Array<[string, { endpoint: number[], time: number[] } & Record<string, unknown[] | undefined>]> = [['requests', batch.requests]]
  if (batch.seen !== undefined) columns.push(['seen', batch.seen])
  for (const [part, values] of columns) {
    const n = values.endpoint.length
    for (const [name, column] of Object.entries(values)) {
      if (column !== undefined && column.length !== n) throw new BadRequest(`${part}.${name} must have as many values as ${part}.endpoint (${n}), has ${column.length}`)
    }
    const bad = values.endpoint.findIndex((index) => index >= batch.endpoints.length)
    if (bad >= 0) throw new BadRequest(`${part}.endpoint[${bad}] is ${values.endpoint[bad]}: there are ${batch.endpoints.length} endpoints`)
    const early = values.time.findIndex((time) => !(time >= oldest && time <= nowMs + HOUR_MS))
    if (early >= 0) throw new BadRequest(`${part}.time[${early}] must be a time in ms since the epoch within the last ${retentionDays} days (retentionDays)`)
  }
  const { diagnostics } = batch
  if (diagnostics === undefined) return
  const items: Array<[string, Array<{ endpoint: number, time?: number, hour?: number }>]> = [
    ['diagnostics.outliers', diagnostics.outliers], ['diagnostics.overflow', diagnostics.overflow], ['diagnostics.profiles', diagnostics.profiles]]
  for (const [part, list] of items) {
    list.forEach((item, i) => {
      if (item.endpoint >= batch.endpoints.length) throw new BadRequest(`${part}[${i}].endpoint is ${item.endpoint}: there are ${batch.endpoints.length} endpoints`)
      // an hour's count falls at the start of its hour, up to an hour before the oldest time kept
      const time = item.time ?? item.hour!
      if (!(time >= oldest - HOUR_MS && time <= nowMs + HOUR_MS)) throw new BadRequest(`${part}[${i}].${item.time === undefined ? 'hour' : 'time'} must be a time in ms since the epoch within the last ${retentionDays} days (retentionDays)`)
    })
  }
}

/** The outliers' request evidence redacted again by this collector's rules (see redactSentEvidence). */
function redacted (batch: IngestBatch, rules: RedactionRules): IngestBatch {
  if (batch.diagnostics === undefined || batch.diagnostics.outliers.length === 0) return batch
  const outliers = batch.diagnostics.outliers.map((o) => ({ ...o, request: redactSentEvidence(o.request as RequestEvidence, rules) }))
  return { ...batch, diagnostics: { ...batch.diagnostics, outliers } }
}

const gunzipAsync = promisify(gunzip)

/**
 * A gzip body, inflated on libuv's threads (not this one) up to the body limit: a small bomb is refused
 * with 413 before it takes memory. Fastify compares the body with its Content-Length through
 * `receivedEncodedLength`, which is the compressed size.
 */
async function inflated (payload: NodeJS.ReadableStream): Promise<Readable> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of payload) {
    size += (chunk as Buffer).length
    if (size > INGEST_BODY_LIMIT) throw tooLarge()
    chunks.push(chunk as Buffer)
  }
  let body: Buffer
  try {
    body = await gunzipAsync(Buffer.concat(chunks), { maxOutputLength: INGEST_BODY_LIMIT })
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge()
    throw Object.assign(new Error('the body is not valid gzip'), { statusCode: 400 })
  }
  return Object.assign(Readable.from([body]), { receivedEncodedLength: size })
}

function tooLarge (): Error {
  return Object.assign(new Error(`the body is larger than ${INGEST_BODY_LIMIT} bytes once inflated`), { statusCode: 413 })
}

/** Longest bearer token looked up: a project's is 48 characters. */
const MAX_TOKEN_LENGTH = 128

/**
 * Batches of requests from other processes (services that send to this one instead of writing to a
 * database of their own). A body may be gzip-compressed (`Content-Encoding: gzip`); its limit counts the
 * decompressed bytes. A batch is stored at most once by its id, so a sender retries with the same id until
 * it has an answer. A batch of no request registers its endpoints and answers their levels: that is how a
 * sender polls them.
 *
 * Two kinds of bearer token: a project's (made in the dashboard, stored hashed, revocable), whose batches
 * go to that project; and the collector's own `dashboard.ingestToken`, whose batches name any project
 * (created if new). Checked before the body is read, so a request without one costs no inflating.
 */
export const ingestRoutes: ApiRoutes = (app, { options, ingest, onIngest, retentionDays, projectTokens, redaction }) => {
  const isCollectorToken = options.ingestToken === undefined ? () => false : bearerMatcher(options.ingestToken)
  /** The project each authorised request's token grants; null for the collector's token (any project). */
  const granted = new WeakMap<FastifyRequest, string | null>()
  const authorize = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (isCollectorToken(request)) {
      granted.set(request, null)
      return
    }
    const header = request.headers.authorization ?? ''
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : ''
    const project = token.startsWith(PROJECT_TOKEN_PREFIX) && token.length <= MAX_TOKEN_LENGTH ? await projectTokens.projectOf(token) : undefined
    if (project === undefined) {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'a valid ingest token is required: a project\'s, or the collector\'s (dashboard.ingestToken)' })
      return
    }
    granted.set(request, project)
  }

  /** Each stored (or replayed) batch's project, outcome and the rows it stored, for onResponse. */
  const answered = new WeakMap<FastifyRequest, { project: string, outcome: 'stored' | 'duplicate', rows: number }>()
  app.post<{ Body: IngestBatch }>('/api/ingest', {
    config: NOT_MONITORED,
    bodyLimit: INGEST_BODY_LIMIT,
    onRequest: authorize,
    // every answer counted, the refused ones (401, 400 from the schema, 413) included
    onResponse: async (request, reply) => {
      const status = reply.statusCode
      const known = answered.get(request)
      if (status < 400 && known !== undefined) return onIngest(known.project, known.outcome, known.rows)
      // a refused batch's own `project` is not trusted as a label: the token's project, or none
      onIngest(granted.get(request) ?? '', status >= 500 ? 'failed' : 'refused', 0)
    },
    preParsing: async (request, _reply, payload) => {
      const encoding = request.headers['content-encoding']
      if (encoding === undefined || encoding === 'identity') return payload
      if (encoding !== 'gzip') throw Object.assign(new Error(`Content-Encoding ${encoding} is not supported (gzip is)`), { statusCode: 415 })
      return await inflated(payload)
    },
    schema: { body: INGEST_BATCH, response: replies(INGEST_REPLY) }
  }, async (request, reply) => {
    const batch = request.body
    const tokenProject = granted.get(request) ?? null
    if (tokenProject !== null && batch.project !== undefined && batch.project !== tokenProject) {
      return await reply.code(403).send({ error: `the token belongs to project ${tokenProject}; the batch names project ${batch.project}` })
    }
    checkBatch(batch, retentionDays, Date.now())
    const project = tokenProject ?? batch.project ?? DEFAULT_PROJECT
    const result = await ingest({ ...redacted(batch, redaction), project })
    answered.set(request, result.stored ? { project, outcome: 'stored', rows: batch.requests.endpoint.length } : { project, outcome: 'duplicate', rows: 0 })
    return result
  })
}
