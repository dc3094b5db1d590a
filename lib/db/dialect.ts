import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { Kysely, PostgresDialect, type CompiledQuery } from 'kysely'
import type { Database } from './database.js'
import type { StorageOptions } from '../options.js'
import { TablePrefixPlugin } from './table-prefix-plugin.js'
import { withTableNamesIntrospector } from './introspector.js'
import type { PgliteAssets } from './pglite-assets.js'

/** A database handle and what it is, as the writer's thread opens it. */
export interface OpenedDatabase {
  /** Queries name tables without the prefix; the plugin adds it. */
  db: Kysely<Database>
  /** The same connection without the prefix plugin, for kysely's Migrator and raw reads. */
  rawDb: Kysely<any>
  kind: 'postgres' | 'pglite'
  /** PGlite only: a tarball of its data directory as it is now. */
  dumpDataDir?: () => Promise<ArrayBuffer>
  /**
   * PostgreSQL server only: runs `work` in one transaction on one connection that can also `COPY … FROM
   * STDIN`, which kysely cannot. The writer copies the raw requests with it (see writeUnit).
   */
  copyTransaction?: <T>(work: (tx: CopyTransaction) => Promise<T>) => Promise<T>
}

/** A transaction on one `pg` connection: compiled kysely queries and COPY. */
export interface CopyTransaction {
  /** Runs a query compiled by kysely (so the table prefix is applied) and returns its rows. */
  query: <R>(query: CompiledQuery<R>) => Promise<R[]>
  /** Runs `COPY … FROM STDIN` (compiled by kysely) with `data` in the format the statement names. */
  copyFrom: (statement: CompiledQuery, data: Buffer) => Promise<void>
}

export interface OpenDatabaseOptions {
  /** PGlite only: what an earlier database of this process left (see pglite-assets.ts). */
  assets?: PgliteAssets
  /**
   * How long a new `pg` connection may take. The writer's thread retries with backoff, so it keeps
   * this short; a one-shot command (the CLI in a CI step, on a loaded runner) waits longer instead.
   */
  connectionTimeoutMs?: number
  /**
   * PGlite only: create a new data directory in this thread. Otherwise a new directory is created and
   * migrated in a process of its own, so what that costs does not stay (initDataDirInProcess).
   */
  initHere?: boolean
}

/** Names of the statements prepared on the writer's connections, by their text. */
const preparedNames = new Map<string, string>()

/**
 * A name for a statement's text, so each connection parses and plans it once: the writer runs the same few
 * statements (a batch's claim and rollups) for every batch, and the rollups' seven upserts cost PostgreSQL
 * more to plan than to run at small batches. The text holds no value (all are parameters), so few names exist.
 */
function preparedName (text: string): string {
  let name = preparedNames.get(text)
  if (name === undefined) {
    name = `fmd_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`
    preparedNames.set(text, name)
  }
  return name
}

/**
 * Opens a `pg` pool or embedded PGlite behind one kysely dialect family (both compile with the
 * Postgres query compiler), so every query is written once. Drivers load lazily: a user of a
 * Postgres server never loads PGlite's 10 MB of WASM.
 */
