/**
 * A batch's share of the rollups, added up in the writer's thread: a batch of thousands of requests
 * usually falls in one hour, so it becomes a few rows per endpoint and grain, and the database only
 * merges those into the stored ones (it no longer groups every raw row of the batch itself).
 */
import { GRAINS, SketchBuilder, bucketOf, periodStart, type Grain, type Sketch } from '../db/rollup.js'
import { HOUR_MS } from '../time.js'

/** Rows of one grain ready for one set-based upsert: one array per column. */
export interface PeriodRows {
  endpointId: number[]
  /** Start of the UTC period in ms. */
  periodMs: number[]
  hits: number[]
  clientErrors: number[]
  serverErrors: number[]
  durationSum: number[]
  sketch: Sketch[]
}

/** `request_hour` rows: requests per endpoint, hour and status code (the version is the writer's own). */
export interface StatusRows {
  endpointId: number[]
  hourMs: number[]
  statusCode: number[]
  hits: number[]
  durationSum: number[]
}

export interface UnitRollups {
  status: StatusRows
  /**
   * Per grain: hour, day, month (`endpoint_*`); the hourly rows also feed `version_hour` and `version_total_hour`, the daily ones `version_day`.
   * Days and months hold only the rows of folded hours (see `folded_hour`): the others join theirs when they are folded.
   */
  periods: Record<Grain, PeriodRows>
  /** The UTC hours (start, ms) of the batch's rows, ascending. */
  hours: number[]
}

interface PeriodAgg {
  endpointId: number
  periodMs: number
  hits: number
  clientErrors: number
  serverErrors: number
  durationSum: number
  sketch: SketchBuilder
}

interface StatusAgg { hits: number, durationSum: number }

/** An hourly row also counts its requests by status code (a number key: no string is built per request). */
interface HourAgg extends PeriodAgg {
  statuses: Map<number, StatusAgg>
  /** The status code of the row added last, and its counts: the next row most often has the same. */
  lastStatus: number
  lastCounted: StatusAgg | undefined
}

/** Up to 2^21 hours since 1970 (year 2209) beside the endpoint id, in one exact number. */
const KEY_SPAN = 2 ** 21

/**
 * Sums the rows of a batch (columns as the unit holds them) into rollup rows, sorted by key so concurrent
 * writers lock in one order. Only the hours `isFolded` tells are in their days and months add to those.
 */
export function aggregateRollups (endpointId: readonly number[], timeMs: readonly number[], durationMs: readonly number[], statusCode: readonly number[],
  isFolded: (hourMs: number) => boolean = () => true): UnitRollups {
  const hours = new Map<number, HourAgg>()
  // the row before's: a busy endpoint's requests follow each other in a batch, mostly in one hour, so
  // most rows skip the Map (whose number keys above 2^31 are hashed as doubles)
  let last: HourAgg | undefined
  for (let i = 0; i < endpointId.length; i++) {
    const endpoint = endpointId[i]!
    const hourMs = Math.floor(timeMs[i]! / HOUR_MS) * HOUR_MS
    let agg = last !== undefined && last.endpointId === endpoint && last.periodMs === hourMs ? last : undefined
    if (agg === undefined) {
      const key = endpoint * KEY_SPAN + hourMs / HOUR_MS
      agg = hours.get(key)
      if (agg === undefined) {
        agg = { endpointId: endpoint, periodMs: hourMs, hits: 0, clientErrors: 0, serverErrors: 0, durationSum: 0, sketch: new SketchBuilder(), statuses: new Map(), lastStatus: 0, lastCounted: undefined }
        hours.set(key, agg)
      }
      last = agg
    }
    const status = statusCode[i]!
    const duration = durationMs[i]!
    agg.hits++
    if (status >= 500) agg.serverErrors++
    else if (status >= 400) agg.clientErrors++
    agg.durationSum += duration
    agg.sketch.add(bucketOf(duration))
    let counted = agg.lastStatus === status ? agg.lastCounted : undefined
    if (counted === undefined) {
      counted = agg.statuses.get(status)
      if (counted === undefined) {
        counted = { hits: 0, durationSum: 0 }
        agg.statuses.set(status, counted)
      }
      agg.lastStatus = status
      agg.lastCounted = counted
    }
    counted.hits++
    counted.durationSum += duration
  }
  const byKeyOrder = (a: PeriodAgg, b: PeriodAgg): number => a.endpointId - b.endpointId || a.periodMs - b.periodMs
  const hourRows = [...hours.values()].sort(byKeyOrder)
  const status: StatusRows = { endpointId: [], hourMs: [], statusCode: [], hits: [], durationSum: [] }
  for (const agg of hourRows) {
    for (const [code, counted] of [...agg.statuses].sort(([a], [b]) => a - b)) {
      status.endpointId.push(agg.endpointId)
      status.hourMs.push(agg.periodMs)
      status.statusCode.push(code)
      status.hits.push(counted.hits)
      status.durationSum.push(counted.durationSum)
    }
  }
  const periods = {} as Record<Grain, PeriodRows>
  let finer: PeriodAgg[] = hourRows
  for (const { grain } of GRAINS) {
    let aggs = finer
    if (grain === 'day') finer = finer.filter((row) => isFolded(row.periodMs))
    if (grain !== 'hour') {
      // coarser grains add up the finer rows: a batch rarely spans more than one hour
      const byKey = new Map<string, PeriodAgg>()
      for (const row of finer) {
        const periodMs = periodStart(grain, row.periodMs)
        const key = `${row.endpointId}:${periodMs}`
        const agg = byKey.get(key)
        if (agg === undefined) {
          const sketch = new SketchBuilder()
          sketch.addAll(row.sketch)
          byKey.set(key, { ...row, periodMs, sketch })
        } else {
          agg.hits += row.hits
          agg.clientErrors += row.clientErrors
          agg.serverErrors += row.serverErrors
          agg.durationSum += row.durationSum
          agg.sketch.addAll(row.sketch)
        }
      }
      aggs = [...byKey.values()]
    }
    aggs.sort(byKeyOrder)
    periods[grain] = {
      endpointId: aggs.map((a) => a.endpointId),
      periodMs: aggs.map((a) => a.periodMs),
      hits: aggs.map((a) => a.hits),
      clientErrors: aggs.map((a) => a.clientErrors),
      serverErrors: aggs.map((a) => a.serverErrors),
      durationSum: aggs.map((a) => a.durationSum),
      sketch: aggs.map((a) => a.sketch.toSketch())
    }
    finer = aggs
  }
  return { status, periods, hours: [...new Set(hourRows.map((row) => row.periodMs))].sort((a, b) => a - b) }
}
