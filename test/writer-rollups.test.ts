// The writer's thread sums a batch into rollup rows (rollups.ts) and the windows are split into the
// coarsest rows that cover them (coveringParts): both unit-tested here, without a database.
import t from 'tap'
import { aggregateRollups } from '../lib/writer/rollups.js'
import { bucketOf, coveringParts, SketchBuilder } from '../lib/db/rollup.js'

const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000

t.test('a batch becomes one row per endpoint and period, with exact counts and sketches', async (t) => {
  const base = Date.UTC(2026, 0, 31, 23, 30) // crosses an hour, a day and a month boundary
  const endpointId = [1, 1, 2, 1, 1]
  const timeMs = [base, base + 1000, base, base + HOUR_MS, base + HOUR_MS]
  const durationMs = [10, 10.1, 5, 100, 0.0001]
  const statusCode = [200, 404, 500, 200, 503]
  const r = aggregateRollups(endpointId, timeMs, durationMs, statusCode)
  t.same(r.periods.hour.endpointId, [1, 1, 2])
  t.same(r.periods.hour.hits, [2, 2, 1])
  t.same(r.periods.hour.clientErrors, [1, 0, 0])
  t.same(r.periods.hour.serverErrors, [0, 1, 1])
  t.same(r.periods.day.periodMs, [Date.UTC(2026, 0, 31), Date.UTC(2026, 1, 1), Date.UTC(2026, 0, 31)])
  t.same(r.periods.month.periodMs, [Date.UTC(2026, 0, 1), Date.UTC(2026, 1, 1), Date.UTC(2026, 0, 1)])
  const first = r.periods.hour.sketch[0]!
  t.equal(first.counts.reduce((a, b) => a + b, 0), 2)
  t.equal(first.counts[bucketOf(10) - first.offset]! + first.counts[bucketOf(10.1) - first.offset]!, bucketOf(10) === bucketOf(10.1) ? 4 : 2)
  const second = r.periods.hour.sketch[1]!
  t.equal(second.offset, bucketOf(0.0001), 'durations below 1 µs share the lowest bucket')
  t.equal(second.counts.length, bucketOf(100) - bucketOf(0.0001) + 1, 'dense from the lowest bucket to the highest')
  t.same(r.status.statusCode, [200, 404, 200, 503, 500])
  t.same(r.status.hits, [1, 1, 1, 1, 1])
})

t.test('any batch sums to what grouping its rows one by one gives: runs of one endpoint, interleaved ones, hours and statuses mixed', async (t) => {
  let seed = 7
  const random = (): number => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31 }
  const base = Date.UTC(2026, 4, 3, 10, 50)
  const rows = { endpointId: [] as number[], timeMs: [] as number[], durationMs: [] as number[], statusCode: [] as number[] }
  for (let i = 0; i < 3_000; i++) {
    // runs of one endpoint and status, broken at random, across three hours; an id past 2^31 / 2^21 too
    const previous = rows.endpointId.length - 1
    const same = previous >= 0 && random() < 0.7
    rows.endpointId.push(same ? rows.endpointId[previous]! : [1, 2, 3, 40_000, 2 ** 20][Math.floor(random() * 5)]!)
    rows.timeMs.push(base + Math.floor(random() * 3 * HOUR_MS))
    rows.durationMs.push(random() < 0.05 ? 0.0001 : Math.exp(random() * 12 - 4))
    rows.statusCode.push(same && random() < 0.8 ? rows.statusCode[previous]! : [200, 201, 304, 404, 429, 500, 503][Math.floor(random() * 7)]!)
  }
  const r = aggregateRollups(rows.endpointId, rows.timeMs, rows.durationMs, rows.statusCode)

  const periods = new Map<string, { hits: number, client: number, server: number, sum: number, buckets: Map<number, number> }>()
  const statuses = new Map<string, { hits: number, sum: number }>()
  rows.endpointId.forEach((endpoint, i) => {
    const hour = Math.floor(rows.timeMs[i]! / HOUR_MS) * HOUR_MS
    const status = rows.statusCode[i]!
    const p = periods.get(`${endpoint}/${hour}`) ?? { hits: 0, client: 0, server: 0, sum: 0, buckets: new Map<number, number>() }
    p.hits++
    if (status >= 500) p.server++
    else if (status >= 400) p.client++
    p.sum += rows.durationMs[i]!
    const bucket = bucketOf(rows.durationMs[i]!)
    p.buckets.set(bucket, (p.buckets.get(bucket) ?? 0) + 1)
    periods.set(`${endpoint}/${hour}`, p)
    const s = statuses.get(`${endpoint}/${hour}/${status}`) ?? { hits: 0, sum: 0 }
    s.hits++
    s.sum += rows.durationMs[i]!
    statuses.set(`${endpoint}/${hour}/${status}`, s)
  })
  const hour = r.periods.hour
  t.equal(hour.endpointId.length, periods.size, 'one hourly row per endpoint and hour')
  hour.endpointId.forEach((endpoint, i) => {
    const expected = periods.get(`${endpoint}/${hour.periodMs[i]}`)!
    const sketch = hour.sketch[i]!
    const buckets = new Map(sketch.counts.map((count, at) => [sketch.offset + at, count] as const).filter(([, count]) => count > 0))
    t.same([hour.hits[i], hour.clientErrors[i], hour.serverErrors[i], buckets], [expected.hits, expected.client, expected.server, expected.buckets], `endpoint ${endpoint} at ${new Date(hour.periodMs[i]!).toISOString()}`)
    t.ok(Math.abs(hour.durationSum[i]! - expected.sum) < 1e-6 * expected.sum, 'its duration sum')
    t.ok(sketch.counts[0]! > 0 && sketch.counts.at(-1)! > 0, 'its sketch dense between its lowest and highest bucket')
  })
  t.equal(r.status.endpointId.length, statuses.size, 'one status row per endpoint, hour and status code')
  t.same(r.status.endpointId.map((endpoint, i) => [statuses.get(`${endpoint}/${r.status.hourMs[i]}/${r.status.statusCode[i]}`)?.hits]), r.status.hits.map((hits) => [hits]), 'each with its hits')
  t.same(r.periods.day.hits.reduce((a, b) => a + b, 0), 3_000, 'and every row in the daily ones')
})

