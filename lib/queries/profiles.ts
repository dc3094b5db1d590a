import { sql, type Kysely } from 'kysely'
import type { Database } from '../storage/database.js'
import type { CallTree, Frame } from '../profiling/sampler.js'

/** A profiled request, without its tree. */
export interface ProfileSummary {
  id: string
  timeRequested: Date
  durationMs: number
  samples: number
}

/** One node of a grouped profile: the same call path over many requests. */
export interface GroupedNode extends Frame {
  /** Index of the parent row, -1 at the top. Rows come parents first (a table's order; a sunburst's rings). */
  parent: number
  depth: number
  /** Requests whose tree has this path. */
  hits: number
  /** Time in this path and below, summed over those requests, and its mean and standard deviation per request, ms. */
  totalMs: number
  meanMs: number
  stdDevMs: number
  /** Time in this function itself, summed, ms. */
  selfMs: number
}

export async function listProfiles (db: Kysely<Database>, endpointId: number, limit: number): Promise<ProfileSummary[]> {
  const { rows } = await sql<{ id: string, time_requested: Date, duration_ms: number, samples: number }>`
    select id, time_requested, duration_ms, (tree->>'samples')::int as samples from ${sql.table('profile')}
    where endpoint_id = ${endpointId} order by time_requested desc, id desc limit ${limit}`.execute(db)
  return rows.map((row) => ({ id: String(row.id), timeRequested: row.time_requested, durationMs: row.duration_ms, samples: row.samples }))
}

export async function findProfile (db: Kysely<Database>, id: string): Promise<(ProfileSummary & { endpointId: number, tree: CallTree }) | undefined> {
  const { rows: [row] } = await sql<{ id: string, endpoint_id: number, time_requested: Date, duration_ms: number, tree: CallTree }>`
    select id, endpoint_id, time_requested, duration_ms, tree from ${sql.table('profile')} where id = ${id}::bigint`.execute(db)
  if (row === undefined) return undefined
  return { id: String(row.id), endpointId: row.endpoint_id, timeRequested: row.time_requested, durationMs: row.duration_ms, samples: row.tree.samples, tree: row.tree }
}

/**
 * FMD's grouped profiler: the latest `n` call trees of an endpoint merged by call path, with per
 * path hits, total, mean and standard deviation of the time per request, and self time.
 */
export async function groupedProfile (db: Kysely<Database>, endpointId: number, n: number): Promise<{ requests: number, nodes: GroupedNode[] }> {
  const { rows } = await sql<{ tree: CallTree }>`select tree from ${sql.table('profile')}
    where endpoint_id = ${endpointId} order by time_requested desc, id desc limit ${n}`.execute(db)
  interface Acc { frame: Frame, parentKey: string | null, depth: number, hits: number, sum: number, sumSq: number, self: number }
  const byPath = new Map<string, Acc>()
  for (const { tree } of rows) {
    const ms = 1 / 1000
    const keys: string[] = []
    for (const [f, parent, self, total] of tree.nodes) {
      const frame = tree.frames[f]!
      const parentKey = parent < 0 ? null : keys[parent]!
      const key = `${parentKey ?? ''}>${frame.functionName}@${frame.url}:${frame.line}`
      keys.push(key)
      let acc = byPath.get(key)
      if (acc === undefined) {
        acc = { frame, parentKey, depth: parentKey === null ? 0 : byPath.get(parentKey)!.depth + 1, hits: 0, sum: 0, sumSq: 0, self: 0 }
        byPath.set(key, acc)
      }
      acc.hits++
      acc.sum += total * ms
      acc.sumSq += (total * ms) ** 2
      acc.self += self * ms
    }
  }
  // parents first, siblings by time
  const children = new Map<string | null, string[]>()
  for (const [key, acc] of byPath) children.set(acc.parentKey, [...(children.get(acc.parentKey) ?? []), key])
  const nodes: GroupedNode[] = []
  const emit = (key: string, parent: number): void => {
    const acc = byPath.get(key)!
    const mean = acc.sum / acc.hits
    const index = nodes.length
    nodes.push({
      ...acc.frame,
      parent,
      depth: acc.depth,
      hits: acc.hits,
      totalMs: acc.sum,
      meanMs: mean,
      stdDevMs: Math.sqrt(Math.max(0, acc.sumSq / acc.hits - mean * mean)),
      selfMs: acc.self
    })
    for (const child of (children.get(key) ?? []).sort((a, b) => byPath.get(b)!.sum - byPath.get(a)!.sum)) emit(child, index)
  }
  for (const top of (children.get(null) ?? []).sort((a, b) => byPath.get(b)!.sum - byPath.get(a)!.sum)) emit(top, -1)
  return { requests: rows.length, nodes }
}
