import { sql, type Kysely, type Migration } from 'kysely'
import { TablePrefixPlugin } from '../table-prefix-plugin.js'

/**
 * The schema's migrations, frozen in time: never edit one that has shipped, add a new one.
 * The table prefix is a run-time option, so each migration gets a prefixed view of the database.
 */
// Frozen copy of the rollup bucket of 0003 (γ = 1.02/0.98, durations below 1 µs in the lowest bucket):
// a migration must not change when live code does.
const BUCKET_0003 = (column: string) => sql`ceil(ln(greatest(${sql.ref(column)}, 0.001)) / ${sql.lit(Math.log(1.02 / 0.98))})::smallint`

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
    }
  }
}
