// Shared by `npm run seed` and `npm run bench:api`: an app with the plugin on the chosen database,
// its endpoints registered, filled with generated traffic of the given shape when it holds fewer
// requests than asked. Both default to the same database (BENCH_DATABASE_URL) and table prefix, so
// `npm run seed -- <shape>` prepares what `npm run bench:api` then reads.
import Fastify from 'fastify'
import { sql } from 'kysely'
import monitor from '../dist/index.js'
import { generateTraffic, repeatRollupHistory } from '../dist/db/seed.js'
import { BENCH_DATABASE_URL } from './postgres.js'

export const ROUTES = ['/users/:id', '/users', '/orders/:id', '/orders', '/search', '/health', '/reports/:year', '/login']
export const DEFAULT_PREFIX = 'fmdbench_'

/**
 * The traffic `seed` generates: 10M requests over 8 endpoints, 4 versions, 1,000 users and 200 IPs in 30 days.
 * `history`: days of rollups, the raw days' rollups repeated further back when longer than `days`
 * (the default retention keeps 30 days of requests and 400 of rollups).
 */
export const DEFAULT_SHAPE = { endpoints: 8, versions: 4, users: 1000, ips: 200, days: 30, rows: 10_000_000, history: 30 }

/** `--endpoints N --versions N --users N --ips N --days N --rows N --history N` (any may be left out), on top of DEFAULT_SHAPE. */
export function shapeFromArgs (argv, defaults = DEFAULT_SHAPE) {
  const shape = { ...defaults }
  for (const key of Object.keys(shape)) {
    const i = argv.indexOf(`--${key}`)
    if (i >= 0) shape[key] = Number(argv[i + 1])
  }
  return shape
}

/** The routes of a shape: the 8 classic ones, then `/api/r<N>/items/:id`. */
export function routesOf (endpoints) {
  return Array.from({ length: endpoints }, (_, i) => ROUTES[i] ?? `/api/r${i}/items/:id`)
}

export async function seededApp ({ database = BENCH_DATABASE_URL, dataDir, prefix = DEFAULT_PREFIX, shape = DEFAULT_SHAPE, dashboard = false, log = console.log }) {
  const app = Fastify({ logger: false })
  await app.register(monitor, { database: dataDir === undefined ? database : undefined, dataDir, tablePrefix: prefix, appVersion: 'bench', metrics: false, dashboard })
  const routes = routesOf(shape.endpoints)
  for (const route of routes) app.get(route, async () => 'ok')
  await app.ready()
  await app.monitor.ready
  await app.monitor.flush()
  const db = app.monitor.db
  const endpoints = await db.selectFrom('endpoint').select('id').where('route', 'in', routes).execute()
  const { n } = await sql`select count(*) as n from ${sql.table('request')}`.execute(db).then((r) => r.rows[0])
  const have = Number(n)
  // retention drops the oldest day's partition as days pass: a database within 1% of the asked rows
  // is used as it is (topping it up rebuilds every rollup of the shape's days)
  if (have < shape.rows * 0.99) {
    const start = Date.now()
    log(`seeding ${shape.rows - have} requests: ${describeShape(shape)}…`)
    await generateTraffic(db, {
      requests: shape.rows - have,
      days: shape.days,
      endpointIds: endpoints.map((e) => e.id),
      versions: Array.from({ length: shape.versions }, (_, i) => `1.${Math.floor(i / 10)}.${i % 10}`),
      users: shape.users,
      ips: shape.ips,
      onProgress: (done) => log(`  ${done} rows`)
    })
    // as autovacuum would in time: the visibility map lets breakdowns, the load and the versions scan
    // their covering indexes alone (only this prefix's tables: the database may hold other ones)
    await sql`vacuum analyze ${sql.table('request')}, ${sql.table('endpoint_hour')}, ${sql.table('version_hour')}, ${sql.table('version_day')}, ${sql.table('version_total_hour')}`.execute(db)
    await sql`analyze`.execute(db)
    log(`seeded in ${((Date.now() - start) / 1000).toFixed(1)} s`)
  } else {
    log(`database already holds ${have} requests`)
  }
  const { rows: [span] } = await sql`select min(time_requested) as "from", max(time_requested) as "to",
    (select current_date - min(day) from ${sql.table('endpoint_day')}) as history from ${sql.table('request')}`.execute(db)
  const copies = Math.ceil((shape.history - shape.days) / shape.days)
  if (copies > 0 && Number(span.history) < shape.history - 1) {
    const start = Date.now()
    log(`repeating the rollups of ${shape.days} days ${copies} times back…`)
    await repeatRollupHistory(db, span.from, new Date(span.to.getTime() + 1), copies)
    await sql`analyze`.execute(db)
    log(`rollup history of ${shape.history} days in ${((Date.now() - start) / 1000).toFixed(1)} s`)
  }
  return app
}

export function describeShape (shape) {
  return `${shape.rows} requests over ${shape.days} days, ${shape.endpoints} endpoints, ${shape.versions} versions, ${shape.users} users, ${shape.ips} IPs, ${shape.history ?? shape.days} days of rollups`
}

/** The shape the database actually holds (what bench:api ran on), read back from it. */
export async function storedShape (db) {
  const { rows: [row] } = await sql`select (select count(*) from ${sql.table('endpoint')}) as endpoints,
    (select count(*) from ${sql.table('version')}) as versions,
    (select count(distinct group_by) from ${sql.table('request')}) as users,
    (select count(distinct ip) from ${sql.table('request')}) as ips,
    (select count(*) from ${sql.table('request')}) as rows,
    (select extract(epoch from max(time_requested) - min(time_requested)) / 86400 from ${sql.table('request')}) as days,
    (select current_date - min(day) from ${sql.table('endpoint_day')}) as history`.execute(db)
  return { endpoints: Number(row.endpoints), versions: Number(row.versions), users: Number(row.users), ips: Number(row.ips), days: Math.round(Number(row.days)), rows: Number(row.rows), history: Number(row.history ?? 0) }
}
