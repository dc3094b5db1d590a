import t from 'tap'
import { Kysely, PostgresDialect, type Dialect } from 'kysely'
import pg from 'pg'
import { openDatabase } from '../lib/db/dialect.js'
import { withTableNamesIntrospector } from '../lib/db/introspector.js'
import { migrateToLatest } from '../lib/db/migrate.js'
import { createMigrations } from '../lib/db/migrations/index.js'
import { DIALECTS, POSTGRES_URL, backend } from './helpers.js'

// kysely's own PostgreSQL introspector reads every column of every table and calls
// pg_get_serial_sequence() on each: on a shared server that raced with other sessions' DROP TABLE
// ("relation … does not exist", a CLI exit 3 in CI). The Migrator must only list names.
for (const dialect of DIALECTS) {
  t.test(`${dialect}: migrations ask the catalogs for table names only`, async (t) => {
    const store = await backend(dialect, { unmigrated: true })
    t.teardown(store.cleanup)
    // destroying the Kysely instance ends the pool, or closes the PGlite
    let inner: Dialect
    if (dialect === 'postgres') {
      inner = new PostgresDialect({ pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 2 }) })
    } else {
      const { PGlite } = await import('@electric-sql/pglite')
      const { PGliteDialect } = await import('kysely-pglite-dialect')
      inner = new PGliteDialect(await PGlite.create(store.options.dataDir!))
    }
    const queries: string[] = []
    const db = new Kysely<any>({ dialect: withTableNamesIntrospector(inner), log: (event) => { queries.push(event.query.sql) } })
    t.teardown(async () => { await db.destroy() })

    await migrateToLatest(db, store.prefix)
    const applied = await db.selectFrom(`${store.prefix}migration`).select('name').execute()
    t.same(applied.map((row) => row.name), Object.keys(createMigrations(store.prefix)), 'every migration applied, in order')
    await migrateToLatest(db, store.prefix)
    t.equal((await db.selectFrom(`${store.prefix}migration`).select('name').execute()).length, applied.length, 'a second run applies nothing')
    t.notOk(queries.some((q) => /pg_attribute|pg_get_serial_sequence/.test(q)), 'no column of any table was read')

    const tables = await db.introspection.getTables()
    const ours = tables.filter((table) => table.name.startsWith(store.prefix))
    t.ok(ours.some((table) => table.name === `${store.prefix}request`), 'the tables are listed by name')
    t.ok(ours.every((table) => table.columns.length === 0 && table.schema === 'public'), 'names and schema, no columns')
  })
}

t.test('both backends\' connections use it', async (t) => {
  const store = await backend(DIALECTS[0]!, { unmigrated: true })
  t.teardown(store.cleanup)
  const opened = await openDatabase({ tablePrefix: store.prefix, database: store.dialect === 'postgres' ? { kind: 'postgres', connectionString: POSTGRES_URL } : { kind: 'pglite', dataDir: store.options.dataDir! } })
  t.teardown(async () => { await opened.rawDb.destroy() })
  await migrateToLatest(opened.rawDb, store.prefix)
  const request = (await opened.rawDb.introspection.getTables()).find((table) => table.name === `${store.prefix}request`)
  t.same(request?.columns, [], 'the plugin\'s own connection lists names only')
})
