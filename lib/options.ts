import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ConfigFileError, InvalidOptionError } from './errors.js'
import type { GroupBy } from './group-by.js'
import { DEFAULT_BUCKETS_SECONDS } from './metrics/http-duration.js'
import type { Registry } from 'prom-client'
import { readGitCommit } from './version.js'
import { redactionRules, type RedactionRules } from './collection/redact.js'
import { PROJECT_NAME } from './protocol.js'

export const DEFAULT_DATA_DIR = './.fastify-monitor'
export const DEFAULT_TABLE_PREFIX = 'fmd_'
export const DEFAULT_MONITOR_LEVEL = 1
export const DEFAULT_IGNORE_METHODS = ['HEAD', 'OPTIONS']
export const DEFAULT_MAX_BUFFERED_RECORDS = 200_000
/** 32 MiB: 200,000 ordinary records take about 8 MB; this bound holds when every record carries the longest strings kept. */
export const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024
export const DEFAULT_MAX_BATCH_SIZE = 5_000
export const DEFAULT_FLUSH_INTERVAL_MS = 250
export const DEFAULT_RETRY_MAX_DELAY_MS = 10_000
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000
export const DEFAULT_LEVEL_POLL_INTERVAL_MS = 5_000
export const DEFAULT_PARTITION_DAYS_AHEAD = 3
export const CONFIG_ENV = 'FASTIFY_MONITOR_CONFIG'
export const DATABASE_ENV = 'FASTIFY_MONITOR_DATABASE_URL'
export const METRICS_TOKEN_ENV = 'FASTIFY_MONITOR_METRICS_TOKEN'
export const UNMATCHED_ROUTE = '__unmatched__'
export const DEFAULT_METRICS_PATH = '/metrics'
export const DEFAULT_RETENTION_DAYS = 30
export const DEFAULT_ROLLUP_RETENTION_DAYS = 400
export const DEFAULT_DASHBOARD_PREFIX = '/dashboard'
export const DEFAULT_SESSION_TTL_S = 8 * 3600
export const DEFAULT_LOGIN_RATE_LIMIT = { max: 5, timeWindowMs: 15 * 60_000, maxDelayMs: 30_000 }
export const DEFAULT_OUTLIER_MIN_DURATION_MS = 5
export const SESSION_SECRET_ENV = 'FASTIFY_MONITOR_SESSION_SECRET'
export const EXPORT_TOKEN_ENV = 'FASTIFY_MONITOR_EXPORT_TOKEN'
export const TEST_RESULTS_TOKEN_ENV = 'FASTIFY_MONITOR_TEST_RESULTS_TOKEN'
export const INGEST_TOKEN_ENV = 'FASTIFY_MONITOR_INGEST_TOKEN'
export const REMOTE_URL_ENV = 'FASTIFY_MONITOR_REMOTE_URL'
export const REMOTE_TOKEN_ENV = 'FASTIFY_MONITOR_REMOTE_TOKEN'
export const DEFAULT_REMOTE_TIMEOUT_MS = 10_000
/**
 * Rows per batch sent to a collector, at most: the longest group-by value (256 code units) and IP (64) take
 * at most 6 bytes of JSON per code unit (`\u001f`), so a row takes under 2,000 bytes and 4,000 rows fit
 * the ingest route's 8 MiB whatever they hold.
 */
export const MAX_REMOTE_BATCH_SIZE = 4_000
const USERNAME = /^[A-Za-z0-9_.@-]{1,64}$/

/** A dashboard user created or updated at start. */
export interface DashboardUser {
  username: string
  /** The password itself; prefer `passwordEnv`. */
  password?: string
  /** Name of an environment variable holding the password. */
  passwordEnv?: string
  /** Default `guest` (read-only). */
  role?: 'admin' | 'guest'
}

/** The dashboard and its JSON API. */
export interface DashboardOptions {
  /** Where the dashboard is served; the API is under `<prefix>/api`. Default `/dashboard`. */
  prefix?: string
  /**
   * Users made or updated at every start (the password is reset to the configured one).
   * With no user at all in the database, the first start creates `admin` with a random password and logs it once.
   */
  users?: DashboardUser[]
  /**
   * Key material for the session cookie, at least 32 characters; also from `FASTIFY_MONITOR_SESSION_SECRET`.
   * Default: with PGlite, a random key kept in `<dataDir>.session-key` (restarts keep sessions); with a
   * PostgreSQL server, a random key per process (sessions end at restart and do not cross processes:
   * set it when several processes serve the dashboard).
   */
  sessionSecret?: string
  /** A session ends this long after login. Default 28800 s (8 h). */
  sessionTtlS?: number
  /** Bearer token of the export API; also from `FASTIFY_MONITOR_EXPORT_TOKEN`. Absent: the export API is off. */
  exportToken?: string
  /**
   * Bearer token with which the test monitor's `test` command submits results to
   * `POST <prefix>/api/test-results`; also from `FASTIFY_MONITOR_TEST_RESULTS_TOKEN`. Absent: that route is off.
   */
  testResultsToken?: string
  /**
   * Bearer token with which other processes send batches of requests to `POST <prefix>/api/ingest`
   * (the README's ingest format); also from `FASTIFY_MONITOR_INGEST_TOKEN`. Absent: that route is off.
   */
  ingestToken?: string
  /**
   * Password checks (logins, and users confirming their current password): `max` attempts per account
   * and per client IP go through at once; each further one waits twice as long as the one before
   * (1 s, 2 s, 4 s … up to `maxDelayMs`), and failures are forgotten after `timeWindowMs` without one.
   * Never a lockout: a user whose account or address someone else is guessing at waits at most
   * `maxDelayMs`. Default `{ max: 5, timeWindowMs: 900000, maxDelayMs: 30000 }`.
   */
  loginRateLimit?: { max?: number, timeWindowMs?: number, maxDelayMs?: number }
}

