import { Migrator, type Kysely, type MigrationProvider } from 'kysely'
import { createMigrations } from './migrations/index.js'

/**
 * kysely's Migrator over the schema's migrations. Its bookkeeping tables are `<prefix>migration` and
 * `<prefix>migration_lock`, apart from the host app's `kysely_migration`; the Migrator's lock makes
 * concurrent starts of several processes safe.
 */
export function schemaMigrator (rawDb: Kysely<any>, tablePrefix: string): Migrator {
  const migrations = createMigrations(tablePrefix)
  const provider: MigrationProvider = { getMigrations: async () => migrations }
  return new Migrator({
    db: rawDb,
    provider,
    migrationTableName: `${tablePrefix}migration`,
    migrationLockTableName: `${tablePrefix}migration_lock`
  })
}

/** Brings the schema to the latest version; a failure names the migration. */
export async function migrateToLatest (rawDb: Kysely<any>, tablePrefix: string): Promise<void> {
  const migrator = schemaMigrator(rawDb, tablePrefix)
  // migrateToLatest never throws: it reports
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName
    const wrapped = new Error(`migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`.replace('  ', ' '))
    Object.assign(wrapped, { code: (error as { code?: unknown }).code, cause: error })
    throw wrapped
  }
}
