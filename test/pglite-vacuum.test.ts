// PGlite has no autovacuum: the writer's hourly maintenance vacuums and analyses the rollups and the
// requests there (vacuumForPglite), so the covering indexes answer without reading rows and the planner
// has statistics. Only PGlite: a server's autovacuum does this itself.
import t from 'tap'
import { sql } from 'kysely'
import { vacuumForPglite } from '../lib/db/retention.js'
import { backend, buildApp, until } from './helpers.js'

t.test('pglite: the maintenance vacuum gives the rollups statistics and an all-visible map', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, metrics: false })
  t.teardown(() => app.close())
  await app.ready()
  for (let i = 0; i < 50; i++) await app.inject({ url: `/users/${i}` })
  await app.monitor.flush()
  const db = app.monitor.db
  const stats = async () => (await sql<{ tuples: number, visible: number, pages: number }>`
    select reltuples as tuples, relallvisible as visible, relpages as pages from pg_class where relname = ${`${store.prefix}endpoint_hour`}`.execute(db)).rows[0]!
  const before = await stats()
  t.equal(Number(before.tuples), -1, 'never analysed before (no autovacuum)')
  t.equal(Number(before.visible), 0, 'no page marked all-visible')

  await vacuumForPglite(db)
  const after = await stats()
  t.ok(Number(after.tuples) >= 1, `analysed: ${after.tuples} rows estimated`)
  t.ok(Number(after.visible) >= 1 && Number(after.visible) === Number(after.pages), `every page all-visible (${after.visible} of ${after.pages})`)
  t.ok(await until(async () => {
    const { rows: [row] } = await sql<{ hits: string }>`select sum(hits) as hits from ${sql.table('endpoint_hour')}`.execute(db)
    return Number(row?.hits) === 50
  }), 'the rollups still hold every request')
})