/** Level 2 and 3: how outliers are found and what is kept of them. */
export interface OutlierOptions {
  /** A request is an outlier above this × the endpoint's mean duration (FMD's outlierDetectionConstant). Default 2.5. */
  constant?: number
  /** Requests of an endpoint seen before any is called an outlier. Default 50. */
  minSamples?: number
  /** Durations the mean is taken over (the latest ones). Default 500. */
  window?: number
  /**
   * A request faster than this is never an outlier, whatever its endpoint's mean: on a 0.5 ms endpoint
   * a 2 ms request is noise, and anyone could fill the hourly cap with them (the unmatched endpoint
   * included). Default 5 ms.
   */
  minDurationMs?: number
  /** Outliers kept in full per endpoint per hour, the slowest of the hour (a slower one replaces the fastest kept); all are counted. Default 100. */
  maxPerEndpointHour?: number
  /** Request body bytes kept. Default 4096; 0 keeps none. */
  bodyLimitBytes?: number
  /**
   * More name fragments whose values are stored as `[redacted]`, in headers, query parameters, route
   * parameters and body fields at any depth; matched inside the name, case-insensitively, ignoring
   * `-`, `_` and `.`. Added to secret, token, passw, pwd, key, auth, session, cookie, card, ssn, and more
   * (see the README).
   */
  redact?: string[]
  /** Names never redacted by name (exact, case-insensitive), e.g. a `x-cache-key` you need to see; credential-shaped values are still cut. */
  keep?: string[]
  /** Header names stored as `[redacted]`; the same as {@link OutlierOptions.redact}, kept for compatibility. */
  redactHeaders?: string[]
  /** Request values (headers, query, params, body, IP) of outliers are shown to admins only; guests see the rest of the evidence. Default `true`. */
  adminOnlyRequestValues?: boolean
  /** Stack paths under this directory are shown relative to it. Default `process.cwd()`. */
  appRoot?: string
  /** Environment variables stored with each outlier. Default none (the environment holds secrets). */
  envAllowList?: string[]
  /** The stack sampler's interval, µs (also the level-3 profiler's). Default 1000. */
  sampleIntervalUs?: number
  /**
   * When level 2 runs V8's stack sampler for outlier evidence. It costs every request of the process
   * while it runs, outliers or not (4–5 µs per request on the hello route, where all of level 2 without
   * it costs under 1 µs more than level 1). `'after-outlier'`: from an outlier until none has come for
   * 10 minutes, so an app without outliers pays nothing (the outlier that starts it has no stacks, the
   * ones after it do); `'always'`: whenever an endpoint is at level 2; `'off'`: never at level 2. Level
   * 3 always samples (its call trees are made of samples). Default `'after-outlier'`.
   */
  stackSampling?: StackSampling
  /** Level 3: the share of requests whose call tree is kept, 0 to 1. Default 0.1. */
  profileShare?: number
}

export interface ResolvedOutliers {
  constant: number
  minSamples: number
  window: number
  minDurationMs: number
  maxPerEndpointHour: number
  bodyLimitBytes: number
  redaction: RedactionRules
  adminOnlyRequestValues: boolean
  appRoot: string
  envAllowList: string[]
  sampleIntervalUs: number
  stackSampling: StackSampling
  profileShare: number
}

export const STACK_SAMPLING = ['after-outlier', 'always', 'off'] as const
export type StackSampling = typeof STACK_SAMPLING[number]

/** Resolved dashboard settings. */
export interface ResolvedDashboard {
  prefix: string
  users: Array<{ username: string, password: string, role: 'admin' | 'guest' }>
  sessionSecret: string | undefined
  sessionTtlS: number
  exportToken: string | undefined
  testResultsToken: string | undefined
  ingestToken: string | undefined
  loginRateLimit: { max: number, timeWindowMs: number, maxDelayMs: number }
}

/** The Prometheus exporter's settings. */
export interface MetricsOptions {
  /** Where metrics are served. Default `/metrics`. */
  path?: string
  /** When set, scrapes must send `Authorization: Bearer <token>`; also from `FASTIFY_MONITOR_METRICS_TOKEN`. */
  token?: string
  /** prom-client's Node.js runtime metrics (`nodejs_*`, `process_*`). Default `true`. */
  defaultMetrics?: boolean
  /** Upper bounds of the duration histogram's buckets, in seconds. Default 50 µs … 10 s (17 buckets). */
  buckets?: number[]
  /** A prom-client registry to put the metrics in (and serve), e.g. one holding your own metrics. Default: a new one. */
  registry?: Registry
  /**
   * In a `node:cluster` worker, hand this registry (and prom-client's global one) to prom-client's
   * AggregatorRegistry, so the primary can serve every worker's metrics summed. Default `false`.
   */
  cluster?: boolean
}

/** Resolved exporter settings. */
export interface ResolvedMetrics {
  path: string
  token: string | undefined
  defaultMetrics: boolean
  buckets: number[]
  registry: Registry | undefined
  cluster: boolean
}

