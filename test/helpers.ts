import { accessSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import pg from 'pg'
import { Kysely, PostgresDialect } from 'kysely'
import monitor, { type MonitorOptions } from '../lib/index.js'
import { openDatabase, type OpenedDatabase } from '../lib/db/dialect.js'
import type { Database } from '../lib/db/database.js'
import { PartitionManager, dayOf } from '../lib/db/partitions.js'
import { resolveOptions } from '../lib/options.js'
import { registerInstance, upsertEndpoints } from '../lib/writer/store.js'
import { migrateToLatest, schemaMigrator } from '../lib/db/migrate.js'
import { TablePrefixPlugin } from '../lib/db/table-prefix-plugin.js'
import { withTableNamesIntrospector } from '../lib/db/introspector.js'

export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Backends every storage test runs against; CI runs both. */
export const DIALECTS = (process.env.DIALECTS ?? 'pglite,postgres').split(',').map((d) => d.trim()).filter(Boolean) as Array<'pglite' | 'postgres'>

/**
 * One backend (the server when it is tested) for tests whose subject is not storage: a page in
 * Chromium, a bound on the process's memory, CPU work beside requests, a child test runner. What they
 * store and read is checked on both backends by the storage tests (dashboard-api, recording, outliers,
 * test-monitor-api); running them twice doubled their minutes in CI and checked nothing more.
 */
export const ONE_DIALECT: Array<'pglite' | 'postgres'> = DIALECTS.includes('postgres') ? ['postgres'] : DIALECTS

/**
 * Where tests keep their files: the RAM-backed /dev/shm where it is writable. A PGlite data directory
 * is about 1,100 files (40 MB); on this machine's ext4 a copy of one takes 1.3 s of kernel time and on
 * tmpfs 0.12 s, and PGlite's own file I/O in the tests is as much cheaper.
 */
export const TEST_TMP = ((): string => {
  try {
    accessSync('/dev/shm', constants.W_OK)
    return '/dev/shm'
  } catch {
    return tmpdir()
  }
})()

const PGLITE_VERSION = (JSON.parse(readFileSync(new URL('../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')) as { version: string }).version

/**
 * The table prefix of every PGlite test database: each test has a directory of its own, so the
 * prefix need not differ (on the shared PostgreSQL server it must), and the template can be migrated.
 */
const PGLITE_TEST_PREFIX = 'fmd_'

/**
 * A template data directory, built once per machine and copied by each test: PGlite's initdb takes
 * about 8 s of CPU and the migrations 1.5 s more, against 0.2 s to copy. `migrated` names the schema
 * by a hash of the migrations' source, so a changed migration builds a new template.
 */
async function pgliteTemplate (migrated: boolean): Promise<string> {
  // the migrations run through the prefix plugin: a change to either makes a new template
  const migrations = createHash('sha256').update(readFileSync(new URL('../lib/db/migrations/index.ts', import.meta.url)))
    .update(readFileSync(new URL('../lib/db/table-prefix-plugin.ts', import.meta.url))).digest('hex').slice(0, 12)
  const template = join(TEST_TMP, `fmd-test-pglite-${PGLITE_VERSION}-${migrated ? `migrated-${migrations}` : 'initdb'}`)
  if (existsSync(template)) return template
  const building = mkdtempSync(join(TEST_TMP, 'fmd-template-'))
  const data = join(building, 'data')
  if (migrated) {
    cpSync(await pgliteTemplate(false), data, { recursive: true })
    const opened = await openDatabase({ tablePrefix: PGLITE_TEST_PREFIX, database: { kind: 'pglite', dataDir: data } })
    await migrateToLatest(opened.rawDb, PGLITE_TEST_PREFIX)
    await opened.rawDb.destroy()
  } else {
    const { PGlite } = await import('@electric-sql/pglite')
    await (await PGlite.create(data)).close()
  }
  try { renameSync(data, template) } catch { /* another test file built it first */ }
  rmSync(building, { recursive: true, force: true })
  return template
}

/** A fresh PGlite data directory: a copy of the template, migrated unless asked otherwise. */
async function freshPgliteDir (migrated: boolean): Promise<string> {
  const dir = mkdtempSync(join(TEST_TMP, 'fmd-test-'))
  cpSync(await pgliteTemplate(migrated), join(dir, 'data'), { recursive: true })
  return join(dir, 'data')
}

/** Storage options for one test: its own PGlite directory, or its own table prefix on the shared server. */
export interface Backend {
  dialect: 'pglite' | 'postgres'
  options: MonitorOptions
  prefix: string
  cleanup: () => Promise<void>
}

/**
 * `unmigrated`: a PGlite directory with no schema yet (for tests of the migrations themselves); on
 * PostgreSQL a new prefix has none anyway.
 */
export async function backend (dialect: 'pglite' | 'postgres', overrides: { database?: string, unmigrated?: boolean } = {}): Promise<Backend> {
  if (dialect === 'pglite') {
    const prefix = PGLITE_TEST_PREFIX
    const dataDir = await freshPgliteDir(overrides.unmigrated !== true)
    return {
      dialect,
      prefix,
      options: { dataDir, tablePrefix: prefix },
      cleanup: async () => { rmSync(join(dataDir, '..'), { recursive: true, force: true }) }
    }
  }
  const prefix = `t${randomBytes(4).toString('hex')}_`
  return {
    dialect,
    prefix,
    options: { database: overrides.database ?? POSTGRES_URL, tablePrefix: prefix },
    cleanup: async () => { await dropPrefixedTables(prefix) }
  }
}

/**
 * A migrated schema opened as the writer's thread opens it (COPY on a server), with a version, an instance,
 * one endpoint per route (`GET`) and the partitions of the last two days and the next: for tests of the
 * writer's statements without an app.
 */
export async function openWriterStore (t: { teardown: (fn: () => unknown) => void }, dialect: 'pglite' | 'postgres', routes: string[]):
Promise<{ opened: OpenedDatabase, db: Kysely<Database>, prefix: string, versionId: number, instanceId: number, endpointIds: number[] }> {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const resolved = resolveOptions(store.options, {})
  if (resolved instanceof Error) throw resolved
  const opened = await openDatabase(resolved, { initHere: true })
  t.teardown(() => opened.rawDb.destroy())
  await migrateToLatest(opened.rawDb, store.prefix)
  const { db } = opened
  const { versionId, instanceId } = await registerInstance(db, 'v1', randomBytes(16).toString('hex'), new Date())
  const endpoints = await upsertEndpoints(db, routes.map((route, index) => ({ index, method: 'GET', route })), 1, 1)
  const today = dayOf(Date.now())
  await new PartitionManager(db, store.prefix).ensure(today - 2, today + 1)
  return { opened, db, prefix: store.prefix, versionId, instanceId, endpointIds: endpoints.map((e) => e.id) }
}

/**
 * A backend made with `unmigrated: true`, opened without the plugin and migrated up to `migration`: what
 * an older version of the plugin left, for tests that fill it and then let the plugin upgrade it. `db`
 * is prefixed as the plugin's is; close it before the plugin opens the same data.
 */
export async function migratedTo (store: Backend, migration: string): Promise<{ db: Kysely<any>, close: () => Promise<void> }> {
  let raw: Kysely<any>
  if (store.options.dataDir !== undefined) {
    const { PGlite } = await import('@electric-sql/pglite')
    const { PGliteDialect } = await import('kysely-pglite-dialect')
    raw = new Kysely<any>({ dialect: withTableNamesIntrospector(new PGliteDialect(await PGlite.create(store.options.dataDir))) })
  } else {
    // as the plugin opens it: kysely's own introspector races other tests' DROP TABLE (introspector.test.ts)
    raw = new Kysely<any>({ dialect: withTableNamesIntrospector(new PostgresDialect({ pool: new pg.Pool({ connectionString: store.options.database, max: 1 }) })) })
  }
  const { error } = await schemaMigrator(raw, store.prefix).migrateTo(migration)
  if (error !== undefined) throw error
  return { db: raw.withPlugin(new TablePrefixPlugin(store.prefix)), close: async () => { await raw.destroy() } }
}

export async function dropPrefixedTables (prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL })
  await client.connect()
  try {
    const { rows } = await client.query<{ tablename: string }>(
      "select tablename from pg_tables where schemaname = 'public' and tablename like $1", [`${prefix.replace(/_/g, '\\_')}%`])
    for (const { tablename } of rows) await client.query(`drop table if exists "${tablename}" cascade`)
  } finally {
    await client.end()
  }
}

