import {
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult
} from 'kysely'
import type { QueryReply } from '../protocol.js'

/** Something that runs compiled SQL elsewhere: the writer's thread. */
export interface QueryRunner {
  query: (sql: string, parameters: readonly unknown[]) => Promise<unknown>
}

class RemoteConnection implements DatabaseConnection {
  readonly #runner: QueryRunner
  constructor (runner: QueryRunner) { this.#runner = runner }

  async executeQuery<R> (compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const reply = await this.#runner.query(compiledQuery.sql, compiledQuery.parameters) as QueryReply
    return {
      rows: reply.rows as R[],
      numAffectedRows: reply.numAffectedRows === undefined ? undefined : BigInt(reply.numAffectedRows)
    }
  }

  // eslint-disable-next-line require-yield
  async * streamQuery<R> (): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported on the monitoring database')
  }
}

class RemoteDriver implements Driver {
  readonly #connection: RemoteConnection
  constructor (runner: QueryRunner) { this.#connection = new RemoteConnection(runner) }
  async init (): Promise<void> {}
  async acquireConnection (): Promise<DatabaseConnection> { return this.#connection }
  async beginTransaction (): Promise<void> {
    throw new Error('transactions are not supported on the read side of the monitoring database')
  }

  async commitTransaction (): Promise<void> {}
  async rollbackTransaction (): Promise<void> {}
  async releaseConnection (): Promise<void> {}
  async destroy (): Promise<void> {}
}

/**
 * A kysely dialect for the request thread whose queries run in the writer's thread, over the one
 * connection it owns. Queries are compiled here with the Postgres compiler and only SQL text and
 * parameters cross threads, so the read side (API, custom queries) uses plain typed kysely.
 */
export class RemoteDialect implements Dialect {
  readonly #runner: QueryRunner
  constructor (runner: QueryRunner) { this.#runner = runner }
  createAdapter (): DialectAdapter { return new PostgresAdapter() }
  createDriver (): Driver { return new RemoteDriver(this.#runner) }
  createQueryCompiler (): QueryCompiler { return new PostgresQueryCompiler() }
  createIntrospector (db: Kysely<any>): DatabaseIntrospector { return new PostgresIntrospector(db) }
}