/** A central collector (`npx fastify-monitoring-dashboard serve`) this process sends its records to. */
export interface RemoteOptions {
  /** The collector's dashboard URL, as `serve` prints it, e.g. `http://collector:3300/dashboard`; also from `FASTIFY_MONITOR_REMOTE_URL`. */
  url?: string
  /** A project's token from the collector's dashboard, or the collector's own ingest token; also from `FASTIFY_MONITOR_REMOTE_TOKEN`. */
  token?: string
  /** How long one send may take before it counts as failed and is retried. Default 10000 ms. */
  timeoutMs?: number
  /** Send batches gzip-compressed. Default `true`. */
  compress?: boolean
}

/** Resolved collector settings: where batches are posted. */
export interface ResolvedRemote {
  /** The ingest route's URL. */
  ingestUrl: string
  token: string
  /** The `project` option, sent with every batch (a project's token implies its project; it must agree). */
  project: string | undefined
  timeoutMs: number
  compress: boolean
}

/** A monitoring level: 0 last-seen only, 1 + every request, 2 + outliers, 3 + profiler. */
export type MonitorLevel = 0 | 1 | 2 | 3

/**
 * Options of the plugin; every one is optional.
 *
 * ### Examples
 * ```ts
 * await app.register(monitor, { database: process.env.DATABASE_URL, appVersion: '1.4.2' })
 * ```
 */
export interface MonitorOptions {
  /** `false` turns all recording off (FMD's kill switch). Default `true`. */
  enabled?: boolean
  /** A `postgres://` URL. Absent: embedded PGlite in {@link MonitorOptions.dataDir}. */
  database?: string
  /** PGlite data directory when no `database` is given (`memory://` for a throw-away one). Default `./.fastify-monitor`. */
  dataDir?: string
  /** The app's version, stored with every request. */
  appVersion?: string
  /** Path to a `.git` directory (or worktree `.git` file): HEAD's commit id becomes the version; wins over `appVersion`. */
  git?: string
  /** Group-by key per request: a value or a function of the request (FMD semantics). */
  groupBy?: GroupBy
  /** Level of endpoints the database knows nothing about yet. Default 1. */
  defaultMonitorLevel?: MonitorLevel
  /** Prefix of every table; letters, digits, `_`. Default `fmd_`. */
  tablePrefix?: string
  /**
   * The project (service) this app's endpoints belong to, shown in the dashboard's project picker: services
   * that share a database or send to one collector keep their endpoints apart. Letters, digits, `_`, `.`, `-`
   * (1–64). Default `default`; with `remote` and a project's token, that token's project.
   */
  project?: string
  /** Methods never recorded. Default `['HEAD', 'OPTIONS']`. */
  ignoreMethods?: string[]
  /** URL templates never recorded, e.g. `['/health']`. */
  ignoreRoutes?: string[]
  /** Records held in memory while the database is slow or down; past it the oldest are dropped and counted. Default 200000. */
  maxBufferedRecords?: number
  /**
   * Memory those records may hold (columns and strings; the IP is cut to 64 characters and the group-by
   * value to 256 when a request is recorded); past it the oldest are dropped and counted. Default 32 MiB.
   */
  maxBufferedBytes?: number
  /** Most rows written by one statement. Default 5000. */
  maxBatchSize?: number
  /** How often recorded requests are handed to the writer thread, and how long rows there wait for a batch to fill (4 times as long for a batch with fewer than 4 rows per endpoint). Default 250 ms. */
  flushIntervalMs?: number
  /** Longest wait between retries while the database is unreachable. Default 10000 ms. */
  retryMaxDelayMs?: number
  /** How long `app.close()` waits for buffered records to be written. Default 10000 ms. */
  closeTimeoutMs?: number
  /** How often levels changed by other processes are picked up. Default 5000 ms. */
  levelPollIntervalMs?: number
  /** Daily partitions of the requests table created ahead of time. Default 3. */
  partitionDaysAhead?: number
  /** A JSON file with any of these options; also taken from `FASTIFY_MONITOR_CONFIG`. */
  configFile?: string
  /** The Prometheus exporter: `false` to turn it off, a path, or {@link MetricsOptions}. Default `/metrics`. */
  metrics?: boolean | string | MetricsOptions
  /** Days raw requests are kept; older daily partitions are dropped. Default 30. */
  retentionDays?: number
  /** Days the hourly rollups are kept (at least `retentionDays`). Default 400. */
  rollupRetentionDays?: number
  /** The dashboard and its API: `false` to turn it off, a prefix, or {@link DashboardOptions}. Default `/dashboard`. */
  dashboard?: boolean | string | DashboardOptions
  /** Outlier detection and evidence for endpoints at level 2 and 3. */
  outliers?: OutlierOptions
  /**
   * Send the records to a central collector over HTTP instead of writing them to a database: this process
   * then has no database and no dashboard (the collector has them), and keeps its own `/metrics`.
   */
  remote?: RemoteOptions
}

/** Options after defaults, config file and env vars are applied and everything is checked. */
export interface ResolvedOptions {
  enabled: boolean
  database: { kind: 'postgres', connectionString: string } | { kind: 'pglite', dataDir: string }
  appVersion: string
  groupBy: GroupBy | undefined
  defaultMonitorLevel: MonitorLevel
  tablePrefix: string
  /** Undefined: `default`, or with `remote` the project of the token. */
  project: string | undefined
  ignoreMethods: ReadonlySet<string>
  ignoreRoutes: ReadonlySet<string>
  maxBufferedRecords: number
  maxBufferedBytes: number
  maxBatchSize: number
  flushIntervalMs: number
  retryMaxDelayMs: number
  closeTimeoutMs: number
  levelPollIntervalMs: number
  partitionDaysAhead: number
  retentionDays: number
  rollupRetentionDays: number
  metrics: ResolvedMetrics | false
  dashboard: ResolvedDashboard | false
  outliers: ResolvedOutliers
  /** Set: records go to this collector, and `database` is not used. */
  remote: ResolvedRemote | undefined
}

