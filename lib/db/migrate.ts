import { Migrator, type Kysely, type MigrationProvider } from 'kysely'
import { createMigrations } from './migrations/index.js'

/**
 * Brings the schema to the latest version with kysely's Migrator. Its bookkeeping tables are
 * `<prefix>migration` and `<prefix>migration_lock`, apart from the host app's `kysely_migration`;
 * the Migrator's lock makes concurrent starts of several processes safe.
 */
export async function migrateToLatest (rawDb: Kysely<any>, tablePrefix: string): Promise<void> {
  const migrations = createMigrations(tablePrefix)
  const provider: MigrationProvider = { getMigrations: async () => migrations }
  const migrator = new Migrator({
    db: rawDb,
    provider,
    migrationTableName: `${tablePrefix}migration`,
    migrationLockTableName: `${tablePrefix}migration_lock`
  })
  // migrateToLatest never throws: it reports
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName
    const wrapped = new Error(`migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`.replace('  ', ' '))
    Object.assign(wrapped, { code: (error as { code?: unknown }).code, cause: error })
    throw wrapped
  }
}
