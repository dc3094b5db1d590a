import type { FastifyInstance } from 'fastify'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { MonitorLevel, ResolvedDashboard } from '../options.js'
import { isTimeZone, type TimeRange } from '../queries/range.js'
import type { Guards, Sessions } from '../auth/index.js'
import type { ProjectTokenCache } from '../auth/project-tokens.js'
import type { GroupedProfile } from '../queries/profiles.js'
import type { IngestBatch, IngestResult, StoreKind } from '../protocol.js'
import { DAY_MS } from '../time.js'
import type { RedactionRules } from '../collection/redact.js'
import type { IngestOutcome } from '../metrics/ingest.js'

const DEFAULT_RANGE_DAYS = 7
const MAX_RANGE_DAYS = 1_000

/** What the dashboard needs from the rest of the plugin. */
export interface DashboardContext {
  db: Kysely<Database>
  options: ResolvedDashboard
  tablePrefix: string
  version: string
  databaseKind: () => StoreKind | undefined
  retentionDays: number
  rollupRetentionDays: number
  /** Where a PGlite-backed dashboard keeps its session key; undefined on a Postgres server. */
  sessionKeyFile: string | undefined
  /** Stores a batch another process sent to the ingest route, on the writer's thread. */
  ingest: (batch: IngestBatch) => Promise<IngestResult>
  /** How each ingest request ended, for `/metrics` (the project granted or named; '' when none is known). */
  onIngest: (project: string, outcome: IngestOutcome, rows: number) => void
  /** Level 3: an endpoint's grouped profile, merged off the request thread. */
  groupedProfile: (endpointId: number, n: number, foldLibraries: boolean) => Promise<GroupedProfile>
  /** Outliers' request values (headers, query, params, body, IP) are sent to admins only. */
  adminOnlyRequestValues: boolean
  /** This process's redaction rules (`outliers.redact`, `keep`), applied again to evidence other processes send. */
  redaction: RedactionRules
  /** Changes a level in this process (if it serves the endpoint) and in the database. */
  setLevel: (endpoint: { id: number, method: string, route: string, project: string }, level: MonitorLevel) => Promise<void>
}

/** What every resource module of the API gets: the context and the guards of its routes. */
export interface RouteContext extends DashboardContext {
  guards: Guards
  sessions: Sessions
  /** Projects' ingest tokens, looked up for the ingest route and forgotten when one is revoked here. */
  projectTokens: ProjectTokenCache
}

/** A resource module: registers its routes under `<prefix>/api`. */
export type ApiRoutes = (app: FastifyInstance, ctx: RouteContext) => void

/** Dashboard routes are never endpoints of the host app. */
export const NOT_MONITORED = { monitor: false } as const

/** A bad parameter the schema cannot express; answered 400 with its message. */
export class BadRequest extends Error {
  statusCode = 400
}

/**
 * The time zones PostgreSQL knows (`pg_timezone_names`), read once: `timeRange` checks a zone with
 * JavaScript's Intl, whose list differs (US/Pacific-New is in one and not the other).
 */
export class TimeZones {
  readonly #db: Kysely<Database>
  #names: Promise<ReadonlySet<string>> | undefined

  constructor (db: Kysely<Database>) { this.#db = db }

  async has (tz: string): Promise<boolean> {
    this.#names ??= sql<{ name: string }>`select name from pg_timezone_names`.execute(this.#db)
      .then(({ rows }) => new Set(rows.map((row) => row.name)))
    // the database is down or not ready: ask again next time (the caller's query will answer 503)
    this.#names.catch(() => { this.#names = undefined })
    return (await this.#names).has(tz)
  }
}

/** The query string of every route that reads a time range. */
export type RangeQuery = { Querystring: { from?: string, to?: string, tz?: string, project?: number } }

/** The range a query asks for: the last 7 days by default, at most 1000 days, in a valid IANA zone. */
export function timeRange (query: { from?: string, to?: string, tz?: string }): TimeRange {
  const tz = query.tz ?? 'UTC'
  if (!isTimeZone(tz)) throw new BadRequest('tz must be an IANA time zone such as Europe/Paris')
  const to = query.to === undefined ? new Date() : new Date(query.to)
  const from = query.from === undefined ? new Date(to.getTime() - DEFAULT_RANGE_DAYS * DAY_MS) : new Date(query.from)
  if (!(from < to)) throw new BadRequest('from must be before to')
  if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) throw new BadRequest(`the range may span at most ${MAX_RANGE_DAYS} days`)
  return { from, to, tz }
}