/** Direct SQL on the shared Postgres server, for checks that must not go through the plugin. */
export async function withPostgres<T> (fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL })
  await client.connect()
  try { return await fn(client) } finally { await client.end() }
}

/** A demo-like app with the plugin registered first, as the README tells users. */
export async function buildApp (options: MonitorOptions, fastifyOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: process.env.FMD_TEST_LOG === undefined ? false : { level: process.env.FMD_TEST_LOG }, ...fastifyOptions })
  await app.register(monitor, { flushIntervalMs: 20, retryMaxDelayMs: 200, levelPollIntervalMs: 100, ...options })
  app.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  app.post('/users', async (_request, reply) => reply.code(201).send({ ok: true }))
  app.get('/fail', async () => { throw new Error('boom') })
  app.get('/slow', async () => { await new Promise((resolve) => setTimeout(resolve, 30)); return 'done' })
  return app
}

/**
 * {@link buildApp} on a fresh backend of `dialect` (both torn down with the test), ready, once its routes
 * are stored as endpoints; `endpoints` are their ids in order.
 */
export async function readyApp (t: { teardown: (fn: () => unknown) => void }, dialect: 'pglite' | 'postgres', options: Partial<MonitorOptions> = {}):
Promise<{ app: FastifyInstance, db: FastifyInstance['monitor']['db'], endpoints: number[], prefix: string }> {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, metrics: false, ...options })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  const db = app.monitor.db
  await until(async () => (await db.selectFrom('endpoint').select('id').execute()).length >= 2)
  const endpoints = (await db.selectFrom('endpoint').select('id').orderBy('id').execute()).map((e) => e.id)
  return { app, db, endpoints, prefix: store.prefix }
}

/** Polls until `check` returns true or the time is up. */
export async function until (check: () => Promise<boolean> | boolean, timeoutMs = 20_000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return false
}

/** Directories made by {@link tmpDir}: removed when the test file's process exits (/dev/shm is memory). */
const madeDirs: string[] = []
process.once('exit', () => { for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true }) })

export function tmpDir (): string {
  const dir = join(TEST_TMP, `fmd-${randomBytes(6).toString('hex')}`)
  mkdirSync(dir, { recursive: true })
  madeDirs.push(dir)
  return dir
}

/** A TCP port free on the loopback interface right now. */
export async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A minimal batch for the ingest route: one endpoint, two requests of the last second; `extra` overrides fields. */
export function ingestBatch (id: string, route: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Date.now()
  return {
    batch: id,
    version: 'svc-1',
    instance: { host: 'svc', pid: 1, token: 'svc-instance' },
    endpoints: [{ method: 'GET', route }],
    requests: { endpoint: [0, 0], time: [now - 20, now - 10], durationMs: [3, 4], statusCode: [200, 200] },
    ...extra
  }
}