/** The options that cross into the writer's thread (no functions). */
export type StorageOptions = Omit<ResolvedOptions, 'groupBy' | 'ignoreMethods' | 'ignoreRoutes' | 'enabled' | 'metrics' | 'dashboard' | 'outliers'>

const KNOWN_OPTIONS = new Set<string>([
  'enabled', 'database', 'dataDir', 'appVersion', 'git', 'groupBy', 'defaultMonitorLevel', 'tablePrefix', 'project',
  'ignoreMethods', 'ignoreRoutes', 'maxBufferedRecords', 'maxBufferedBytes', 'maxBatchSize', 'flushIntervalMs', 'retryMaxDelayMs',
  'closeTimeoutMs', 'levelPollIntervalMs', 'partitionDaysAhead', 'configFile', 'metrics',
  'retentionDays', 'rollupRetentionDays', 'dashboard', 'outliers', 'remote'
])
const OUTLIER_KEYS = new Set(['constant', 'minSamples', 'window', 'minDurationMs', 'maxPerEndpointHour', 'bodyLimitBytes', 'redact', 'keep', 'redactHeaders',
  'adminOnlyRequestValues', 'appRoot', 'envAllowList', 'sampleIntervalUs', 'stackSampling', 'profileShare'])
const DASHBOARD_KEYS = new Set(['prefix', 'users', 'sessionSecret', 'sessionTtlS', 'exportToken', 'testResultsToken', 'ingestToken', 'loginRateLimit'])
const METRICS_KEYS = new Set(['path', 'token', 'defaultMetrics', 'buckets', 'registry', 'cluster'])
const REMOTE_KEYS = new Set(['url', 'token', 'timeoutMs', 'compress'])
const TABLE_PREFIX = /^[a-z_][a-z0-9_]{0,29}$/
export const POSTGRES_URL = /^postgres(ql)?:\/\//

type Checked<T> = T | Error

function integer (name: string, value: unknown, fallback: number, min: number, max: number): Checked<number> {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    return new InvalidOptionError(name, `must be an integer from ${min} to ${max}, got ${describe(value)}`)
  }
  return value
}

function stringList (name: string, value: unknown, fallback: string[]): Checked<string[]> {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    return new InvalidOptionError(name, `must be an array of strings, got ${describe(value)}`)
  }
  return value
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
  if (Array.isArray(value)) return 'an array'
  return value === null ? 'null' : `${typeof value} ${typeof value === 'object' ? '' : String(value)}`.trim()
}

/** Reads the JSON config file named by `configFile` or the env var; `{}` when there is none. */
export function readConfigFile (path: string | undefined): Record<string, unknown> {
  if (path === undefined || path === '') return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(resolve(path), 'utf8'))
  } catch (err) {
    throw new ConfigFileError(path, (err as Error).message)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigFileError(path, 'it must hold a JSON object')
  }
  return parsed as Record<string, unknown>
}

/** A connection string fit for an error message: no user:password@, no password-like query parameter. */
export function maskUrl (url: string): string {
  return url.replace(/\/\/[^/?#]*@/, '//***@').replace(/([?&;][^=&;#]*(?:pass|secret|key|token)[^=&;#]*=)[^&;#]*/gi, '$1***')
}

function resolveDatabase (raw: Record<string, unknown>): Checked<ResolvedOptions['database']> {
  const { database, dataDir } = raw
  if (database !== undefined) {
    if (typeof database !== 'string' || !POSTGRES_URL.test(database)) {
      return new InvalidOptionError('database', `must be a postgres:// or postgresql:// URL, got ${describe(typeof database === 'string' ? maskUrl(database) : database)}`)
    }
    return { kind: 'postgres', connectionString: database }
  }
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir === '')) {
    return new InvalidOptionError('dataDir', `must be a non-empty path, got ${describe(dataDir)}`)
  }
  return { kind: 'pglite', dataDir: dataDir === undefined ? DEFAULT_DATA_DIR : dataDir as string }
}

