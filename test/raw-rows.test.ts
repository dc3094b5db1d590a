// The raw requests as the writer stores them: on a PostgreSQL server with binary COPY, on PGlite with an
// insert from arrays (whose literals have their own escapes). Both must store every value exactly as
// recorded, hostile strings and sub-millisecond times included, and a unit the server rejects must
// leave nothing behind and the connection usable.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import { REQUEST_ID_BLOCK, endpointOrder, requestCopyData, writeUnit, type WriteUnit } from '../lib/writer/store.js'
import { DIALECTS, openWriterStore } from './helpers.js'

const HOSTILE = ['tab\there', 'line\nbreak', 'carriage\rreturn', 'back\\slash', '\\N', 'NULL', '"quoted"', '{braces,comma}',
  '<script>alert(1)</script>', 'ünïcødé 🚀', 'Zoë: ASCII first, then not', "'; drop table x; --", '\\\\t', ' spaced ', '']

t.test('binary COPY: times to the µs as to_timestamp(ms / 1000.0) rounds them, before 2000 too; a status no smallint holds is bad data', async (t) => {
  /** The one row's time_requested, µs since 1970, read back from the binary format (header 19 bytes, field count 2, id 12, endpoint id 8, length 4). */
  const timeOf = (timeMs: number): number => {
    const data = requestCopyData({ id: 'x', endpointId: [1], timeMs: [timeMs], durationMs: [1], statusCode: [200], seq: [null], group: [null], ip: ['::1'], attempts: 0 }, '131072', 1, 1)
    t.equal(data.subarray(0, 11).toString('latin1'), 'PGCOPY\n\xff\r\n\0')
    t.equal(data.readInt16BE(data.length - 2), -1, 'the trailer')
    return data.readInt32BE(45) * 2 ** 32 + data.readUInt32BE(49) + Date.UTC(2000, 0, 1) * 1000
  }
  const at = Date.UTC(2026, 10, 30, 17, 0, 0, 123)
  t.equal(timeOf(at + 0.4564), at * 1000 + 456)
  t.equal(timeOf(at + 0.9996), at * 1000 + 1000, 'a carry into the next ms')
  t.equal(timeOf(Date.UTC(1999, 11, 31, 23, 59, 59, 500) + 0.25), Date.UTC(1999, 11, 31, 23, 59, 59, 500) * 1000 + 250, 'before PostgreSQL\'s epoch (a negative count)')
  t.equal(timeOf(Date.UTC(1969, 11, 31, 23, 59, 59, 500)), Date.UTC(1969, 11, 31, 23, 59, 59, 500) * 1000, 'before the Unix epoch')
  t.throws(() => requestCopyData({ id: 'x', endpointId: [1], timeMs: [at], durationMs: [1], statusCode: [70_000], seq: [1], group: [null], ip: [null], attempts: 0 }, '0', 1, 1),
    { code: '22003', message: /status_code 70000 is out of range/ }, 'SQLSTATE 22003, as the server would say: the writer drops it as bad data instead of retrying')
})

t.test('binary COPY: each row\'s id is the block\'s first plus its place, exactly past 2^53; a block too small or misaligned is refused', async (t) => {
  const n = 3
  const unit: WriteUnit = { id: 'x', endpointId: [1, 1, 1], timeMs: [1e12, 1e12, 1e12], durationMs: [1, 1, 1], statusCode: [200, 200, 200], seq: [1, 2, 3], group: [null, null, null], ip: [null, null, null], attempts: 0 }
  /** The rows' ids read back: every row has the same length here (no strings). */
  const idsOf = (data: Buffer): bigint[] => {
    const rowBytes = (data.length - 19 - 2) / n
    return Array.from({ length: n }, (_, i) => data.readBigInt64BE(19 + i * rowBytes + 2 + 4))
  }
  const big = 2n ** 60n + 5n * BigInt(REQUEST_ID_BLOCK)
  t.same(idsOf(requestCopyData(unit, String(big), 1, 1)), [big, big + 1n, big + 2n], 'past 2^53, where a Number would round')
  t.same(idsOf(requestCopyData(unit, String(2 ** 40), 1, 1)), [2n ** 40n, 2n ** 40n + 1n, 2n ** 40n + 2n], 'the first block migration 0020 hands out')
  const last = 2n ** 63n - BigInt(REQUEST_ID_BLOCK)
  t.same(idsOf(requestCopyData(unit, String(last), 1, 1)), [last, last + 1n, last + 2n], 'the last block of a bigint')
  const straddling = 2n ** 40n + 2n ** 32n - 2n
  t.same(idsOf(requestCopyData(unit, String(straddling), 1, 1)), [straddling, straddling + 1n, straddling + 2n], 'a block not aligned to its size carries into the upper 32 bits')
  t.throws(() => requestCopyData(unit, String(2n ** 63n - 2n), 1, 1), /do not fit a bigint/)
  t.throws(() => requestCopyData(unit, '-1', 1, 1), /do not fit a bigint/)
  const tooMany = Array.from({ length: REQUEST_ID_BLOCK + 1 }, () => 1)
  t.throws(() => requestCopyData({ ...unit, endpointId: tooMany }, '0', 1, 1), /more than a block/)
})

