/**
 * How the schema's tables lie on a Citus cluster (distributed PostgreSQL), for users who outgrow one
 * server: the raw requests and the per-endpoint rollups are sharded by `endpoint_id` and co-located, so a
 * batch's rollup upserts and an endpoint's reads stay on one shard each; the small tables that every query
 * joins (endpoints, projects, versions, …) are reference tables, copied to every node. Citus's rules,
 * checked by test/citus-layout.test.ts against the migrated schema: a distributed table's primary key and
 * unique constraints include its distribution column, and foreign keys point at reference tables.
 */

/** A table's place on the cluster: sharded by a column (co-located with `request` when it is `endpoint_id`), or copied to every node. */
export type CitusPlacement = { distributeBy: string } | 'reference'

export const CITUS_LAYOUT: Readonly<Record<string, CitusPlacement>> = {
  // reference tables first: foreign keys point at them
  project: 'reference',
  project_token: 'reference',
  endpoint: 'reference',
  version: 'reference',
  instance: 'reference',
  dashboard_user: 'reference',
  graph: 'reference',
  load_run: 'reference',
  test_build: 'reference',
  test_batch: 'reference',
  test_run: 'reference',
  test_hit: 'reference',
  folded_hour: 'reference',
  // sharded by endpoint and co-located with the raw table
  request: { distributeBy: 'endpoint_id' },
  request_hour: { distributeBy: 'endpoint_id' },
  endpoint_hour: { distributeBy: 'endpoint_id' },
  endpoint_day: { distributeBy: 'endpoint_id' },
  endpoint_month: { distributeBy: 'endpoint_id' },
  version_hour: { distributeBy: 'endpoint_id' },
  version_day: { distributeBy: 'endpoint_id' },
  outlier_hour: { distributeBy: 'endpoint_id' },
  // sharded by their own keys: no constraint of theirs names the endpoint, and none is joined shard to shard
  version_total_hour: { distributeBy: 'version_id' },
  outlier: { distributeBy: 'id' },
  profile: { distributeBy: 'id' },
  batch: { distributeBy: 'id' },
  graph_run: { distributeBy: 'graph' }
}

/**
 * The statements that lay out a migrated schema on Citus (run once, on the coordinator, after the plugin
 * has created the tables). kysely's `migration` tables stay local to the coordinator.
 */
export function citusSetupSql (prefix: string): string {
  return Object.entries(CITUS_LAYOUT).map(([table, placement]) => placement === 'reference'
    ? `select create_reference_table('${prefix}${table}');`
    : `select create_distributed_table('${prefix}${table}', '${placement.distributeBy}'${placement.distributeBy === 'endpoint_id' && table !== 'request' ? `, colocate_with => '${prefix}request'` : ''});`
  ).join('\n')
}
