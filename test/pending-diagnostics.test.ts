// What levels 2 and 3 found, waiting in a writer's thread (lib/writer/diagnostics.ts): bounded, taken in
// parts a batch can carry, put back in front after a failure, and counted as found when dropped.
import t from 'tap'
import { PendingDiagnostics } from '../lib/writer/diagnostics.js'
import type { OutlierRecord, ProfileRecord } from '../lib/protocol.js'

const HOUR = 3_600_000
const outlier = (endpointIndex: number, timeMs: number, padding = ''): OutlierRecord =>
  ({ endpointIndex, timeMs, durationMs: 100, thresholdMs: 10, statusCode: 200, request: { padding }, phases: {}, process: {}, stacks: null })
const profile = (endpointIndex: number): ProfileRecord => ({ endpointIndex, timeMs: 1, durationMs: 5, tree: {} })

t.test('takes what known endpoints found, within a count and a size', async (t) => {
  const pending = new PendingDiagnostics()
  pending.add({ type: 'outliers', outliers: [outlier(0, HOUR), outlier(1, HOUR), outlier(0, 2 * HOUR, 'x'.repeat(100))], overflow: [[0, HOUR, 4], [1, HOUR, 2]], profiles: [profile(0), profile(1)], keepPerHour: 7 })
  t.equal(pending.keepPerHour, 7)
  const part = pending.take((index) => index === 0, { maxBytes: 150, sizeOf: (item) => JSON.stringify(item).length })
  t.same([part.outliers.map((o) => o.timeMs), part.overflow, part.profiles.length], [[HOUR], [[0, HOUR, 4]], 0],
    'endpoint 1 waits; the large outlier and the call tree do not fit beside the first outlier')
  t.notOk(pending.empty)
  const first = pending.take((index) => index === 0, { maxBytes: 10, sizeOf: (item) => JSON.stringify(item).length })
  t.equal(first.outliers.length, 1, 'an item larger than the size is still taken alone (the receiver refuses it, and it is counted)')
  t.same(pending.take(() => true, { maxItems: 1 }).profiles.length, 1, 'at most maxItems of each kind')
})

t.test('a part put back goes first; a part dropped stays counted as found', async (t) => {
  const pending = new PendingDiagnostics()
  pending.add({ type: 'outliers', outliers: [outlier(0, HOUR)], overflow: [], profiles: [], keepPerHour: 100 })
  const part = pending.take(() => true)
  pending.add({ type: 'outliers', outliers: [outlier(0, 2 * HOUR)], overflow: [], profiles: [], keepPerHour: 100 })
  pending.putBack(part)
  t.same(pending.take(() => true, { maxItems: 1 }).outliers.map((o) => o.timeMs), [HOUR], 'the older one first')
  const refused = pending.take(() => true)
  pending.drop(refused)
  const left = pending.take(() => true)
  t.same([left.outliers.length, left.overflow], [0, [[0, 2 * HOUR, 1]]], 'the dropped outlier is an overflow count of its hour')
  t.ok(pending.empty)
})

t.test('bounded: past 1,000 outliers the oldest become counts, past 2,000 call trees the oldest go', async (t) => {
  const pending = new PendingDiagnostics()
  pending.add({ type: 'outliers', outliers: Array.from({ length: 1_005 }, (_, i) => outlier(0, i)), overflow: [], profiles: Array.from({ length: 2_003 }, () => profile(0)), keepPerHour: 100 })
  const all = pending.take(() => true)
  t.same([all.outliers.length, all.outliers[0]!.timeMs, all.overflow, all.profiles.length], [1_000, 5, [[0, 0, 5]], 2_000])
})

t.test('a part names at most maxEndpoints endpoints: the rest wait for the next part', async (t) => {
  const pending = new PendingDiagnostics()
  // endpoints 0, 1, 2 in outliers; 3 only in a call tree; 4 only in an overflow count
  pending.add({ type: 'outliers', outliers: [outlier(0, HOUR), outlier(1, HOUR), outlier(0, 2 * HOUR), outlier(2, HOUR)], overflow: [[4, HOUR, 3], [1, HOUR, 2]], profiles: [profile(3), profile(1)], keepPerHour: 100 })
  const named = (part: ReturnType<PendingDiagnostics['take']>): number[] =>
    [...new Set([...part.outliers.map((o) => o.endpointIndex), ...part.profiles.map((p) => p.endpointIndex), ...part.overflow.map(([index]) => index)])].sort()
  const first = pending.take(() => true, { maxEndpoints: 2 })
  t.same(named(first), [0, 1], 'the first two endpoints met')
  t.same([first.outliers.length, first.profiles.length, first.overflow], [3, 1, [[1, HOUR, 2]]], 'with everything of theirs')
  const second = pending.take(() => true, { maxEndpoints: 2 })
  t.same(named(second), [2, 3])
  const third = pending.take(() => true, { maxEndpoints: 2 })
  t.same([named(third), third.overflow], [[4], [[4, HOUR, 3]]])
  t.ok(pending.empty, 'nothing lost on the way')
})