t.test('endpointOrder: rows grouped by endpoint, endpoints ascending, arrival order within one', async (t) => {
  t.equal(endpointOrder([]), undefined)
  t.equal(endpointOrder([4, 4, 5, 9]), undefined, 'already in order: nothing to reorder')
  t.same([...endpointOrder([3, 1, 2, 1, 3, 1])!], [1, 3, 5, 2, 0, 4])
  t.same([...endpointOrder([65_542, 7, 65_542])!], [1, 0, 2], 'ids 65,535 apart')
  t.equal(endpointOrder([2 ** 31 - 1, 7, 2 ** 31 - 1]), undefined, 'ids spread wider: left in arrival order')
  const endpointIds = Array.from({ length: 5000 }, (_, i) => (i * 7919) % 300)
  const order = endpointOrder(endpointIds)!
  t.same([...order].sort((a, b) => a - b), endpointIds.map((_, i) => i), 'every row once')
  t.ok([...order].every((row, j) => j === 0 || endpointIds[order[j - 1]!]! < endpointIds[row]! || (endpointIds[order[j - 1]!] === endpointIds[row] && order[j - 1]! < row)), 'sorted and stable')

  // COPY writes the rows in that order, their ids consecutive in it
  const unit: WriteUnit = { id: 'x', endpointId: [3, 1, 2, 1], timeMs: [1e12, 1e12, 1e12, 1e12], durationMs: [1, 1, 1, 1], statusCode: [200, 200, 200, 200], seq: [10, 11, 12, 13], group: [null, null, null, null], ip: [null, null, null, null], attempts: 0 }
  const data = requestCopyData(unit, '131072', 1, 1)
  const rowBytes = (data.length - 19 - 2) / 4
  const field = (row: number, offset: number): bigint => data.readBigInt64BE(19 + row * rowBytes + offset)
  t.same([0, 1, 2, 3].map((r) => data.readInt32BE(19 + r * rowBytes + 18)), [1, 1, 2, 3], 'endpoints grouped')
  t.same([0, 1, 2, 3].map((r) => field(r, 56)), [11n, 13n, 12n, 10n], 'each row whole (its seq with its endpoint)')
  t.same([0, 1, 2, 3].map((r) => field(r, 6)), [131072n, 131073n, 131074n, 131075n], 'ids in the written order')
})

t.test('binary COPY into a spare buffer: the same bytes as into new memory, in its memory when it is big enough', async (t) => {
  const unit: WriteUnit = {
    id: 'x', endpointId: [1, 2, 3], timeMs: [1e12, 1e12 + 0.5, 1e12 + 1], durationMs: [0.25, 12, 3e3], statusCode: [200, 404, 499],
    seq: [1, null, 2 ** 40], group: [null, 'Zoë', HOSTILE.join('|')], ip: ['127.0.0.1', null, '::ffff:10.0.0.1'], attempts: 0
  }
  const fresh = requestCopyData(unit, '262144', 7, 9)
  const spare = Buffer.alloc(65_536, 0xab)
  const reused = requestCopyData(unit, '262144', 7, 9, spare)
  t.same(reused, fresh, 'garbage left in the spare buffer does not show')
  t.equal(reused.buffer, spare.buffer, 'written in the spare buffer')
  const small = Buffer.alloc(16, 0xab)
  const grown = requestCopyData(unit, '262144', 7, 9, small)
  t.same(grown, fresh)
  t.not(grown.buffer, small.buffer, 'a spare buffer too small is left alone')
  t.same(small, Buffer.alloc(16, 0xab))
  t.equal(fresh.byteOffset, 0, 'never a slice of Node\'s shared pool, whose other bytes are not ours to give back')
})

