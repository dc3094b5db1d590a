import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { sql } from 'kysely'
import { openDatabase } from '../lib/db/dialect.js'
import { backend, buildApp, tmpDir } from './helpers.js'
import { compilePlugin } from './compiled.js'

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

// What a first start leaves in the process, in a process of its own (the test runner's memory would blur it).
// Before initdb ran in a process of its own, its two extra WebAssembly instances stayed until a garbage
// collection: the README's app idled at 754 MB RSS after a first start, 252 MB since (bench/memory.js); in
// a worker thread of its own instead, 347–384 MB.
const FIXTURE = fileURLToPath(new URL('fixtures/first-start.mjs', import.meta.url))

t.test('a first start on PGlite creates its data directory in a process of its own: everything recorded, its memory gone', async (t) => {
  const dir = tmpDir()
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  // without tap's process-tracking loader, which costs ≈ 90 MB of RSS in each thread it loads into
  const { NODE_OPTIONS: _, ...env } = process.env
  const { stdout } = await promisify(execFile)(process.execPath, [FIXTURE], {
    env: { ...env, FMD_ENTRY: compilePlugin(), FMD_DATA_DIR: dataDir },
    timeout: 180_000
  })
  const { count, rssMB } = JSON.parse(stdout) as { count: number, rssMB: number }
  t.equal(count, 200, 'every request of the first start stored')
  t.ok(existsSync(join(dataDir, 'PG_VERSION')), 'the data directory initialised on disk')
  t.ok(rssMB < 450, `RSS after a first start ${Math.round(rssMB)} MB < 450 MB`)
})

t.test('a new PGlite directory opened from the sources is created and migrated by the init process', async (t) => {
  const dir = tmpDir()
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const opened = await openDatabase({ tablePrefix: 'fmd_', database: { kind: 'pglite', dataDir: join(dir, 'data') } })
  t.teardown(() => opened.rawDb.destroy())
  // nothing migrated here: the tables come from the process that created the directory
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_tables where tablename = 'fmd_request'`.execute(opened.rawDb)
  t.equal(rows[0]!.n, 1)
})