export async function openDatabase (options: Pick<StorageOptions, 'database' | 'tablePrefix'>, { assets, connectionTimeoutMs = 5_000, initHere = false }: OpenDatabaseOptions = {}): Promise<OpenedDatabase> {
  const plugin = new TablePrefixPlugin(options.tablePrefix)
  if (options.database.kind === 'postgres') {
    const { default: pg } = await import('pg')
    const pool = new pg.Pool({
      connectionString: options.database.connectionString,
      max: 4,
      connectionTimeoutMillis: connectionTimeoutMs,
      idleTimeoutMillis: 30_000,
      application_name: 'fastify-monitoring-dashboard'
    })
    // A connection dying (server restart, network cut) makes pg emit 'error' on the pool for an idle
    // client and on the client itself while kysely holds it; unheard, either would kill the thread.
    // The query in flight still rejects, and the writer retries it.
    pool.on('error', () => {})
    pool.on('connect', (client) => { client.on('error', () => {}) })
    const rawDb = new Kysely<any>({ dialect: withTableNamesIntrospector(new PostgresDialect({ pool })) })
    const { from: copyFromStdin } = await import('pg-copy-streams')
    const copyTransaction = async <T>(work: (tx: CopyTransaction) => Promise<T>): Promise<T> => {
      const client = await pool.connect()
      let broken: Error | undefined
      try {
        await client.query('begin')
        const result = await work({
          query: async <R>(query: CompiledQuery<R>) => (await client.query({ name: preparedName(query.sql), text: query.sql, values: [...query.parameters] })).rows as R[],
          copyFrom: async (statement, data) => { await pipeline(Readable.from([data]), client.query(copyFromStdin(statement.sql))) }
        })
        await client.query('commit')
        return result
      } catch (err) {
        await client.query('rollback').catch((rollbackErr: Error) => { broken = rollbackErr })
        throw err
      } finally {
        // a connection whose rollback failed is in an unknown state: the pool drops it
        client.release(broken)
      }
    }
    return { db: rawDb.withPlugin(plugin) as Kysely<Database>, rawDb, kind: 'postgres', copyTransaction }
  }
  const { PGlite } = await import('@electric-sql/pglite')
  // PostgreSQL's server defaults size a shared machine; PGlite serves one process, and every page it
  // touches stays in its WebAssembly memory (which never shrinks). See bench/memory.js for the figures.
  const PGLITE_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB', '-c', 'wal_buffers=1MB']
  const { PGliteDialect } = await import('kysely-pglite-dialect')
  const directory = fileDataDir(options.database.dataDir)
  if (!initHere && directory !== undefined && !existsSync(join(directory, 'PG_VERSION'))) await initDataDirInProcess(options)
  // with assets nothing is compiled, and a snapshot (memory:// only) skips initdb and the migrations
  const pglite = await PGlite.create(options.database.dataDir, assets === undefined
    ? { startParams: PGLITE_START_PARAMS }
    : {
        startParams: PGLITE_START_PARAMS,
        pgliteWasmModule: assets.pgliteWasmModule,
        initdbWasmModule: assets.initdbWasmModule,
        fsBundle: new Blob([assets.fsBundle]),
        loadDataDir: assets.snapshot === undefined || directory !== undefined ? undefined : new Blob([assets.snapshot])
      })
  const rawDb = new Kysely<any>({ dialect: withTableNamesIntrospector(new PGliteDialect(pglite)) })
  return {
    db: rawDb.withPlugin(plugin) as Kysely<Database>,
    rawDb,
    kind: 'pglite',
    dumpDataDir: async () => await (await pglite.dumpDataDir('none')).arrayBuffer()
  }
}

/** The directory of an on-disk PGlite data dir (a path or `file://…`); undefined for `memory://` and the like. */
function fileDataDir (dataDir: string): string | undefined {
  if (dataDir.startsWith('file://')) return dataDir.slice('file://'.length)
  return /^[a-z]+:\/\//.test(dataDir) ? undefined : dataDir
}

/**
 * Creates a new PGlite data directory, initdb and the migrations, in a process of its own
 * (pglite-init-process.ts), so the thread that keeps the database opens it as on a restart. PGlite's
 * first open of a directory runs initdb in two more WebAssembly instances (initdb's and a second
 * postgres); closed, their memory stayed until a garbage collection happened to run in the writer's
 * thread, which an idle app does not: the README's app idled at 754 MB RSS after a first start, 252 MB
 * since, as after a restart (bench/memory.js). Not a worker thread: after one exited, 347–384 MB stayed,
 * as the C allocator keeps what an exited thread freed (it did not with MALLOC_ARENA_MAX=1); a process's
 * exit returns everything.
 */
async function initDataDirInProcess (options: Pick<StorageOptions, 'database' | 'tablePrefix'>): Promise<void> {
  // from the sources (tests) the entry is the .ts beside this file, run by the loader this process has
  const fromSources = import.meta.url.endsWith('.ts')
  const entry = fileURLToPath(new URL(`./pglite-init-process.${fromSources ? 'ts' : 'js'}`, import.meta.url))
  const args = { database: options.database, tablePrefix: options.tablePrefix }
  await promisify(execFile)(process.execPath, [...(fromSources ? process.execArgv : []), entry, JSON.stringify(args)])
}