for (const dialect of DIALECTS) {
  t.test(`${dialect}: raw rows are stored exactly as recorded`, async (t) => {
    const { opened, db, versionId, instanceId, endpointIds: [first, second] } = await openWriterStore(t, dialect, ['/x', '/y'])
    t.equal(opened.copyTransaction !== undefined, dialect === 'postgres', 'COPY on a server only')
    const endpoint = { id: first! }
    const other = { id: second! }
    const now = Date.now()

    const n = HOSTILE.length + 2
    const unit: WriteUnit = {
      id: randomUUID(),
      // the two endpoints interleaved, the higher id first: COPY writes them grouped
      endpointId: Array.from({ length: n }, (_, i) => i % 3 === 0 ? Math.max(endpoint!.id, other!.id) : Math.min(endpoint!.id, other!.id)),
      timeMs: Array.from({ length: n }, (_, i) => now - 1000 + i * 10.123456),
      durationMs: Array.from({ length: n }, (_, i) => i === 0 ? 0.1 + 0.2 : i * 1.5e-3 + i),
      statusCode: Array.from({ length: n }, (_, i) => [200, 404, 499, 500][i % 4]!),
      seq: Array.from({ length: n }, (_, i) => 2 ** 40 + i),
      group: [...HOSTILE, null, 'plain'],
      ip: [...HOSTILE.slice().reverse(), '::ffff:10.0.0.1', null],
      attempts: 0
    }
    t.equal(await writeUnit(db, unit, versionId, instanceId, opened.copyTransaction), true)
    t.equal(await writeUnit(db, unit, versionId, instanceId, opened.copyTransaction), false, 'a retry of the same unit writes nothing')

    const { rows } = await sql<{ id: string, endpoint_id: number, us: string, duration_ms: number, status_code: number, seq: string, group_by: string | null, ip: string | null, version_id: number, instance_id: number }>`
      select id::text as id, endpoint_id, (extract(epoch from time_requested) * 1000000)::bigint::text as us, duration_ms, status_code, seq::text as seq, group_by, ip, version_id, instance_id
      from ${sql.table('request')} order by seq`.execute(db)
    t.equal(rows.length, n, 'every row once')
    const { rows: [block] } = await sql<{ first: string }>`select first_request_id::text as first from ${sql.table('batch')} where id = ${unit.id}`.execute(db)
    const ids = rows.map((r) => BigInt(r.id)).sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
    t.same(ids, rows.map((_, i) => BigInt(block!.first) + BigInt(i)), 'ids: the batch\'s block, each once')
    t.same(rows.map((r) => r.endpoint_id), unit.endpointId, 'each row with its endpoint')
    if (dialect === 'postgres') {
      const byId = [...rows].sort((a, b) => BigInt(a.id) < BigInt(b.id) ? -1 : 1)
      t.same(byId.map((r) => r.endpoint_id), [...unit.endpointId].sort((a, b) => a - b), 'COPY wrote each endpoint\'s rows together, endpoints ascending')
      t.same(byId.filter((r) => r.endpoint_id === unit.endpointId[0]).map((r) => r.seq), unit.seq.filter((_, i) => unit.endpointId[i] === unit.endpointId[0]).map(String),
        'and one endpoint\'s rows in arrival order')
    }
    t.ok(BigInt(block!.first) >= 2n ** 40n && BigInt(block!.first) % BigInt(REQUEST_ID_BLOCK) === 0n, `a block above the identity's ids, aligned (${block!.first})`)
    t.same(rows.map((r) => r.group_by), unit.group, 'group-by values byte for byte')
    t.same(rows.map((r) => r.ip), unit.ip, 'IPs byte for byte')
    t.same(rows.map((r) => r.duration_ms), unit.durationMs, 'durations exactly (0.1 + 0.2 included)')
    t.same(rows.map((r) => r.status_code), unit.statusCode)
    t.same(rows.map((r) => r.seq), unit.seq.map(String), 'sequence numbers past 2^32')
    // to the µs; the insert from arrays divides in float8 (to_timestamp(ms / 1000.0)), which can land 1 µs off
    const offByUs = rows.map((r, i) => Math.abs(Number(r.us) - Math.round(unit.timeMs[i]! * 1000)))
    t.ok(offByUs.every((d) => d <= (opened.copyTransaction === undefined ? 1 : 0)), `times to the µs (${offByUs.join(',')})`)
    t.ok(rows.every((r) => r.version_id === versionId && r.instance_id === instanceId))
    const { rows: [hour] } = await sql<{ hits: string }>`select sum(hits)::text as hits from ${sql.table('endpoint_hour')}`.execute(db)
    t.equal(hour!.hits, String(n), 'the rollups counted the unit once')

    // a unit the server rejects in the middle of its rows (the last one's day has no partition) leaves nothing:
    // no claimed id, no rows, no rollups
    const bad: WriteUnit = { ...unit, id: randomUUID(), timeMs: unit.timeMs.map((ms, i) => i === n - 1 ? Date.UTC(2100, 0, 1) : ms), seq: unit.seq.map((s) => (s ?? 0) + n) }
    await t.rejects(writeUnit(db, bad, versionId, instanceId, opened.copyTransaction), /no partition of relation/)
    const { rows: [after] } = await sql<{ requests: string, batches: string, hits: string }>`select
      (select count(*) from ${sql.table('request')})::text as requests, (select count(*) from ${sql.table('batch')})::text as batches,
      (select sum(hits) from ${sql.table('endpoint_hour')})::text as hits`.execute(db)
    t.same(after, { requests: String(n), batches: '1', hits: String(n) }, 'the failed unit rolled back entirely')
    // and the connection it used works: the same unit, mended, goes in
    t.equal(await writeUnit(db, { ...bad, timeMs: unit.timeMs }, versionId, instanceId, opened.copyTransaction), true)
    const { rows: [last] } = await sql<{ requests: string, ids: string }>`select count(*)::text as requests, count(distinct id)::text as ids from ${sql.table('request')}`.execute(db)
    t.same(last, { requests: String(2 * n), ids: String(2 * n) }, 'two units, no id twice')
  })
}
