import type { ColumnType, Generated, Selectable } from 'kysely'

/**
 * The monitoring database as kysely sees it. Names are logical: the table prefix
 * (`fmd_` by default) is added by {@link TablePrefixPlugin}, so queries say `request`, not `fmd_request`.
 */
export interface Database {
  endpoint: EndpointTable
  request: RequestTable
  version: VersionTable
  instance: InstanceTable
  project: ProjectTable
  project_token: ProjectTokenTable
  batch: BatchTable
  request_hour: RequestHourTable
  endpoint_hour: EndpointHourTable
  endpoint_day: EndpointDayTable
  endpoint_month: EndpointMonthTable
  version_hour: VersionHourTable
  version_day: VersionDayTable
  version_total_hour: VersionTotalHourTable
  folded_hour: FoldedHourTable
  dashboard_user: DashboardUserTable
  outlier: OutlierTable
  outlier_hour: OutlierHourTable
  profile: ProfileTable
  test_build: TestBuildTable
  test_batch: TestBatchTable
  test_run: TestRunTable
  test_hit: TestHitTable
  graph: GraphTable
  graph_run: GraphRunTable
  load_run: LoadRunTable
}

type Timestamp = ColumnType<Date, Date | string, Date | string>

export interface EndpointTable {
  id: Generated<number>
  method: string
  route: string
  monitor_level: number
  time_added: Generated<Date>
  last_requested: Timestamp | null
  /** The project (service) the endpoint belongs to; `default` (1) for an app's own. */
  project_id: Generated<number>
}

/** A service that sends to a collector, or names itself with the `project` option. */
export interface ProjectTable {
  id: Generated<number>
  name: string
  created_at: Generated<Date>
}

/** A project's ingest token: only its SHA-256 is stored; `hint` is its last characters. */
export interface ProjectTokenTable {
  id: Generated<number>
  project_id: number
  token_hash: string
  hint: string
  created_at: Generated<Date>
  last_used_at: Timestamp | null
  revoked_at: Timestamp | null
}

/** One row per monitored request; partitioned by day on `time_requested`. */
export interface RequestTable {
  id: Generated<string>
  endpoint_id: number
  time_requested: Timestamp
  duration_ms: number
  status_code: number
  /** The request's number in the process that served it (see {@link InstanceTable.token}); null before schema 0002. */
  seq: string | null
  version_id: number
  group_by: string | null
  ip: string | null
  instance_id: number
}

export interface VersionTable {
  id: Generated<number>
  version: string
  first_seen: Generated<Date>
}

/** A process that wrote requests: host and pid. */
export interface InstanceTable {
  id: Generated<number>
  host: string
  pid: number
  started_at: Generated<Date>
  /** Random per process start; `<token>:<seq>` names a request in Prometheus exemplars. */
  token: string | null
}

/** Ids of written batches, so a batch retried after a lost commit acknowledgement is not written twice. */
export interface BatchTable {
  id: string
  rows: number
  written_at: Generated<Date>
  /** The first of the REQUEST_ID_BLOCK request ids this batch's rows may take (bigint, as text). */
  first_request_id: Generated<string>
}

/** Requests per endpoint, UTC hour, version and status code; kept by the writer with the raw rows. */
export interface RequestHourTable {
  endpoint_id: number
  hour: Timestamp
  version_id: number
  status_code: number
  /** bigint: pg returns it as a string */
  hits: ColumnType<string, number | string, number | string>
  duration_sum: number
}

/** bigint: pg returns it as a string */
type Count = ColumnType<string, number | string, number | string>
/** A latency sketch (see {@link Sketch} in rollup.ts): bucket counts from `sketch_offset` on; pg returns bigint[] as strings. */
type SketchCounts = ColumnType<string[], string, string>

/**
 * Requests of one endpoint in one UTC hour, all versions together: counts by class of status, the
 * duration sum and the latency sketch. What overview, load and performance read (see migration 0008).
 */
export interface EndpointHourTable {
  endpoint_id: number
  hour: Timestamp
  hits: Count
  client_errors: Count
  server_errors: Count
  duration_sum: number
  sketch_offset: number
  sketch: SketchCounts
}

/** {@link EndpointHourTable} per UTC day (`YYYY-MM-DD`). */
export interface EndpointDayTable extends Omit<EndpointHourTable, 'hour'> {
  day: ColumnType<string, string, string>
}

/** {@link EndpointHourTable} per UTC month (its first day, `YYYY-MM-01`): all-time windows read these. */
export interface EndpointMonthTable extends Omit<EndpointHourTable, 'hour'> {
  month: ColumnType<string, string, string>
}

