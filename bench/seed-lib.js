// Shared by `npm run seed` and `npm run bench:api`: an app with the plugin on the chosen database,
// its endpoints registered, filled with generated traffic when it holds fewer requests than asked.
import Fastify from 'fastify'
import { sql } from 'kysely'
import monitor from '../dist/index.js'
import { generateTraffic } from '../dist/db/seed.js'

export const ROUTES = ['/users/:id', '/users', '/orders/:id', '/orders', '/search', '/health', '/reports/:year', '/login']

export async function seededApp ({ database, dataDir, prefix = 'fmdbench_', requests, days = 30, dashboard = false, log = console.log }) {
  const app = Fastify({ logger: false })
  await app.register(monitor, { database, dataDir, tablePrefix: prefix, appVersion: 'bench', metrics: false, dashboard })
  for (const route of ROUTES) app.get(route, async () => 'ok')
  await app.ready()
  await app.monitor.ready
  await app.monitor.flush()
  const db = app.monitor.db
  const endpoints = await db.selectFrom('endpoint').select('id').where('route', 'in', ROUTES).execute()
  const { n } = await db.selectFrom('request_hour').select(sql`coalesce(sum(hits), 0)`.as('n')).executeTakeFirstOrThrow()
  const have = Number(n)
  if (have < requests) {
    const start = Date.now()
    log(`seeding ${requests - have} requests over ${days} days…`)
    await generateTraffic(db, {
      requests: requests - have,
      days,
      endpointIds: endpoints.map((e) => e.id),
      versions: ['1.0.0', '1.1.0', '1.2.0', '2.0.0'],
      onProgress: (done) => log(`  ${done} rows`)
    })
    // as autovacuum would in time: the visibility map lets breakdowns scan the covering index alone
    // (only this prefix's requests: the database may hold other tables)
    await sql`vacuum analyze ${sql.table('request')}`.execute(db)
    await sql`analyze`.execute(db)
    log(`seeded in ${((Date.now() - start) / 1000).toFixed(1)} s`)
  } else {
    log(`database already holds ${have} requests`)
  }
  return app
}