function resolveMetrics (value: unknown, env: NodeJS.ProcessEnv): Checked<ResolvedMetrics | false> {
  if (value === false) return false
  const given: Record<string, unknown> = value === undefined || value === true
    ? {}
    : typeof value === 'string' ? { path: value } : value as Record<string, unknown>
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    return new InvalidOptionError('metrics', `must be a boolean, a path or an object, got ${describe(value)}`)
  }
  for (const key of Object.keys(given)) {
    if (!METRICS_KEYS.has(key)) return new InvalidOptionError(`metrics.${key}`, 'is not an option of the exporter')
  }
  const path = given.path ?? DEFAULT_METRICS_PATH
  if (typeof path !== 'string' || !path.startsWith('/')) return new InvalidOptionError('metrics.path', `must start with "/", got ${describe(path)}`)
  const token = given.token ?? env[METRICS_TOKEN_ENV]
  if (token !== undefined && (typeof token !== 'string' || token.length < 8)) {
    return new InvalidOptionError('metrics.token', 'must be a string of at least 8 characters')
  }
  if (given.defaultMetrics !== undefined && typeof given.defaultMetrics !== 'boolean') {
    return new InvalidOptionError('metrics.defaultMetrics', `must be a boolean, got ${describe(given.defaultMetrics)}`)
  }
  const buckets = given.buckets ?? DEFAULT_BUCKETS_SECONDS
  if (!Array.isArray(buckets) || buckets.length === 0 ||
    !buckets.every((b, i) => typeof b === 'number' && Number.isFinite(b) && b > 0 && (i === 0 || b > (buckets[i - 1] as number)))) {
    return new InvalidOptionError('metrics.buckets', 'must be a non-empty list of increasing positive numbers (seconds)')
  }
  const registry = given.registry
  if (registry !== undefined && (typeof registry !== 'object' || registry === null || typeof (registry as Registry).registerMetric !== 'function')) {
    return new InvalidOptionError('metrics.registry', 'must be a prom-client Registry')
  }
  if (given.cluster !== undefined && typeof given.cluster !== 'boolean') {
    return new InvalidOptionError('metrics.cluster', `must be a boolean, got ${describe(given.cluster)}`)
  }
  return {
    path,
    token: token as string | undefined,
    defaultMetrics: given.defaultMetrics !== false,
    buckets: buckets as number[],
    registry: registry as Registry | undefined,
    cluster: given.cluster === true
  }
}

function resolveUsers (value: unknown, env: NodeJS.ProcessEnv): Checked<ResolvedDashboard['users']> {
  if (value === undefined) return []
  if (!Array.isArray(value)) return new InvalidOptionError('dashboard.users', `must be an array, got ${describe(value)}`)
  const users: ResolvedDashboard['users'] = []
  for (const [i, user] of value.entries()) {
    const name = `dashboard.users[${i}]`
    if (typeof user !== 'object' || user === null) return new InvalidOptionError(name, 'must be an object')
    const { username, password, passwordEnv, role = 'guest' } = user as Record<string, unknown>
    if (typeof username !== 'string' || !USERNAME.test(username)) return new InvalidOptionError(`${name}.username`, `must match ${USERNAME}`)
    if (role !== 'admin' && role !== 'guest') return new InvalidOptionError(`${name}.role`, `must be "admin" or "guest", got ${describe(role)}`)
    const secret = password ?? (typeof passwordEnv === 'string' ? env[passwordEnv] : undefined)
    if (typeof secret !== 'string' || secret.length < 8) {
      return new InvalidOptionError(`${name}.password`, typeof passwordEnv === 'string' && password === undefined
        ? `must be at least 8 characters: environment variable ${passwordEnv} is unset or shorter`
        : 'must be a string of at least 8 characters (or give passwordEnv)')
    }
    users.push({ username, password: secret, role })
  }
  return users
}

/** A bearer token of the dashboard's machine-facing routes: absent (the route is off) or 16 characters at least. */
function bearerTokenOption (name: string, value: unknown): Checked<string | undefined> {
  if (value !== undefined && (typeof value !== 'string' || value.length < 16)) {
    return new InvalidOptionError(`dashboard.${name}`, 'must be a string of at least 16 characters')
  }
  return value
}

function resolveDashboard (value: unknown, env: NodeJS.ProcessEnv): Checked<ResolvedDashboard | false> {
  if (value === false) return false
  const given: unknown = value === undefined || value === true ? {} : typeof value === 'string' ? { prefix: value } : value
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    return new InvalidOptionError('dashboard', `must be a boolean, a prefix or an object, got ${describe(value)}`)
  }
  const options = given as Record<string, unknown>
  for (const key of Object.keys(options)) {
    if (!DASHBOARD_KEYS.has(key)) return new InvalidOptionError(`dashboard.${key}`, 'is not an option of the dashboard')
  }
  const prefix = options.prefix ?? DEFAULT_DASHBOARD_PREFIX
  if (typeof prefix !== 'string' || !/^\/[A-Za-z0-9_\-/]*[A-Za-z0-9_-]$/.test(prefix)) {
    return new InvalidOptionError('dashboard.prefix', `must be a path like "/dashboard" (no trailing slash), got ${describe(prefix)}`)
  }
  const users = resolveUsers(options.users, env)
  if (users instanceof Error) return users
  const sessionSecret = options.sessionSecret ?? env[SESSION_SECRET_ENV]
  if (sessionSecret !== undefined && (typeof sessionSecret !== 'string' || sessionSecret.length < 32)) {
    return new InvalidOptionError('dashboard.sessionSecret', 'must be a string of at least 32 characters')
  }
  const sessionTtlS = integer('dashboard.sessionTtlS', options.sessionTtlS, DEFAULT_SESSION_TTL_S, 60, 30 * 86_400)
  if (sessionTtlS instanceof Error) return sessionTtlS
  const exportToken = bearerTokenOption('exportToken', options.exportToken ?? env[EXPORT_TOKEN_ENV])
  if (exportToken instanceof Error) return exportToken
  const testResultsToken = bearerTokenOption('testResultsToken', options.testResultsToken ?? env[TEST_RESULTS_TOKEN_ENV])
  if (testResultsToken instanceof Error) return testResultsToken
  const ingestToken = bearerTokenOption('ingestToken', options.ingestToken ?? env[INGEST_TOKEN_ENV])
  if (ingestToken instanceof Error) return ingestToken
  const limit = options.loginRateLimit ?? DEFAULT_LOGIN_RATE_LIMIT
  if (typeof limit !== 'object' || limit === null || Array.isArray(limit)) return new InvalidOptionError('dashboard.loginRateLimit', 'must be { max, timeWindowMs, maxDelayMs }')
  const max = integer('dashboard.loginRateLimit.max', (limit as Record<string, unknown>).max, DEFAULT_LOGIN_RATE_LIMIT.max, 1, 10_000)
  if (max instanceof Error) return max
  const timeWindowMs = integer('dashboard.loginRateLimit.timeWindowMs', (limit as Record<string, unknown>).timeWindowMs, DEFAULT_LOGIN_RATE_LIMIT.timeWindowMs, 1_000, 86_400_000)
  if (timeWindowMs instanceof Error) return timeWindowMs
  const maxDelayMs = integer('dashboard.loginRateLimit.maxDelayMs', (limit as Record<string, unknown>).maxDelayMs, DEFAULT_LOGIN_RATE_LIMIT.maxDelayMs, 1_000, 3_600_000)
  if (maxDelayMs instanceof Error) return maxDelayMs
  for (const key of Object.keys(limit)) {
    if (!['max', 'timeWindowMs', 'maxDelayMs'].includes(key)) return new InvalidOptionError(`dashboard.loginRateLimit.${key}`, 'is not an option of the login limit')
  }
  return {
    prefix,
    users,
    sessionSecret: sessionSecret as string | undefined,
    sessionTtlS,
    exportToken,
    testResultsToken,
    ingestToken,
    loginRateLimit: { max, timeWindowMs, maxDelayMs }
  }
}

