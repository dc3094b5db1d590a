import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { coveringParts, periodStart, type GrainPart } from '../db/rollup.js'
import { MergedSketch, mergedSketches } from './distribution.js'
import { partRows } from './rollups.js'

/** Closed periods' sketches merged per endpoint, and the fingerprint of the rows they came from. */
interface ClosedPart {
  /** Per endpoint: its rows and hits in the part, which any change to them (a late batch, retention, a delete) alters. */
  fingerprint: string
  sketches: Map<number, MergedSketch>
}

/** The columns mergedSketches reads, keyed by endpoint. */
const SKETCH_COLUMNS = sql`endpoint_id as k, sketch_offset, sketch`

/** Parts kept per database handle: an overview's three windows need at most five, a time zone's a few more. */
const MAX_CACHED_PARTS = 16

/** Per database handle, so an app's cache goes with it when it closes. */
const cachedParts = new WeakMap<Kysely<Database>, Map<string, ClosedPart>>()

/**
 * Latency sketches per endpoint over the hours starting in [from, to), from the coarsest rollup rows
 * that cover them ({@link coveringParts}). Rows of periods that have ended (every month before the
 * current one, every day before today, every hour before this one) no longer change but through a late
 * batch, retention or a delete: those parts are merged once and kept, per database handle, for as long
 * as their fingerprint (rows and hits per endpoint, read on every call) holds. Each call then reads
 * the current periods' rows and the fingerprints only: at a year of history the overview's all time
 * was 13 month rows per endpoint (640K sketch elements at 300 endpoints) and its week 7 day rows.
 * Processes sharing a database stay right: each one's fingerprints see what any other changed.
 */
export async function windowSketches (db: Kysely<Database>, from: Date, to: Date, nowMs: number): Promise<Map<number, MergedSketch>> {
  const parts: Array<{ part: GrainPart, closed: boolean }> = []
  for (const part of coveringParts(from.getTime(), to.getTime(), nowMs)) {
    // the periods of an open part that have ended are closed; the current one is not
    const current = periodStart(part.grain, nowMs)
    const end = part.to ?? Infinity
    if (part.from < Math.min(end, current)) parts.push({ part: { ...part, to: Math.min(end, current) }, closed: true })
    if (end > current) parts.push({ part: { ...part, from: Math.max(part.from, current) }, closed: false })
  }
  // the current periods' rows are merged straight in; cached sketches stay as they are and are added to it
  const merged = new Map<number, MergedSketch>()
  await Promise.all(parts.map(async ({ part, closed }) => {
    if (!closed) {
      await mergedSketches<number>(db, partRows(part, SKETCH_COLUMNS), merged)
      return
    }
    for (const [endpoint, sketch] of (await closedPart(db, part)).sketches) {
      let into = merged.get(endpoint)
      if (into === undefined) merged.set(endpoint, into = new MergedSketch())
      into.addMerged(sketch)
    }
  }))
  return merged
}

async function closedPart (db: Kysely<Database>, part: GrainPart): Promise<ClosedPart> {
  let cache = cachedParts.get(db)
  if (cache === undefined) cachedParts.set(db, cache = new Map())
  const key = `${part.grain}:${part.from}:${part.to!}`
  const { rows } = await sql<{ e: number, n: string, hits: string }>`select k as e, count(*)::text as n, sum(hits)::text as hits
    from (${partRows(part, sql`endpoint_id as k, hits`)}) as r group by 1 order by 1`.execute(db)
  const fingerprint = rows.map((row) => `${row.e}:${row.n}:${row.hits}`).join(',')
  let cached = cache.get(key)
  if (cached === undefined || cached.fingerprint !== fingerprint) {
    // read after the fingerprint: a change in between is in the sketches and makes the next call read again
    cached = { fingerprint, sketches: await mergedSketches<number>(db, partRows(part, SKETCH_COLUMNS)) }
  }
  // most recently used last; the oldest goes past the bound
  cache.delete(key)
  cache.set(key, cached)
  if (cache.size > MAX_CACHED_PARTS) cache.delete(cache.keys().next().value!)
  return cached
}
