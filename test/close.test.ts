import t from 'tap'
import { sql } from 'kysely'
import { DIALECTS, backend, buildApp } from './helpers.js'

for (const dialect of DIALECTS) {
  t.test(`${dialect}: app.close() writes everything before it resolves`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    // a long flush interval: nothing would be written by the timer during the test; close waits as
    // long as it takes the database to open (seconds on a loaded machine), as a deploy would configure it
    const app = await buildApp({ ...store.options, flushIntervalMs: 60_000, closeTimeoutMs: 120_000 })
    await app.ready()
    for (let i = 0; i < 123; i++) await app.inject({ url: `/users/${i}` })
    await app.close()

    const again = await buildApp(store.options)
    t.teardown(() => again.close())
    await again.ready()
    await again.monitor.ready
    const { n } = await again.monitor.db.selectFrom('request').select(({ fn }) => fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
    t.equal(Number(n), 123, 'all records written by close are there after a restart')
  })
}

// A suite builds many apps per process: after the first PGlite, the next ones start from its compiled
// modules (and memory:// ones from a migrated snapshot of its table prefix). What is shared must never
// carry data or a schema from one database to another.
t.test('PGlite databases of one process, on disk and memory://, each with its own data and table prefix', async (t) => {
  const count = async (app: Awaited<ReturnType<typeof buildApp>>, prefix: string): Promise<number> => {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(`${prefix}request`)}`.execute(app.monitor.db.withoutPlugins())
    return rows[0]!.n
  }
  const run = async (options: { dataDir: string, tablePrefix: string }, requests: number): Promise<Awaited<ReturnType<typeof buildApp>>> => {
    const app = await buildApp(options)
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    for (let i = 0; i < requests; i++) await app.inject({ url: `/users/${i}` })
    await app.monitor.flush()
    return app
  }
  const first = await run({ dataDir: 'memory://', tablePrefix: 'first_' }, 5)
  t.equal(await count(first, 'first_'), 5, 'a memory:// database stores its requests')
  await first.close()

  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const disk = await run({ dataDir: store.options.dataDir!, tablePrefix: store.prefix }, 7)
  t.equal(await count(disk, store.prefix), 7, 'an on-disk one after it stores its own')
  const { rows: foreign } = await sql<{ name: string }>`select tablename as name from pg_tables where tablename like 'first_%'`.execute(disk.monitor.db.withoutPlugins())
  t.same(foreign, [], 'and holds none of the memory:// database\'s tables')
  await disk.close()
  const reopened = await run({ dataDir: store.options.dataDir!, tablePrefix: store.prefix }, 0)
  t.equal(await count(reopened, store.prefix), 7, 'its data is on disk after a restart')
  await reopened.close()

  const again = await run({ dataDir: 'memory://', tablePrefix: 'first_' }, 2)
  t.equal(await count(again, 'first_'), 2, 'a memory:// one of the first prefix starts empty: the snapshot holds a schema, never requests')
  await again.close()
  const other = await run({ dataDir: 'memory://', tablePrefix: 'other_' }, 3)
  t.equal(await count(other, 'other_'), 3, 'and one of another table prefix is migrated for it')
})
