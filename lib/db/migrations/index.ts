import { sql, type Kysely, type Migration } from 'kysely'
import { TablePrefixPlugin } from '../table-prefix-plugin.js'

/**
 * The schema's migrations, frozen in time: never edit one that has shipped, add a new one.
 * The table prefix is a run-time option, so each migration gets a prefixed view of the database.
 */
// Frozen copy of the rollup bucket of 0003 (γ = 1.02/0.98, durations below 1 µs in the lowest bucket):
// a migration must not change when live code does.
const BUCKET_0003 = (column: string) => sql`ceil(ln(greatest(${sql.ref(column)}, 0.001)) / ${sql.lit(Math.log(1.02 / 0.98))})::smallint`

// The hourly rollups every batch updates (0022), as they were then.
const UPDATED_EVERY_BATCH = ['endpoint_hour', 'version_hour', 'request_hour', 'version_total_hour']

export function createMigrations (prefix: string): Record<string, Migration> {
  // Index names live in the schema's namespace too: prefix them by hand.
  const index = (name: string) => sql.id(`${prefix}${name}`)
  const withPrefix = (db: Kysely<any>) => db.withPlugin(new TablePrefixPlugin(prefix))

  return {
    '0001_initial': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await db.schema.createTable('endpoint')
          .addColumn('id', 'integer', (col) => col.primaryKey().generatedByDefaultAsIdentity())
          .addColumn('method', 'text', (col) => col.notNull())
          .addColumn('route', 'text', (col) => col.notNull())
          .addColumn('monitor_level', 'smallint', (col) => col.notNull().check(sql`monitor_level between 0 and 3`))
          .addColumn('time_added', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .addColumn('last_requested', 'timestamptz')
          .addUniqueConstraint(`${prefix}endpoint_method_route`, ['method', 'route'])
          .execute()
        await db.schema.createTable('version')
          .addColumn('id', 'integer', (col) => col.primaryKey().generatedByDefaultAsIdentity())
          .addColumn('version', 'text', (col) => col.notNull().unique())
          .addColumn('first_seen', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .execute()
        await db.schema.createTable('instance')
          .addColumn('id', 'integer', (col) => col.primaryKey().generatedByDefaultAsIdentity())
          .addColumn('host', 'text', (col) => col.notNull())
          .addColumn('pid', 'integer', (col) => col.notNull())
          .addColumn('started_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .execute()
        await db.schema.createTable('batch')
          .addColumn('id', 'text', (col) => col.primaryKey())
          .addColumn('rows', 'integer', (col) => col.notNull())
          .addColumn('written_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .execute()
        await sql`create index ${index('batch_written_at')} on ${sql.table('batch')} (written_at)`.execute(db)
        // Partitioned by day so retention drops whole partitions instead of deleting rows;
        // the primary key has to include the partition key.
        await sql`create table ${sql.table('request')} (
          id bigint generated always as identity,
          endpoint_id integer not null,
          time_requested timestamptz not null,
          duration_ms double precision not null,
          status_code smallint not null,
          version_id integer not null,
          group_by text,
          ip text,
          instance_id integer not null,
          primary key (id, time_requested)
        ) partition by range (time_requested)`.execute(db)
        await sql`create index ${index('request_endpoint_time')} on ${sql.table('request')} (endpoint_id, time_requested)`.execute(db)
        await sql`create index ${index('request_version_endpoint')} on ${sql.table('request')} (version_id, endpoint_id)`.execute(db)
        await sql`create index ${index('request_endpoint_group')} on ${sql.table('request')} (endpoint_id, group_by) where group_by is not null`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        for (const table of ['request', 'batch', 'instance', 'version', 'endpoint']) {
          await db.schema.dropTable(table).ifExists().execute()
        }
      }
    },
    // Exemplars name a stored request as <instance token>:<seq>, known on the request thread before
    // the database assigns ids. seq is not indexed: a lookup also has the exemplar's time, which
    // bounds time_requested to one day's partition (findRequestByExemplarId's `at`).
    '0002_request_seq': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await db.schema.alterTable('instance').addColumn('token', 'text').execute()
        await sql`create unique index ${index('instance_token')} on ${sql.table('instance')} (token)`.execute(db)
        await db.schema.alterTable('request').addColumn('seq', 'bigint').execute()
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await db.schema.alterTable('request').dropColumn('seq').execute()
        await db.schema.alterTable('instance').dropColumn('token').execute()
      }
    },
    // Hourly rollups, maintained by the writer in the transaction that inserts the raw rows, so they
    // always agree with them and the dashboard's windows never scan raw requests. Backfilled from the
    // raw rows already stored. Hours are UTC hour starts.
    '0003_rollups_and_users': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await db.schema.createTable('request_hour')
          .addColumn('endpoint_id', 'integer', (col) => col.notNull())
          .addColumn('hour', 'timestamptz', (col) => col.notNull())
          .addColumn('version_id', 'integer', (col) => col.notNull())
          .addColumn('status_code', 'smallint', (col) => col.notNull())
          .addColumn('hits', 'bigint', (col) => col.notNull())
          .addColumn('duration_sum', 'float8', (col) => col.notNull())
          .addPrimaryKeyConstraint(`${prefix}request_hour_pk`, ['endpoint_id', 'hour', 'version_id', 'status_code'])
          .execute()
        await sql`create index ${index('request_hour_hour')} on ${sql.table('request_hour')} (hour)`.execute(db)
        await db.schema.createTable('duration_hour')
          .addColumn('endpoint_id', 'integer', (col) => col.notNull())
          .addColumn('hour', 'timestamptz', (col) => col.notNull())
          .addColumn('version_id', 'integer', (col) => col.notNull())
          .addColumn('bucket', 'smallint', (col) => col.notNull())
          .addColumn('hits', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint(`${prefix}duration_hour_pk`, ['endpoint_id', 'hour', 'version_id', 'bucket'])
          .execute()
        await sql`create index ${index('duration_hour_hour')} on ${sql.table('duration_hour')} (hour)`.execute(db)
        // the same sketch per UTC day, so long windows read ~24× fewer rows
        await db.schema.createTable('duration_day')
          .addColumn('endpoint_id', 'integer', (col) => col.notNull())
          .addColumn('day', 'date', (col) => col.notNull())
          .addColumn('version_id', 'integer', (col) => col.notNull())
          .addColumn('bucket', 'smallint', (col) => col.notNull())
          .addColumn('hits', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint(`${prefix}duration_day_pk`, ['endpoint_id', 'day', 'version_id', 'bucket'])
          .execute()
        await sql`insert into ${sql.table('duration_day')} (endpoint_id, day, version_id, bucket, hits)
          select endpoint_id, (time_requested at time zone 'UTC')::date, version_id, ${BUCKET_0003('duration_ms')}, count(*)
          from ${sql.table('request')} group by 1, 2, 3, 4`.execute(db)
        await sql`insert into ${sql.table('request_hour')} (endpoint_id, hour, version_id, status_code, hits, duration_sum)
          select endpoint_id, date_trunc('hour', time_requested, 'UTC'), version_id, status_code, count(*), sum(duration_ms)
          from ${sql.table('request')} group by 1, 2, 3, 4`.execute(db)
        await sql`insert into ${sql.table('duration_hour')} (endpoint_id, hour, version_id, bucket, hits)
          select endpoint_id, date_trunc('hour', time_requested, 'UTC'), version_id, ${BUCKET_0003('duration_ms')}, count(*)
          from ${sql.table('request')} group by 1, 2, 3, 4`.execute(db)
        await db.schema.createTable('dashboard_user')
          .addColumn('id', 'integer', (col) => col.primaryKey().generatedByDefaultAsIdentity())
          .addColumn('username', 'text', (col) => col.notNull().unique())
          .addColumn('password_hash', 'text', (col) => col.notNull())
          .addColumn('role', 'text', (col) => col.notNull().check(sql`role in ('admin', 'guest')`))
          .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .execute()
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        for (const table of ['dashboard_user', 'duration_day', 'duration_hour', 'request_hour']) {
          await db.schema.dropTable(table).ifExists().execute()
        }
      }
    },
    // Level 2: outliers with their evidence (jsonb, written rarely and read one at a time), and the
    // number found per endpoint and hour, including those beyond the cap that were not kept.
    '0004_outliers_and_profiles': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await db.schema.createTable('outlier')
          .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
          .addColumn('endpoint_id', 'integer', (col) => col.notNull())
          .addColumn('time_requested', 'timestamptz', (col) => col.notNull())
          .addColumn('duration_ms', 'float8', (col) => col.notNull())
          .addColumn('threshold_ms', 'float8', (col) => col.notNull())
          .addColumn('status_code', 'smallint', (col) => col.notNull())
          .addColumn('version_id', 'integer', (col) => col.notNull())
          .addColumn('instance_id', 'integer', (col) => col.notNull())
          .addColumn('request', 'jsonb', (col) => col.notNull())
          .addColumn('phases', 'jsonb', (col) => col.notNull())
          .addColumn('process', 'jsonb', (col) => col.notNull())
          .addColumn('stacks', 'jsonb', (col) => col.notNull())
          .execute()
        await sql`create index ${index('outlier_endpoint_time')} on ${sql.table('outlier')} (endpoint_id, time_requested desc)`.execute(db)
        await db.schema.createTable('outlier_hour')
          .addColumn('endpoint_id', 'integer', (col) => col.notNull())
          .addColumn('hour', 'timestamptz', (col) => col.notNull())
          .addColumn('found', 'bigint', (col) => col.notNull())
          .addColumn('stored', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint(`${prefix}outlier_hour_pk`, ['endpoint_id', 'hour'])
          .execute()
        // level 3: one sampled call tree per profiled request (a frame dictionary and compact nodes)
        await db.schema.createTable('profile')
          .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
          .addColumn('endpoint_id', 'integer', (col) => col.notNull())
          .addColumn('time_requested', 'timestamptz', (col) => col.notNull())
          .addColumn('duration_ms', 'float8', (col) => col.notNull())
          .addColumn('version_id', 'integer', (col) => col.notNull())
          .addColumn('instance_id', 'integer', (col) => col.notNull())
          .addColumn('tree', 'jsonb', (col) => col.notNull())
          .execute()
        await sql`create index ${index('profile_endpoint_time')} on ${sql.table('profile')} (endpoint_id, time_requested desc)`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        for (const table of ['profile', 'outlier_hour', 'outlier']) await db.schema.dropTable(table).ifExists().execute()
      }
    },
    // Since the rollups (0003) no query reads raw requests by version or by group, so those two indexes
    // only cost every insert. Breakdowns by group-by value or IP read an endpoint's latest requests:
    // with the columns they need in the endpoint + time index they are index-only scans.
    '0005_request_indexes': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`drop index if exists ${index('request_version_endpoint')}`.execute(db)
        await sql`drop index if exists ${index('request_endpoint_group')}`.execute(db)
        await sql`create index ${index('request_endpoint_time_covering')} on ${sql.table('request')}
          (endpoint_id, time_requested) include (duration_ms, version_id, group_by, ip)`.execute(db)
        await sql`drop index if exists ${index('request_endpoint_time')}`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`create index if not exists ${index('request_endpoint_time')} on ${sql.table('request')} (endpoint_id, time_requested)`.execute(db)
        await sql`drop index if exists ${index('request_endpoint_time_covering')}`.execute(db)
        await sql`create index if not exists ${index('request_version_endpoint')} on ${sql.table('request')} (version_id, endpoint_id)`.execute(db)
        await sql`create index if not exists ${index('request_endpoint_group')} on ${sql.table('request')} (endpoint_id, group_by) where group_by is not null`.execute(db)
      }
    },
    // Revocable sessions: a session cookie carries the generation its user had at login; logout,
    // a password or role change bump it, so every older cookie of that user stops working.
    '0006_session_generation': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`alter table ${sql.table('dashboard_user')} add column session_generation integer not null default 0`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`alter table ${sql.table('dashboard_user')} drop column session_generation`.execute(db)
      }
    },
    // Rollups at the grain of each question (#14). duration_hour/duration_day kept one row per endpoint,
    // hour (or day), version and bucket: at 300 endpoints and a deploy every 14 h that is millions of
    // rows, and overview's all-time medians read all of them. Now one row per endpoint and period holds
    // the whole latency histogram as an array (a mergeable sketch: rows add bucket by bucket), with the
    // period's counts by class of status, per UTC hour, day and month without the version (overview,
    // load, performance), and per hour and version only where versions are shown. The old sketches
    // are converted in place, bucket for bucket, so every percentile read before reads the same after.
    '0008_sketch_rollups': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        const counts = sql`hits bigint not null, client_errors bigint not null, server_errors bigint not null, duration_sum float8 not null,
          sketch_offset smallint not null, sketch bigint[] not null`
        await sql`create table ${sql.table('endpoint_hour')} (endpoint_id integer not null, hour timestamptz not null, ${counts},
          constraint ${index('endpoint_hour_pk')} primary key (endpoint_id, hour))`.execute(db)
        await sql`create index ${index('endpoint_hour_hour')} on ${sql.table('endpoint_hour')} (hour)`.execute(db)
        await sql`create table ${sql.table('endpoint_day')} (endpoint_id integer not null, day date not null, ${counts},
          constraint ${index('endpoint_day_pk')} primary key (endpoint_id, day))`.execute(db)
        await sql`create table ${sql.table('endpoint_month')} (endpoint_id integer not null, month date not null, ${counts},
          constraint ${index('endpoint_month_pk')} primary key (endpoint_id, month))`.execute(db)
        await sql`create table ${sql.table('version_hour')} (endpoint_id integer not null, hour timestamptz not null, version_id integer not null,
          hits bigint not null, sketch_offset smallint not null, sketch bigint[] not null,
          constraint ${index('version_hour_pk')} primary key (endpoint_id, hour, version_id))`.execute(db)
        await sql`create index ${index('version_hour_hour')} on ${sql.table('version_hour')} (hour)`.execute(db)
        // A dense array per key from bucket rows: every bucket between the lowest and the highest.
        const dense = (bucketRows: ReturnType<typeof sql>, keys: string[]) => {
          const k = sql.join(keys.map((key) => sql.ref(key)))
          const on = sql.join(keys.map((key) => sql`b.${sql.ref(key)} = r.${sql.ref(key)}`), sql` and `)
          return sql`with b as (select ${k}, bucket, sum(hits) as hits from (${bucketRows}) as source group by ${k}, bucket),
            r as (select ${k}, min(bucket) as lo, max(bucket) as hi from b group by ${k})
            select ${sql.join(keys.map((key) => sql`r.${sql.ref(key)}`))}, r.lo as sketch_offset,
              array_agg(coalesce(b.hits, 0) order by g) as sketch
            from r cross join generate_series(r.lo::integer, r.hi::integer) as g left join b on ${on} and b.bucket = g
            group by ${sql.join(keys.map((key) => sql`r.${sql.ref(key)}`))}, r.lo`
        }
        const hourCounts = sql`select endpoint_id, hour, sum(hits) as hits,
            coalesce(sum(hits) filter (where status_code between 400 and 499), 0) as client_errors,
            coalesce(sum(hits) filter (where status_code >= 500), 0) as server_errors, sum(duration_sum) as duration_sum
          from ${sql.table('request_hour')} group by 1, 2`
        // the hourly counts and the hourly sketches were written in the same transactions: an hour has both or neither
        await sql`insert into ${sql.table('endpoint_hour')} (endpoint_id, hour, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
          select c.endpoint_id, c.hour, c.hits, c.client_errors, c.server_errors, c.duration_sum, s.sketch_offset, s.sketch
          from (${hourCounts}) as c join (${dense(sql`select endpoint_id, hour, bucket, hits from ${sql.table('duration_hour')}`, ['endpoint_id', 'hour'])}) as s
            on s.endpoint_id = c.endpoint_id and s.hour = c.hour`.execute(db)
        await sql`insert into ${sql.table('version_hour')} (endpoint_id, hour, version_id, hits, sketch_offset, sketch)
          select s.endpoint_id, s.hour, s.version_id, (select sum(x) from unnest(s.sketch) as x), s.sketch_offset, s.sketch
          from (${dense(sql`select endpoint_id, hour, version_id, bucket, hits from ${sql.table('duration_hour')}`, ['endpoint_id', 'hour', 'version_id'])}) as s`.execute(db)
        // days and months from the daily sketches (kept as long as the hours), counts from the hours
        for (const [table, period, trunc] of [['endpoint_day', 'day', 'day'], ['endpoint_month', 'month', 'month']] as const) {
          const of = (column: string) => sql`date_trunc(${sql.lit(trunc)}, ${sql.ref(column)})::date`
          await sql`insert into ${sql.table(table)} (endpoint_id, ${sql.ref(period)}, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
            select c.endpoint_id, c.p, c.hits, c.client_errors, c.server_errors, c.duration_sum, s.sketch_offset, s.sketch
            from (select endpoint_id, ${of('utc')} as p, sum(hits) as hits, sum(client_errors) as client_errors,
                sum(server_errors) as server_errors, sum(duration_sum) as duration_sum
              from (select *, hour at time zone 'UTC' as utc from ${sql.table('endpoint_hour')}) as h group by 1, 2) as c
            join (${dense(sql`select endpoint_id, ${of('day')} as p, bucket, hits from ${sql.table('duration_day')}`, ['endpoint_id', 'p'])}) as s
              on s.endpoint_id = c.endpoint_id and s.p = c.p`.execute(db)
        }
        await db.schema.dropTable('duration_hour').execute()
        await db.schema.dropTable('duration_day').execute()
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        // the per-version hourly sketches hold everything the bucket rows did
        await sql`create table ${sql.table('duration_hour')} (endpoint_id integer not null, hour timestamptz not null, version_id integer not null,
          bucket smallint not null, hits bigint not null, constraint ${index('duration_hour_pk')} primary key (endpoint_id, hour, version_id, bucket))`.execute(db)
        await sql`create index ${index('duration_hour_hour')} on ${sql.table('duration_hour')} (hour)`.execute(db)
        await sql`create table ${sql.table('duration_day')} (endpoint_id integer not null, day date not null, version_id integer not null,
          bucket smallint not null, hits bigint not null, constraint ${index('duration_day_pk')} primary key (endpoint_id, day, version_id, bucket))`.execute(db)
        await sql`insert into ${sql.table('duration_hour')} (endpoint_id, hour, version_id, bucket, hits)
          select v.endpoint_id, v.hour, v.version_id, v.sketch_offset + u.i - 1, u.c
          from ${sql.table('version_hour')} v cross join lateral unnest(v.sketch) with ordinality as u(c, i) where u.c > 0`.execute(db)
        await sql`insert into ${sql.table('duration_day')} (endpoint_id, day, version_id, bucket, hits)
          select endpoint_id, (hour at time zone 'UTC')::date, version_id, bucket, sum(hits) from ${sql.table('duration_hour')} group by 1, 2, 3, 4`.execute(db)
        for (const table of ['version_hour', 'endpoint_month', 'endpoint_day', 'endpoint_hour']) await db.schema.dropTable(table).execute()
      }
    },
    // Issue #16. Custom graphs: one row per graph and scheduled tick. The row is inserted (claimed) before
    // the user's function runs, so processes sharing one database run each tick once: the primary key
    // lets exactly one insert win. Load-test runs: the window a `load` command drove, by its tag, and
    // autocannon's own figures, so reports compare two runs from what the plugin recorded server-side.
    '0010_custom_graphs_and_load_runs': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await db.schema.createTable('graph')
          .addColumn('name', 'text', (col) => col.primaryKey())
          .addColumn('schedule', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .execute()
        await db.schema.createTable('graph_run')
          .addColumn('graph', 'text', (col) => col.notNull())
          .addColumn('tick', 'timestamptz', (col) => col.notNull())
          .addColumn('value', 'double precision')
          .addColumn('error', 'text')
          .addColumn('duration_ms', 'double precision')
          .addColumn('instance_id', 'integer')
          .addPrimaryKeyConstraint(`${prefix}graph_run_pkey`, ['graph', 'tick'])
          .execute()
        await sql`create index ${index('graph_run_tick')} on ${sql.table('graph_run')} (tick)`.execute(db)
        await db.schema.createTable('load_run')
          .addColumn('id', 'integer', (col) => col.primaryKey().generatedByDefaultAsIdentity())
          .addColumn('tag', 'text', (col) => col.notNull())
          .addColumn('url', 'text', (col) => col.notNull())
          .addColumn('started_at', 'timestamptz', (col) => col.notNull())
          .addColumn('ended_at', 'timestamptz', (col) => col.notNull())
          .addColumn('connections', 'integer', (col) => col.notNull())
          .addColumn('summary', 'jsonb', (col) => col.notNull())
          .execute()
        await sql`create index ${index('load_run_tag')} on ${sql.table('load_run')} (tag, started_at)`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await db.schema.dropTable('load_run').ifExists().execute()
        await db.schema.dropTable('graph_run').ifExists().execute()
        await db.schema.dropTable('graph').ifExists().execute()
      }
    },
    // The test monitor: per CI build, the app's tests and the endpoints each one reached. A build's
    // runs (`--repeat`) arrive as batches; the batch row makes a retried upload a no-op.
    '0012_test_monitor': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await db.schema.createTable('test_build')
          .addColumn('id', 'integer', (col) => col.primaryKey().generatedByDefaultAsIdentity())
          .addColumn('build', 'text', (col) => col.notNull().unique())
          .addColumn('commit_sha', 'text')
          .addColumn('branch', 'text')
          .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .execute()
        await db.schema.createTable('test_batch')
          .addColumn('build_id', 'integer', (col) => col.notNull().references('test_build.id').onDelete('cascade'))
          .addColumn('batch', 'text', (col) => col.notNull())
          .addColumn('repeat', 'integer', (col) => col.notNull())
          .addColumn('submitted_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .addPrimaryKeyConstraint(`${prefix}test_batch_pk`, ['build_id', 'batch'])
          .execute()
        await db.schema.createTable('test_run')
          .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
          .addColumn('build_id', 'integer', (col) => col.notNull().references('test_build.id').onDelete('cascade'))
          .addColumn('batch', 'text', (col) => col.notNull())
          .addColumn('repeat', 'integer', (col) => col.notNull())
          // the test's position in its batch: ties its hits to it within the one insert statement
          .addColumn('ordinal', 'integer', (col) => col.notNull())
          .addColumn('file', 'text', (col) => col.notNull())
          .addColumn('name', 'text', (col) => col.notNull())
          .addColumn('duration_ms', 'float8', (col) => col.notNull())
          .addColumn('outcome', 'text', (col) => col.notNull())
          .execute()
        await sql`create index ${index('test_run_build')} on ${sql.table('test_run')} (build_id)`.execute(db)
        await db.schema.createTable('test_hit')
          .addColumn('test_run_id', 'bigint', (col) => col.notNull().references('test_run.id').onDelete('cascade'))
          .addColumn('method', 'text', (col) => col.notNull())
          .addColumn('route', 'text', (col) => col.notNull())
          .addColumn('status_code', 'smallint', (col) => col.notNull())
          .addColumn('requests', 'integer', (col) => col.notNull())
          .addColumn('total_ms', 'float8', (col) => col.notNull())
          .addColumn('max_ms', 'float8', (col) => col.notNull())
          .execute()
        await sql`create index ${index('test_hit_run')} on ${sql.table('test_hit')} (test_run_id)`.execute(db)
        await sql`create index ${index('test_hit_route')} on ${sql.table('test_hit')} (method, route)`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        for (const table of ['test_hit', 'test_run', 'test_batch', 'test_build']) await db.schema.dropTable(table).execute()
      }
    },
    // Issues #14 and #16. The hourly rollups' time indexes carry the counts: the load heatmap and the
    // versions view sum hits over a week of 300 endpoints from the index alone (an index-only scan)
    // instead of from rows made wide by their sketches (8 and 33 ms instead of 160 and 90 at 10M
    // requests); they replace the plain time indexes. Reports find a version's hourly sketches by it.
    '0014_rollup_indexes': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`create index ${index('endpoint_hour_hour_hits')} on ${sql.table('endpoint_hour')} (hour) include (hits)`.execute(db)
        await sql`drop index ${index('endpoint_hour_hour')}`.execute(db)
        await sql`create index ${index('version_hour_hour_hits')} on ${sql.table('version_hour')} (hour) include (endpoint_id, version_id, hits)`.execute(db)
        await sql`drop index ${index('version_hour_hour')}`.execute(db)
        // a version's hours, for reports comparing versions (from the sketches, not the raw requests)
        await sql`create index ${index('version_hour_version')} on ${sql.table('version_hour')} (version_id, hour)`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`drop index ${index('version_hour_version')}`.execute(db)
        await sql`create index ${index('endpoint_hour_hour')} on ${sql.table('endpoint_hour')} (hour)`.execute(db)
        await sql`drop index ${index('endpoint_hour_hour_hits')}`.execute(db)
        await sql`create index ${index('version_hour_hour')} on ${sql.table('version_hour')} (hour)`.execute(db)
        await sql`drop index ${index('version_hour_hour_hits')}`.execute(db)
      }
    },
    // Issue #18. The raw table's primary key (id, time_requested) was an index that no query reads (the
    // export's cursor orders a time range by id within the partitions it prunes to) and that every stored
    // row paid for: about 0.5 µs of the server's CPU per row of the ~6 it costs. `id` stays an identity
    // column, unique without the index.
    '0015_request_no_primary_key': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`alter table ${sql.table('request')} drop constraint ${index('request_pkey')}`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`alter table ${sql.table('request')} add primary key (id, time_requested)`.execute(db)
      }
    },
    // Issue #18. Level 2 may run without the stack sampler (outliers.stackSampling): an outlier that
    // ran while it was off has no stacks.
    '0016_outlier_stacks_optional': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`alter table ${sql.table('outlier')} alter column stacks drop not null`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`update ${sql.table('outlier')} set stacks = '{}'::jsonb where stacks is null`.execute(db)
        await sql`alter table ${sql.table('outlier')} alter column stacks set not null`.execute(db)
      }
    },
    // Issue #14. The versions view sums a week of requests per version and endpoint, and per version and
    // local day: from `version_hour` each is 53K index entries at 300 endpoints and a deploy every 14 h.
    // `version_day` (per UTC day, version and endpoint) makes the first about 6K rows, `version_total_hour`
    // (per UTC hour and version, all endpoints: local days in any time zone) the second about 300. Counts
    // only (no sketch): reports and per-version percentiles keep reading the hours. Both filled from the hours.
    '0017_version_counts': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`create table ${sql.table('version_day')} (day date not null, version_id integer not null,
          endpoint_id integer not null, hits bigint not null,
          constraint ${index('version_day_pk')} primary key (day, version_id, endpoint_id) include (hits))`.execute(db)
        await sql`insert into ${sql.table('version_day')} (day, version_id, endpoint_id, hits)
          select (hour at time zone 'UTC')::date, version_id, endpoint_id, sum(hits)
          from ${sql.table('version_hour')} group by 1, 2, 3`.execute(db)
        await sql`create table ${sql.table('version_total_hour')} (hour timestamptz not null, version_id integer not null, hits bigint not null,
          constraint ${index('version_total_hour_pk')} primary key (hour, version_id) include (hits))`.execute(db)
        await sql`insert into ${sql.table('version_total_hour')} (hour, version_id, hits)
          select hour, version_id, sum(hits) from ${sql.table('version_hour')} group by 1, 2`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        await withPrefix(rawDb).schema.dropTable('version_total_hour').execute()
        await withPrefix(rawDb).schema.dropTable('version_day').execute()
      }
    },
    // Issue #19. Projects: a collector keeps the services that send to it apart. Every endpoint belongs to
    // one (what was there belongs to `default`, id 1), so two services' `GET /health` are two endpoints;
    // the raw and rollup tables stay keyed by endpoint. A project's ingest tokens are stored as SHA-256
    // hashes (they are random, 256 bits: no slow hash needed), with the last characters to tell them apart.
    '0018_projects': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`create table ${sql.table('project')} (id serial primary key, name text not null,
          created_at timestamptz not null default now(), constraint ${index('project_name')} unique (name))`.execute(db)
        await sql`insert into ${sql.table('project')} (name) values ('default')`.execute(db)
        await sql`create table ${sql.table('project_token')} (id serial primary key,
          project_id integer not null references ${sql.table('project')} (id) on delete cascade,
          token_hash text not null, hint text not null, created_at timestamptz not null default now(),
          last_used_at timestamptz, revoked_at timestamptz,
          constraint ${index('project_token_hash')} unique (token_hash))`.execute(db)
        await sql`alter table ${sql.table('endpoint')} add column project_id integer not null default 1`.execute(db)
        await sql`alter table ${sql.table('endpoint')} drop constraint ${index('endpoint_method_route')}`.execute(db)
        await sql`alter table ${sql.table('endpoint')} add constraint ${index('endpoint_project_method_route')} unique (project_id, method, route)`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`delete from ${sql.table('endpoint')} where project_id <> 1`.execute(db)
        await sql`alter table ${sql.table('endpoint')} drop constraint ${index('endpoint_project_method_route')}`.execute(db)
        await sql`alter table ${sql.table('endpoint')} add constraint ${index('endpoint_method_route')} unique (method, route)`.execute(db)
        await sql`alter table ${sql.table('endpoint')} drop column project_id`.execute(db)
        await db.schema.dropTable('project_token').execute()
        await db.schema.dropTable('project').execute()
      }
    },
    // Issue #19. Test builds and custom graphs belong to a project too (what was there to `default`, id 1),
    // so every view keeps to the picked one. A build's name and a graph's name are unique per project: one
    // CI run may test two services under one build id, and two services may both graph "queue depth". A
    // graph's ticks are claimed per project, so the two never take each other's ticks.
    '0019_project_tests_and_graphs': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`alter table ${sql.table('test_build')} add column project_id integer not null default 1`.execute(db)
        // 0012's `unique` on the column: PostgreSQL named it <table>_<column>_key
        await sql`alter table ${sql.table('test_build')} drop constraint ${index('test_build_build_key')}`.execute(db)
        await sql`alter table ${sql.table('test_build')} add constraint ${index('test_build_project_build')} unique (project_id, build)`.execute(db)
        await sql`alter table ${sql.table('graph')} add column project_id integer not null default 1`.execute(db)
        await sql`alter table ${sql.table('graph')} drop constraint ${index('graph_pkey')}`.execute(db)
        await sql`alter table ${sql.table('graph')} add constraint ${index('graph_pkey')} primary key (project_id, name)`.execute(db)
        await sql`alter table ${sql.table('graph_run')} add column project_id integer not null default 1`.execute(db)
        await sql`alter table ${sql.table('graph_run')} drop constraint ${index('graph_run_pkey')}`.execute(db)
        await sql`alter table ${sql.table('graph_run')} add constraint ${index('graph_run_pkey')} primary key (project_id, graph, tick)`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        for (const table of ['graph_run', 'graph', 'test_build']) await sql`delete from ${sql.table(table)} where project_id <> 1`.execute(db)
        await sql`alter table ${sql.table('graph_run')} drop constraint ${index('graph_run_pkey')}`.execute(db)
        await sql`alter table ${sql.table('graph_run')} add constraint ${index('graph_run_pkey')} primary key (graph, tick)`.execute(db)
        await sql`alter table ${sql.table('graph_run')} drop column project_id`.execute(db)
        await sql`alter table ${sql.table('graph')} drop constraint ${index('graph_pkey')}`.execute(db)
        await sql`alter table ${sql.table('graph')} add constraint ${index('graph_pkey')} primary key (name)`.execute(db)
        await sql`alter table ${sql.table('graph')} drop column project_id`.execute(db)
        await sql`alter table ${sql.table('test_build')} drop constraint ${index('test_build_project_build')}`.execute(db)
        await sql`alter table ${sql.table('test_build')} add constraint ${index('test_build_build_key')} unique (build)`.execute(db)
        await sql`alter table ${sql.table('test_build')} drop column project_id`.execute(db)
      }
    },
    // Issue #18. The raw table's identity default (a nextval per row) cost PostgreSQL about 0.7 µs of the
    // ~3 µs a COPY'd row costs it (500,000 rows: 1.33-1.43 s with the default, 1.01-1.08 s with the ids
    // given). Each written batch now takes a block of REQUEST_ID_BLOCK ids with its claim instead: one
    // nextval per batch. Blocks start at 2^40, above every id the request identity has handed out (the
    // seeding still uses it), and a row's id stays unique because blocks never overlap.
    '0020_request_id_blocks': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`alter table ${sql.table('batch')} add column first_request_id bigint
          generated always as identity (start with 1099511627776 increment by 131072)`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`alter table ${sql.table('batch')} drop column first_request_id`.execute(db)
      }
    },
    // Issue #18. Upserting every batch's share into the day and month rows (two sketch merges and the
    // versions' day) was half of PostgreSQL's work per row when batches spread over many endpoints
    // (300 endpoints at 1,000 requests/s: 201-220 µs per row with them, 100-111 without). An hour's rows
    // now go into its day and month once, when it has closed ("folded"); until then readers add the
    // hour's own rows. This table lists the hours whose day and month rows hold them. Every hour stored
    // so far is in its day and month already; so are the current hour and the next two, which writers of
    // the previous version, still running during a rolling upgrade, keep adding to days and months
    // directly (a new schema has no such writers: nothing is listed).
    '0021_folded_hours': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`create table ${sql.table('folded_hour')} (hour timestamptz primary key)`.execute(db)
        await sql`insert into ${sql.table('folded_hour')} (hour)
          select hour from ${sql.table('endpoint_hour')} union select hour from ${sql.table('version_hour')}
          union select generate_series(date_trunc('hour', now(), 'UTC'), date_trunc('hour', now(), 'UTC') + interval '2 hours', interval '1 hour')
            where exists (select 1 from ${sql.table('endpoint_hour')})`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        await sql`drop table ${sql.table('folded_hour')}`.execute(db)
      }
    },
    // Issue #18. Every batch updates the current hour's row of each endpoint it holds. On full pages
    // (fillfactor 100) no update found room on its row's page: none was HOT, each wrote a new entry in
    // both of the table's indexes, and the rows kept moving to the table's end (pgbench, 300 rows of
    // ~800 bytes upserted 600 times: 18,030 pages, 0 HOT updates; at fillfactor 70: 99 pages, 99.8% HOT,
    // and each upsert about 0.15 of its cost cheaper). Pages written from now on keep that room; rows of
    // past hours, no longer updated, take about 1.4 times the space.
    '0022_rollup_fillfactor': {
      async up (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        for (const table of UPDATED_EVERY_BATCH) await sql`alter table ${sql.table(table)} set (fillfactor = 70)`.execute(db)
      },
      async down (rawDb: Kysely<any>): Promise<void> {
        const db = withPrefix(rawDb)
        for (const table of UPDATED_EVERY_BATCH) await sql`alter table ${sql.table(table)} reset (fillfactor)`.execute(db)
      }
    }
  }
}