t.test('sketches merge by adding counts', async (t) => {
  const a = new SketchBuilder()
  a.add(3); a.add(5, 2)
  const b = new SketchBuilder()
  b.add(1); b.addAll(a)
  t.same(b.toSketch(), { offset: 1, counts: [1, 0, 1, 0, 2] })
  t.same(new SketchBuilder().toSketch(), { offset: 0, counts: [] })
  const descending = new SketchBuilder()
  for (const bucket of [5, 5, 3, 1]) descending.add(bucket)
  t.same(descending.toSketch(), { offset: 1, counts: [1, 0, 1, 0, 2] }, 'buckets added in any order')
})

t.test('windows split into the coarsest rows that cover them exactly', async (t) => {
  const now = Date.UTC(2026, 2, 10, 12, 30)
  // closed window inside one day: hours only
  t.same(coveringParts(Date.UTC(2026, 2, 1, 3), Date.UTC(2026, 2, 1, 9), now), [{ grain: 'hour', from: Date.UTC(2026, 2, 1, 3), to: Date.UTC(2026, 2, 1, 9) }])
  // a window reaching now is open at the end: the current day's and month's rows are current
  t.same(coveringParts(Date.UTC(2026, 2, 9, 18, 30), now, now), [
    { grain: 'hour', from: Date.UTC(2026, 2, 9, 19), to: Date.UTC(2026, 2, 10) },
    { grain: 'day', from: Date.UTC(2026, 2, 10), to: undefined }
  ])
  // all time: months only
  t.same(coveringParts(0, now, now), [{ grain: 'month', from: 0, to: undefined }])
  // 40 days back: hours, days to the month, months from there
  t.same(coveringParts(now - 40 * DAY_MS, now, now), [
    { grain: 'hour', from: Date.UTC(2026, 0, 29, 13), to: Date.UTC(2026, 0, 30) },
    { grain: 'day', from: Date.UTC(2026, 0, 30), to: Date.UTC(2026, 1, 1) },
    { grain: 'month', from: Date.UTC(2026, 1, 1), to: undefined }
  ])
  // a closed window across months: hours, days, a month, days, hours
  t.same(coveringParts(Date.UTC(2025, 11, 30, 22), Date.UTC(2026, 1, 2, 5), now), [
    { grain: 'hour', from: Date.UTC(2025, 11, 30, 22), to: Date.UTC(2025, 11, 31) },
    { grain: 'day', from: Date.UTC(2025, 11, 31), to: Date.UTC(2026, 0, 1) },
    { grain: 'month', from: Date.UTC(2026, 0, 1), to: Date.UTC(2026, 1, 1) },
    { grain: 'day', from: Date.UTC(2026, 1, 1), to: Date.UTC(2026, 1, 2) },
    { grain: 'hour', from: Date.UTC(2026, 1, 2), to: Date.UTC(2026, 1, 2, 5) }
  ])
  t.same(coveringParts(now, now, now), [], 'an empty window')
})
