import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { openDatabase } from '../db/dialect.js'
import { migrateToLatest } from '../db/migrate.js'
import { DEFAULT_DATA_DIR, DEFAULT_TABLE_PREFIX } from '../options.js'
import { lockDataDir } from '../storage/lock.js'

/** The monitoring database as the CLI opens it: a PostgreSQL URL or a PGlite data directory. */
export interface CliDatabase {
  db: Kysely<Database>
  close: () => Promise<void>
}

/**
 * Opens the database the plugin writes (`postgres://…`, or a PGlite directory, default the plugin's
 * own) and brings its schema up to date, as the plugin would. A PGlite directory is locked like the
 * plugin locks it: while the app runs on it, the CLI is refused (two processes would corrupt it).
 */
export async function openCliDatabase (database: string | undefined, tablePrefix = DEFAULT_TABLE_PREFIX): Promise<CliDatabase> {
  const target = database ?? DEFAULT_DATA_DIR
  const kind = /^postgres(ql)?:\/\//.test(target) ? 'postgres' : 'pglite'
  const release = kind === 'pglite' ? await lockDataDir(target, 0) : () => {}
  try {
    const opened = await openDatabase({ tablePrefix, database: kind === 'postgres' ? { kind, connectionString: target } : { kind, dataDir: target } })
    await migrateToLatest(opened.rawDb, tablePrefix)
    return { db: opened.db, close: async () => { try { await opened.rawDb.destroy() } finally { release() } } }
  } catch (err) {
    release()
    throw err
  }
}
