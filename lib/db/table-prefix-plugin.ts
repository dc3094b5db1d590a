import {
  OperationNodeTransformer,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type TableNode,
  type UnknownRow
} from 'kysely'

/**
 * The schema's tables and their daily partitions; anything else (aliases, CTE names, system catalogs) is left alone.
 * Tables that only older migrations know (`duration_hour`, `duration_day`, dropped by 0008) stay listed: migrations
 * run through this plugin and are frozen.
 */
const OWN_TABLE = /^(endpoint|request|version|instance|project|project_token|batch|request_hour|duration_hour|duration_day|endpoint_hour|endpoint_day|endpoint_month|version_hour|version_day|version_total_hour|folded_hour|dashboard_user|outlier|outlier_hour|profile|test_build|test_batch|test_run|test_hit|graph|graph_run|load_run|request_p\d{8})$/

class TablePrefixTransformer extends OperationNodeTransformer {
  readonly #prefix: string

  constructor (prefix: string) {
    super()
    this.#prefix = prefix
  }

  protected override transformTable (node: TableNode): TableNode {
    const table = super.transformTable(node)
    const identifier = table.table.identifier
    if (table.table.schema !== undefined || !OWN_TABLE.test(identifier.name)) return table
    return { ...table, table: { ...table.table, identifier: { ...identifier, name: this.#prefix + identifier.name } } }
  }
}

/**
 * Adds the configured prefix to every table a query names, including `sql.table()` in raw SQL,
 * so the code speaks of `request` and the database holds `fmd_request`. Only the schema's own table
 * names are prefixed, so aliases (`request as r`) keep working. The prefix was checked
 * against `^[a-z_][a-z0-9_]*$` by the options, and kysely quotes identifiers anyway.
 *
 * ### Examples
 * ```ts
 * const db = kysely.withPlugin(new TablePrefixPlugin('fmd_'))
 * ```
 */
export class TablePrefixPlugin implements KyselyPlugin {
  readonly #transformer: TablePrefixTransformer

  constructor (prefix: string) {
    this.#transformer = new TablePrefixTransformer(prefix)
  }

  transformQuery (args: PluginTransformQueryArgs): RootOperationNode {
    return this.#transformer.transformNode(args.node, args.queryId)
  }

  async transformResult (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result
  }
}
