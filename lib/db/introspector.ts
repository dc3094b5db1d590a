import {
  DEFAULT_MIGRATION_LOCK_TABLE,
  DEFAULT_MIGRATION_TABLE,
  sql,
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type DatabaseMetadataOptions,
  type Dialect,
  type Kysely,
  type SchemaMetadata,
  type TableMetadata
} from 'kysely'

/**
 * Table and schema names, without columns: all that kysely's Migrator asks (whether its two tables
 * exist), and nothing else in the plugin introspects.
 *
 * kysely's PostgreSQL introspector answers the Migrator by reading every column of every table in the
 * database and calling `pg_get_serial_sequence()` on each (kysely issues #1313 and #1707). On a server
 * shared with other apps that costs a query proportional to the whole database at every start, and it
 * fails outright ("relation … does not exist") when another session drops a table between the query's
 * snapshot and the function's own name lookup: seen in CI, where test files drop their tables while
 * others start. Names read from `pg_class` come from one snapshot, so nothing here can race.
 */
class TableNamesIntrospector implements DatabaseIntrospector {
  readonly #db: Kysely<any>

  constructor (db: Kysely<any>) {
    this.#db = db
  }

  async getSchemas (): Promise<SchemaMetadata[]> {
    const { rows } = await sql<{ name: string }>`select nspname as name from pg_catalog.pg_namespace
      where nspname !~ '^pg_' and nspname <> 'information_schema'`.execute(this.#db)
    return rows
  }

  async getTables (options: DatabaseMetadataOptions = { withInternalKyselyTables: false }): Promise<TableMetadata[]> {
    const { rows } = await sql<{ name: string, schema: string, kind: string }>`select c.relname as name, ns.nspname as schema, c.relkind as kind
      from pg_catalog.pg_class c join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
      where c.relkind in ('r', 'v', 'p') and ns.nspname !~ '^pg_' and ns.nspname <> 'information_schema'`.execute(this.#db)
    return rows
      .filter((row) => options.withInternalKyselyTables || (row.name !== DEFAULT_MIGRATION_TABLE && row.name !== DEFAULT_MIGRATION_LOCK_TABLE))
      .map((row) => ({ name: row.name, schema: row.schema, isView: row.kind === 'v', columns: [] }))
  }

  async getMetadata (options?: DatabaseMetadataOptions): Promise<DatabaseMetadata> {
    return { tables: await this.getTables(options) }
  }
}

/** `dialect` with the {@link TableNamesIntrospector}: both backends speak PostgreSQL's catalogs. */
export function withTableNamesIntrospector (dialect: Dialect): Dialect {
  return {
    createDriver: () => dialect.createDriver(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => new TableNamesIntrospector(db)
  }
}
