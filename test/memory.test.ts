import t from 'tap'
import { sql } from 'kysely'
import { backend, buildApp } from './helpers.js'

// Issue #15.8: PGlite runs with buffers sized for one embedded process (bench/memory.js has the RSS figures).
t.test('embedded PGlite starts with small shared buffers', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const app = await buildApp(store.options)
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  const setting = async (name: string): Promise<string> => (await sql<Record<string, string>>`select current_setting(${name}) as value`.execute(app.monitor.db)).rows[0]!.value!
  t.equal(await setting('shared_buffers'), '16MB', 'not PostgreSQL\'s 128MB: every page touched stays in the WebAssembly memory')
  t.equal(await setting('wal_buffers'), '1MB')
})
