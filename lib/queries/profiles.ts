import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { isPluginFrame, type CallTree, type Frame } from '../profiling/sampler.js'

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
  // absolute (file:///…/node_modules/x/…) or relative to the app's root (node_modules/x/…)
  return /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(frame.url)?.[1] ?? null
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

/** A grouped profile: the merged call paths of the latest profiled requests of an endpoint. */
export interface GroupedProfile {
  /** Call trees merged. */
  requests: number
  nodes: GroupedNode[]
  /**
   * Merged trees in which other requests of the endpoint ran at the same time: their samples in the
   * shared handler could not be told apart, so their times may include a neighbour's.
   */
  sharedRequests: number
  /** True when the merge stopped at {@link MAX_MERGED_TREE_NODES} or the output at {@link MAX_GROUPED_NODES}. */
  truncated: boolean
}

/** Tree nodes merged per call at most: the work of one grouped profile is bounded whatever `n` asks. */
export const MAX_MERGED_TREE_NODES = 300_000
/** Rows returned at most (the heaviest paths, parents first). */
export const MAX_GROUPED_NODES = 2_000

interface PathAcc {
  frame: Frame
  library: string | null
  functions: Set<number>
  parent: number
  depth: number
  children: number[]
  hits: number
  sum: number
  sumSq: number
  self: number
  /** The time of this path in the tree being merged, and which tree that is. */
  requestTotal: number
  request: number
}

/**
 * FMD's grouped profiler: call trees merged by call path, with per path hits, total, mean and standard
 * deviation of the time per request, and self time. With `foldLibraries` a run of calls inside one
 * library becomes one node, so the app's own functions are not buried twenty levels under Fastify's
 * request lifecycle. Linear in the tree nodes read: paths and frames are interned as integers, each
 * tree node is visited once; the plugin's own frames (in trees stored before they were left out) are skipped.
 */
export function mergeCallTrees (trees: Iterable<CallTree>, foldLibraries = true): GroupedProfile {
  const ms = 1 / 1000
  const paths: PathAcc[] = []
  const pathIds = new Map<string, number>()
  const frameIds = new Map<string, number>()
  const tops: number[] = []
  let requests = 0
  let sharedRequests = 0
  let merged = 0
  let truncated = false
  for (const tree of trees) {
    if (merged + tree.nodes.length > MAX_MERGED_TREE_NODES) { truncated = true; break }
    merged += tree.nodes.length
    const request = requests++
    if ((tree.concurrent ?? 0) > 0) sharedRequests++
    // this tree's frames as global ids, and whether each is a library's
    const frameIdOf = tree.frames.map((frame) => {
      const key = `${frame.functionName}@${frame.url}:${frame.line}`
      let id = frameIds.get(key)
      if (id === undefined) { id = frameIds.size; frameIds.set(key, id) }
      return id
    })
    const libraryOfFrame = tree.frames.map((frame) => foldLibraries ? libraryOf(frame) : null)
    const pluginFrame = tree.frames.map((frame) => isPluginFrame(frame.url))
    const touched: number[] = []
    /** Path of each tree node (-1: a hidden node at the top). */
    const pathOfNode = new Int32Array(tree.nodes.length)
    for (let n = 0; n < tree.nodes.length; n++) {
      const [f, parentNode, self, total] = tree.nodes[n]!
      const parent = parentNode < 0 ? -1 : pathOfNode[parentNode]!
      const caller = parent < 0 ? undefined : paths[parent]!
      if (pluginFrame[f]) {
        pathOfNode[n] = parent
        if (caller !== undefined) caller.self += self * ms
        continue
      }
      const library = libraryOfFrame[f]!
      if (library !== null && caller?.library === library) {
        // still inside the caller's library: part of its node (its time is already in the caller's total)
        pathOfNode[n] = parent
        caller.functions.add(frameIdOf[f]!)
        caller.self += self * ms
        continue
      }
      const key = library === null ? `${parent}|${frameIdOf[f]!}` : `${parent}|[${library}]`
      let path = pathIds.get(key)
      if (path === undefined) {
        path = paths.length
        const frame = tree.frames[f]!
        paths.push({
          frame: library === null ? { functionName: frame.functionName, url: frame.url, line: frame.line } : { functionName: library, url: '', line: 0 },
          library,
          functions: new Set(),
          parent,
          depth: caller === undefined ? 0 : caller.depth + 1,
          children: [],
          hits: 0,
          sum: 0,
          sumSq: 0,
          self: 0,
          requestTotal: 0,
          request: -1
        })
        pathIds.set(key, path)
        if (caller === undefined) tops.push(path); else caller.children.push(path)
      }
      pathOfNode[n] = path
      const acc = paths[path]!
      acc.functions.add(frameIdOf[f]!)
      acc.self += self * ms
      // a path's time in this request: a folded library run may be entered from several of its caller's calls
      if (acc.request !== request) { acc.request = request; acc.requestTotal = 0; touched.push(path) }
      acc.requestTotal += total * ms
    }
    for (const path of touched) {
      const acc = paths[path]!
      acc.hits++
      acc.sum += acc.requestTotal
      acc.sumSq += acc.requestTotal ** 2
    }
  }
  // parents first, siblings by time (heaviest first), iteratively: a deep recursion in the app is a deep tree
  const bySum = (a: number, b: number): number => paths[b]!.sum - paths[a]!.sum
  const nodes: GroupedNode[] = []
  const stack: Array<[path: number, parentRow: number]> = tops.sort(bySum).reverse().map((path) => [path, -1])
  while (stack.length > 0) {
    if (nodes.length >= MAX_GROUPED_NODES) { truncated = true; break }
    const [path, parentRow] = stack.pop()!
    const acc = paths[path]!
    const mean = acc.sum / acc.hits
    const row = nodes.length
    nodes.push({
      ...acc.frame,
      parent: parentRow,
      depth: acc.depth,
      ...(acc.library === null ? {} : { library: acc.library }),
      functions: acc.functions.size,
      hits: acc.hits,
      totalMs: acc.sum,
      meanMs: mean,
      stdDevMs: Math.sqrt(Math.max(0, acc.sumSq / acc.hits - mean * mean)),
      selfMs: acc.self
    })
    const children = acc.children.sort(bySum)
    for (let c = children.length - 1; c >= 0; c--) stack.push([children[c]!, row])
  }
  return { requests, nodes, sharedRequests, truncated }
}

/**
 * The grouped profile of an endpoint's latest `n` call trees (see {@link mergeCallTrees}). Runs on the
 * writer's thread, which owns the data: the trees never cross to the request thread, only the result.
 */
export async function groupedProfile (db: Kysely<Database>, endpointId: number, n: number, foldLibraries = true): Promise<GroupedProfile> {
  const { rows } = await sql<{ tree: CallTree }>`select tree from ${sql.table('profile')}
    where endpoint_id = ${endpointId} order by time_requested desc, id desc limit ${n}`.execute(db)
  return mergeCallTrees(rows.map((row) => row.tree), foldLibraries)
}