/** Requests and latency sketch per endpoint, UTC hour and version: where versions are shown. */
export interface VersionHourTable {
  endpoint_id: number
  hour: Timestamp
  version_id: number
  hits: Count
  sketch_offset: number
  sketch: SketchCounts
}

/** Requests per UTC day (`YYYY-MM-DD`), version and endpoint: the versions view's whole days (no sketch). */
export interface VersionDayTable {
  day: ColumnType<string, string, string>
  version_id: number
  endpoint_id: number
  hits: Count
}

/**
 * The UTC hours whose rows are in their day's and month's rollup rows (`endpoint_day`, `endpoint_month`,
 * `version_day`). An hour not listed is not in them yet: readers add its hourly rows, and a writer folds
 * it in once it has closed. Batches of a listed hour add to its day and month directly.
 */
export interface FoldedHourTable {
  hour: Timestamp
}

/** Requests per UTC hour and version, all endpoints together: the versions view's local days. */
export interface VersionTotalHourTable {
  hour: Timestamp
  version_id: number
  hits: Count
}

/** A request slower than its endpoint's threshold, with the evidence of why (level ≥ 2). */
export interface OutlierTable {
  id: Generated<string>
  endpoint_id: number
  time_requested: Timestamp
  duration_ms: number
  threshold_ms: number
  status_code: number
  version_id: number
  instance_id: number
  request: ColumnType<unknown, string, string>
  phases: ColumnType<unknown, string, string>
  process: ColumnType<unknown, string, string>
  stacks: ColumnType<unknown | null, string | null, string | null>
}

/** Outliers found per endpoint and UTC hour, and how many of them were kept. */
export interface OutlierHourTable {
  endpoint_id: number
  hour: Timestamp
  found: ColumnType<string, number | string, number | string>
  stored: ColumnType<string, number | string, number | string>
}

/** A level-3 request's sampled call tree (see CallTree in profiling/sampler.ts). */
export interface ProfileTable {
  id: Generated<string>
  endpoint_id: number
  time_requested: Timestamp
  duration_ms: number
  version_id: number
  instance_id: number
  tree: ColumnType<unknown, string, string>
}

export interface DashboardUserTable {
  id: Generated<number>
  username: string
  /** `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>` */
  password_hash: string
  role: 'admin' | 'guest'
  created_at: Generated<Date>
  /** Bumped by logout, a password or role change: sessions carrying an older one are refused. */
  session_generation: Generated<number>
}

/** A custom graph (`app.monitor.addGraph`) as last registered by some process. */
export interface GraphTable {
  /** The project of the app that added it (its `project` option); a name is unique per project. */
  project_id: Generated<number>
  name: string
  /** `cron:<expression>` or `every:<seconds>s` */
  schedule: string
  updated_at: Generated<Date>
}

/** One tick of a custom graph: claimed by one process before it runs, then its value or its error. */
export interface GraphRunTable {
  project_id: Generated<number>
  graph: string
  tick: Timestamp
  value: number | null
  error: string | null
  duration_ms: number | null
  instance_id: number | null
}

/** A load-test run of the `load` command: its window and autocannon's figures. */
export interface LoadRunTable {
  id: Generated<number>
  tag: string
  url: string
  started_at: Timestamp
  ended_at: Timestamp
  connections: number
  summary: ColumnType<unknown, string, string>
}

export type Endpoint = Selectable<EndpointTable>
export type StoredRequest = Selectable<RequestTable>

/** A CI build whose tests the test monitor recorded. */
export interface TestBuildTable {
  id: Generated<number>
  /** The project whose tests these are (the `test` command's `--project`); a build id is unique per project. */
  project_id: Generated<number>
  build: string
  commit_sha: string | null
  branch: string | null
  created_at: Generated<Date>
}

/** A submitted run of a build's suite (`--repeat` runs are batches `run-1`, `run-2`, …). */
export interface TestBatchTable {
  build_id: number
  batch: string
  repeat: number
  submitted_at: Generated<Date>
}

/** One test of one run. */
export interface TestRunTable {
  id: Generated<string>
  build_id: number
  batch: string
  repeat: number
  ordinal: number
  file: string
  name: string
  duration_ms: number
  outcome: string
}

/** Requests one test made to one endpoint with one status code. */
export interface TestHitTable {
  test_run_id: string
  method: string
  route: string
  status_code: number
  requests: number
  total_ms: number
  max_ms: number
}
