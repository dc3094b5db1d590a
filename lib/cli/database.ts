import { existsSync } from 'node:fs'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { openDatabase } from '../db/dialect.js'
import { migrateToLatest } from '../db/migrate.js'
import { POSTGRES_URL, maskUrl, resolveOptions } from '../options.js'
import { lockDataDir } from '../storage/lock.js'
import { UsageError } from './exit.js'

/** The monitoring database as the CLI opens it: a PostgreSQL URL or a PGlite data directory. */
export interface CliDatabase {
  db: Kysely<Database>
  close: () => Promise<void>
}

/**
 * A one-shot command in a CI step may run on a loaded runner: it waits longer for a connection than
 * the writer's thread, which retries instead (a `pg` connect timing out there was exit 3 here).
 */
const CLI_CONNECTION_TIMEOUT_MS = 30_000

/**
 * Opens the database the plugin writes (`postgres://…`, or a PGlite directory, default the plugin's
 * own) and brings its schema up to date, as the plugin would. The URL, directory and table prefix are
 * checked as the plugin's options are (an invalid prefix is a usage error naming `tablePrefix`). A
 * PGlite directory is locked like the plugin locks it: while the app runs on it, the CLI is refused
 * (two processes would corrupt it).
 *
 * Without `create`, a database or prefix that holds no monitoring schema is a usage error, and nothing is
 * made there: `report` and `load` read what an app recorded, so a mistyped URL, prefix or directory must
 * not pass a CI gate with nothing compared (nor leave tables or a directory behind).
 */
export async function openCliDatabase (target: { database?: string, tablePrefix?: string, create?: boolean }): Promise<CliDatabase> {
  const { database, tablePrefix, create = false } = target
  const isUrl = database !== undefined && POSTGRES_URL.test(database)
  // the caller already chose between --database and the environment: nothing else is read here
  const resolved = resolveOptions({ ...(isUrl ? { database } : { dataDir: database }), tablePrefix, dashboard: false, metrics: false }, {})
  if (resolved instanceof Error) throw resolved
  const where = resolved.database.kind === 'pglite' ? `the PGlite directory ${resolved.database.dataDir}` : maskUrl(resolved.database.connectionString)
  const missing = (): UsageError => new UsageError(`${where} holds no monitoring tables (table prefix ${resolved.tablePrefix}): give --database the database your app records into` +
    `${resolved.database.kind === 'pglite' ? ' (a PostgreSQL URL, or its dataDir)' : ''}, and --table-prefix its tablePrefix`)
  if (!create && resolved.database.kind === 'pglite' && !existsSync(resolved.database.dataDir)) throw missing()
  const release = resolved.database.kind === 'pglite' ? await lockDataDir(resolved.database.dataDir, 0) : () => {}
  try {
    const opened = await openDatabase(resolved, { connectionTimeoutMs: CLI_CONNECTION_TIMEOUT_MS })
    try {
      if (!create) {
        const { rows } = await sql<{ present: boolean }>`select to_regclass(${`${resolved.tablePrefix}migration`}) is not null as present`.execute(opened.rawDb)
        if (rows[0]?.present !== true) throw missing()
      }
      await migrateToLatest(opened.rawDb, resolved.tablePrefix)
    } catch (err) {
      await opened.rawDb.destroy()
      throw err
    }
    return { db: opened.db, close: async () => { try { await opened.rawDb.destroy() } finally { release() } } }
  } catch (err) {
    release()
    throw err
  }
}
