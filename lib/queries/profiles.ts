import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
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
  /**
   * Set when the node stands for a run of calls inside one library (a node_modules package, or `node` for
   * Node's internals): its name, and `functionName` is the same. Undefined for the app's own code.
   */
  library?: string
  /** Distinct functions the node stands for: 1, or more for a library's run of calls. */
  functions: number
  /** Requests whose tree has this path. */
  hits: number
  /** Time in this path and below, summed over those requests, and its mean and standard deviation per request, ms. */
  totalMs: number
  meanMs: number
  stdDevMs: number
  /** Time in this function (or library run) itself, summed, ms. */
  selfMs: number
}

/**
 * The library a frame belongs to when it is not the app's code: a node_modules package (scoped ones
 * whole), `node` for Node's internals and V8 builtins; null for the app's own files and for V8's
 * pseudo-frames such as `(garbage collector)`.
 */
export function libraryOf (frame: Frame): string | null {
  if (frame.url.startsWith('node:') || (frame.url === '' && !frame.functionName.startsWith('('))) return 'node'
  return /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(frame.url)?.[1] ?? null
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
 * path hits, total, mean and standard deviation of the time per request, and self time. With
 * `foldLibraries` (the default) a run of calls inside one library becomes one node, so the app's own
 * functions are not buried twenty levels under Fastify's request lifecycle.
 */
export async function groupedProfile (db: Kysely<Database>, endpointId: number, n: number, foldLibraries = true): Promise<{ requests: number, nodes: GroupedNode[] }> {
  const { rows } = await sql<{ tree: CallTree }>`select tree from ${sql.table('profile')}
    where endpoint_id = ${endpointId} order by time_requested desc, id desc limit ${n}`.execute(db)
  interface Acc { frame: Frame, library: string | null, functions: Set<string>, parentKey: string | null, depth: number, hits: number, sum: number, sumSq: number, self: number }
  const byPath = new Map<string, Acc>()
  const ms = 1 / 1000
  for (const { tree } of rows) {
    const keys: string[] = []
    // a path's time in this request: a folded library run may be entered from several of its caller's calls
    const totals = new Map<string, number>()
    for (const [f, parent, self, total] of tree.nodes) {
      const frame = tree.frames[f]!
      const parentKey = parent < 0 ? null : keys[parent]!
      const library = foldLibraries ? libraryOf(frame) : null
      const frameKey = `${frame.functionName}@${frame.url}:${frame.line}`
      const caller = parentKey === null ? undefined : byPath.get(parentKey)
      if (library !== null && caller?.library === library) {
        // still inside the caller's library: part of its node (its time is already in the caller's total)
        keys.push(parentKey!)
        caller.functions.add(frameKey)
        caller.self += self * ms
        continue
      }
      const key = `${parentKey ?? ''}>${library === null ? frameKey : `[${library}]`}`
      keys.push(key)
      let acc = byPath.get(key)
      if (acc === undefined) {
        const shown = library === null ? frame : { functionName: library, url: '', line: 0 }
        acc = { frame: shown, library, functions: new Set(), parentKey, depth: caller === undefined ? 0 : caller.depth + 1, hits: 0, sum: 0, sumSq: 0, self: 0 }
        byPath.set(key, acc)
      }
      acc.functions.add(frameKey)
      acc.self += self * ms
      totals.set(key, (totals.get(key) ?? 0) + total * ms)
    }
    for (const [key, totalMs] of totals) {
      const acc = byPath.get(key)!
      acc.hits++
      acc.sum += totalMs
      acc.sumSq += totalMs ** 2
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
      ...(acc.library === null ? {} : { library: acc.library }),
      functions: acc.functions.size,
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