function resolveOutliers (value: unknown): Checked<ResolvedOutliers> {
  const given = (value ?? {}) as Record<string, unknown>
  if (typeof given !== 'object' || Array.isArray(given)) return new InvalidOptionError('outliers', `must be an object, got ${describe(value)}`)
  for (const key of Object.keys(given)) {
    if (!OUTLIER_KEYS.has(key)) return new InvalidOptionError(`outliers.${key}`, 'is not an option of outlier detection')
  }
  const constant = given.constant ?? 2.5
  if (typeof constant !== 'number' || !Number.isFinite(constant) || constant <= 1 || constant > 1000) {
    return new InvalidOptionError('outliers.constant', `must be a number above 1, got ${describe(constant)}`)
  }
  const profileShare = given.profileShare ?? 0.1
  if (typeof profileShare !== 'number' || !(profileShare >= 0 && profileShare <= 1)) {
    return new InvalidOptionError('outliers.profileShare', `must be a number from 0 to 1, got ${describe(profileShare)}`)
  }
  const minSamples = integer('outliers.minSamples', given.minSamples, 50, 1, 1_000_000)
  const window = integer('outliers.window', given.window, 500, 1, 100_000)
  const maxPerEndpointHour = integer('outliers.maxPerEndpointHour', given.maxPerEndpointHour, 100, 0, 1_000_000)
  const bodyLimitBytes = integer('outliers.bodyLimitBytes', given.bodyLimitBytes, 4_096, 0, 1_048_576)
  const sampleIntervalUs = integer('outliers.sampleIntervalUs', given.sampleIntervalUs, 1_000, 100, 1_000_000)
  const redactHeaders = stringList('outliers.redactHeaders', given.redactHeaders, [])
  const redact = stringList('outliers.redact', given.redact, [])
  const keep = stringList('outliers.keep', given.keep, [])
  const envAllowList = stringList('outliers.envAllowList', given.envAllowList, [])
  for (const checked of [minSamples, window, maxPerEndpointHour, bodyLimitBytes, sampleIntervalUs, redactHeaders, redact, keep, envAllowList]) {
    if (checked instanceof Error) return checked
  }
  const minDurationMs = given.minDurationMs ?? DEFAULT_OUTLIER_MIN_DURATION_MS
  if (typeof minDurationMs !== 'number' || !Number.isFinite(minDurationMs) || minDurationMs < 0 || minDurationMs > 600_000) {
    return new InvalidOptionError('outliers.minDurationMs', `must be a number of ms from 0 to 600000, got ${describe(minDurationMs)}`)
  }
  if (given.adminOnlyRequestValues !== undefined && typeof given.adminOnlyRequestValues !== 'boolean') {
    return new InvalidOptionError('outliers.adminOnlyRequestValues', `must be a boolean, got ${describe(given.adminOnlyRequestValues)}`)
  }
  const stackSampling = given.stackSampling ?? 'after-outlier'
  if (!(STACK_SAMPLING as readonly unknown[]).includes(stackSampling)) {
    return new InvalidOptionError('outliers.stackSampling', `must be one of ${STACK_SAMPLING.map((m) => `'${m}'`).join(', ')}, got ${describe(stackSampling)}`)
  }
  if (given.appRoot !== undefined && (typeof given.appRoot !== 'string' || given.appRoot === '')) {
    return new InvalidOptionError('outliers.appRoot', `must be a directory path, got ${describe(given.appRoot)}`)
  }
  return {
    constant,
    minSamples: minSamples as number,
    window: window as number,
    minDurationMs,
    maxPerEndpointHour: maxPerEndpointHour as number,
    bodyLimitBytes: bodyLimitBytes as number,
    redaction: redactionRules([...(redact as string[]), ...(redactHeaders as string[])], keep as string[]),
    adminOnlyRequestValues: given.adminOnlyRequestValues !== false,
    appRoot: resolve((given.appRoot as string | undefined) ?? process.cwd()),
    envAllowList: envAllowList as string[],
    sampleIntervalUs: sampleIntervalUs as number,
    stackSampling: stackSampling as StackSampling,
    profileShare
  }
}

/**
 * `remote`, from the option or the environment. A process that sends to a collector has no database and
 * serves no dashboard: naming one of them too is a mistake worth an error, not a silent choice.
 */
function resolveRemote (raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Checked<ResolvedRemote | undefined> {
  const value = raw.remote ?? (env[REMOTE_URL_ENV] === undefined ? undefined : {})
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return new InvalidOptionError('remote', `must be an object { url, token }, got ${describe(value)}`)
  const given = value as Record<string, unknown>
  for (const key of Object.keys(given)) {
    // the tracker this follows names a project id beside its token; here the token names its project
    if (key === 'projectId' || key === 'project') return new InvalidOptionError(`remote.${key}`, 'is not needed: a project\'s token names its project (with the collector\'s ingest token, set the top-level `project` option)')
    if (!REMOTE_KEYS.has(key)) return new InvalidOptionError(`remote.${key}`, 'is not an option of the collector connection')
  }
  const url = given.url ?? env[REMOTE_URL_ENV]
  let parsed: URL | undefined
  try { parsed = typeof url === 'string' ? new URL(url) : undefined } catch {}
  if (parsed === undefined || !['http:', 'https:'].includes(parsed.protocol) || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '') {
    return new InvalidOptionError('remote.url', `must be the collector's dashboard URL (http:// or https://, no credentials: the token is sent as a header; e.g. http://collector:3300/dashboard), got ${describe(typeof url === 'string' ? maskUrl(url) : url)}`)
  }
  const token = given.token ?? env[REMOTE_TOKEN_ENV]
  if (typeof token !== 'string' || token.length < 16) {
    return new InvalidOptionError('remote.token', `must be a project's token from the collector's dashboard, or the collector's ingest token: a string of at least 16 characters (or set ${REMOTE_TOKEN_ENV})`)
  }
  const timeoutMs = integer('remote.timeoutMs', given.timeoutMs, DEFAULT_REMOTE_TIMEOUT_MS, 100, 600_000)
  if (timeoutMs instanceof Error) return timeoutMs
  if (given.compress !== undefined && typeof given.compress !== 'boolean') return new InvalidOptionError('remote.compress', `must be a boolean, got ${describe(given.compress)}`)
  for (const other of ['database', 'dataDir'] as const) {
    if (raw[other] !== undefined) {
      return new InvalidOptionError('remote', `cannot be combined with ${other}${other === 'database' && env[DATABASE_ENV] !== undefined ? ` (set by ${DATABASE_ENV})` : ''}: the collector has the database`)
    }
  }
  if (raw.dashboard !== undefined && raw.dashboard !== false) {
    return new InvalidOptionError('dashboard', 'is served by the collector when remote is set: leave it out, or set it to false')
  }
  return { ingestUrl: `${parsed.href.replace(/\/+$/, '')}/api/ingest`, token, project: raw.project as string | undefined, timeoutMs, compress: given.compress !== false }
}

function resolveVersion (raw: Record<string, unknown>): Checked<string> {
  if (raw.appVersion !== undefined && (typeof raw.appVersion !== 'string' || raw.appVersion === '' || raw.appVersion.length > 100)) {
    return new InvalidOptionError('appVersion', `must be a string of 1 to 100 characters, got ${describe(raw.appVersion)}`)
  }
  if (raw.git !== undefined) {
    if (typeof raw.git !== 'string') return new InvalidOptionError('git', `must be a path to a .git directory, got ${describe(raw.git)}`)
    try {
      return readGitCommit(raw.git)
    } catch (err) {
      return new InvalidOptionError('git', `must point at a readable git repository: ${(err as Error).message}`)
    }
  }
  return (raw.appVersion as string | undefined) ?? 'unknown'
}

/**
 * Merges defaults < config file < env vars < register options and checks every value.
 * Returns the first problem as an Error naming the option (the entry throws it), never a silent default.
 *
 * ### Examples
 * ```ts
 * const resolved = resolveOptions({ tablePrefix: 'mon_' })
 * if (resolved instanceof Error) throw resolved
 * ```
 */
export function resolveOptions (opts: MonitorOptions, env: NodeJS.ProcessEnv = process.env): Checked<ResolvedOptions> {
  if (opts === null || typeof opts !== 'object') return new InvalidOptionError('options', 'must be an object')
  const fromFile = readConfigFile(opts.configFile ?? env[CONFIG_ENV])
  const fromEnv: Record<string, unknown> = env[DATABASE_ENV] === undefined ? {} : { database: env[DATABASE_ENV] }
  const raw: Record<string, unknown> = { ...fromFile, ...fromEnv }
  for (const [key, value] of Object.entries(opts)) if (value !== undefined) raw[key] = value

  for (const key of Object.keys(raw)) {
    if (!KNOWN_OPTIONS.has(key)) return new InvalidOptionError(key, 'is not an option of fastify-monitoring-dashboard')
  }
  // from different places (the environment's URL and the code's dataDir) the URL wins, as documented; in one they contradict
  const layers: Array<[Record<string, unknown>, string]> = [[opts as Record<string, unknown>, 'the options'], [fromFile, 'the config file']]
  for (const [given, where] of layers) {
    if (given.database !== undefined && given.dataDir !== undefined) {
      return new InvalidOptionError('dataDir', `cannot be combined with database in ${where}: PGlite's directory or a PostgreSQL URL, not both`)
    }
  }
  if (raw.enabled !== undefined && typeof raw.enabled !== 'boolean') {
    return new InvalidOptionError('enabled', `must be a boolean, got ${describe(raw.enabled)}`)
  }
  const database = resolveDatabase(raw)
  if (database instanceof Error) return database
  const appVersion = resolveVersion(raw)
  if (appVersion instanceof Error) return appVersion
  const tablePrefix = raw.tablePrefix ?? DEFAULT_TABLE_PREFIX
  if (typeof tablePrefix !== 'string' || !TABLE_PREFIX.test(tablePrefix)) {
    return new InvalidOptionError('tablePrefix', `must match ${TABLE_PREFIX} (lower-case letters, digits, _), got ${describe(tablePrefix)}`)
  }
  if (raw.project !== undefined && (typeof raw.project !== 'string' || !PROJECT_NAME.test(raw.project))) {
    return new InvalidOptionError('project', `must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit, got ${describe(raw.project)}`)
  }
  const level = integer('defaultMonitorLevel', raw.defaultMonitorLevel, DEFAULT_MONITOR_LEVEL, 0, 3)
  const ignoreMethods = stringList('ignoreMethods', raw.ignoreMethods, DEFAULT_IGNORE_METHODS)
  const ignoreRoutes = stringList('ignoreRoutes', raw.ignoreRoutes, [])
  const maxBufferedRecords = integer('maxBufferedRecords', raw.maxBufferedRecords, DEFAULT_MAX_BUFFERED_RECORDS, 1, 100_000_000)
  const maxBufferedBytes = integer('maxBufferedBytes', raw.maxBufferedBytes, DEFAULT_MAX_BUFFERED_BYTES, 65_536, 2 ** 40)
  const maxBatchSize = integer('maxBatchSize', raw.maxBatchSize, DEFAULT_MAX_BATCH_SIZE, 1, 100_000)
  const flushIntervalMs = integer('flushIntervalMs', raw.flushIntervalMs, DEFAULT_FLUSH_INTERVAL_MS, 1, 60_000)
  const retryMaxDelayMs = integer('retryMaxDelayMs', raw.retryMaxDelayMs, DEFAULT_RETRY_MAX_DELAY_MS, 10, 600_000)
  const closeTimeoutMs = integer('closeTimeoutMs', raw.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 0, 600_000)
  const levelPollIntervalMs = integer('levelPollIntervalMs', raw.levelPollIntervalMs, DEFAULT_LEVEL_POLL_INTERVAL_MS, 50, 3_600_000)
  const partitionDaysAhead = integer('partitionDaysAhead', raw.partitionDaysAhead, DEFAULT_PARTITION_DAYS_AHEAD, 1, 60)
  const retentionDays = integer('retentionDays', raw.retentionDays, DEFAULT_RETENTION_DAYS, 1, 36_500)
  const rollupRetentionDays = integer('rollupRetentionDays', raw.rollupRetentionDays,
    Math.max(DEFAULT_ROLLUP_RETENTION_DAYS, typeof retentionDays === 'number' ? retentionDays : 0), 1, 36_500)
  for (const checked of [level, ignoreMethods, ignoreRoutes, maxBufferedRecords, maxBufferedBytes, maxBatchSize, flushIntervalMs,
    retryMaxDelayMs, closeTimeoutMs, levelPollIntervalMs, partitionDaysAhead, retentionDays, rollupRetentionDays]) {
    if (checked instanceof Error) return checked
  }
  if ((rollupRetentionDays as number) < (retentionDays as number)) {
    return new InvalidOptionError('rollupRetentionDays', `must be at least retentionDays (${retentionDays as number}), got ${rollupRetentionDays as number}`)
  }
  const remote = resolveRemote(raw, env)
  if (remote instanceof Error) return remote
  const dashboard = remote === undefined ? resolveDashboard(raw.dashboard, env) : false
  if (dashboard instanceof Error) return dashboard
  const outliers = resolveOutliers(raw.outliers)
  if (outliers instanceof Error) return outliers
  const metrics = resolveMetrics(raw.metrics, env)
  if (metrics instanceof Error) return metrics
  const groupBy = raw.groupBy as GroupBy | undefined
  if (typeof groupBy === 'object' && groupBy !== null && !Array.isArray(groupBy)) {
    return new InvalidOptionError('groupBy', 'must be a function of the request, a value or an array of them')
  }
  return {
    enabled: raw.enabled !== false,
    database,
    appVersion,
    groupBy,
    defaultMonitorLevel: level as MonitorLevel,
    tablePrefix,
    project: raw.project as string | undefined,
    ignoreMethods: new Set((ignoreMethods as string[]).map((method) => method.toUpperCase())),
    ignoreRoutes: new Set(ignoreRoutes as string[]),
    // a batch larger than what may be buffered could never be formed
    maxBufferedRecords: maxBufferedRecords as number,
    maxBufferedBytes: maxBufferedBytes as number,
    maxBatchSize: Math.min(maxBatchSize as number, maxBufferedRecords as number, remote === undefined ? Infinity : MAX_REMOTE_BATCH_SIZE),
    flushIntervalMs: flushIntervalMs as number,
    retryMaxDelayMs: retryMaxDelayMs as number,
    closeTimeoutMs: closeTimeoutMs as number,
    levelPollIntervalMs: levelPollIntervalMs as number,
    partitionDaysAhead: partitionDaysAhead as number,
    retentionDays: retentionDays as number,
    rollupRetentionDays: rollupRetentionDays as number,
    metrics,
    dashboard,
    outliers,
    remote
  }
}
