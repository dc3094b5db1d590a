import { hostname } from 'node:os'
import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '../db/database.js'
import type { OpenedDatabase } from '../db/dialect.js'
import type { EndpointKey, OutlierRecord, ProfileRecord } from '../protocol.js'
import { GRAINS, mergeRollupRowSql, mergeSketchSql, periodStart, versionCountsFromHoursSql } from '../db/rollup.js'
import { aggregateRollups, type PeriodRows, type UnitRollups } from './rollups.js'
import { timeSpan } from '../time.js'

/** Rows ready for one set-based insert: one array per column, endpoint ids already resolved. */
export interface WriteUnit {
  /** Stays the same across retries: the database remembers it, so a unit is written at most once. */
  id: string
  endpointId: number[]
  timeMs: number[]
  durationMs: number[]
  statusCode: number[]
  /** The request's number in the process that served it; null when a sender to the ingest route gave none. */
  seq: Array<number | null>
  group: Array<string | null>
  ip: Array<string | null>
  attempts: number
}

/**
 * A Postgres array literal, built in one pass. pg's own array serialisation visits every element
 * through its generic value path and costs several µs per row on the writer's thread.
 */
export function numberArrayLiteral (values: ReadonlyArray<number | null>): string {
  return `{${values.includes(null) ? values.map((value) => value ?? 'NULL').join(',') : values.join(',')}}`
}

const NEEDS_ESCAPE = /["\\]/g

export function textArrayLiteral (values: ReadonlyArray<string | null>): string {
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    if (i > 0) out += ','
    out += value === null || value === undefined ? 'NULL' : `"${value.replace(NEEDS_ESCAPE, '\\$&')}"`
  }
  return `${out}}`
}

/** `\u0000` as JSON.stringify writes NUL, where its backslash is not itself escaped (`\\u0000` is text). */
const JSON_NUL = /(?<!\\)((?:\\\\)*)\\u0000/g

/**
 * JSON for a `jsonb` parameter. PostgreSQL refuses NUL in jsonb strings (SQLSTATE 22P05), and evidence
 * holds whatever a request sent (`?q=%00`): as in the raw rows, it becomes U+FFFD, so one hostile request
 * cannot make the statement fail for every outlier written with it.
 */
export function jsonForJsonb (value: unknown): string {
  const json = JSON.stringify(value)
  return json.includes('\\u0000') ? json.replace(JSON_NUL, '$1\\ufffd') : json
}

/**
 * Registers a process (this one unless told) and its version; returns their ids. `runningSince` is when
 * the process started recording: a version is first seen then, not when the database first answered
 * (requests buffered while it was down are older than that).
 */
export async function registerInstance (db: Kysely<Database>, version: string, token: string, runningSince: Date, host = hostname(), pid = process.pid): Promise<{ versionId: number, instanceId: number }> {
  await sql`insert into ${sql.table('version')} as v (version, first_seen) values (${version}, ${runningSince})
    on conflict (version) do update set first_seen = least(v.first_seen, excluded.first_seen)`.execute(db)
  const { id: versionId } = await db.selectFrom('version').select('id').where('version', '=', version).executeTakeFirstOrThrow()
  // a restarted writer thread registers the same process again: same token, same row
  const { id: instanceId } = await db.insertInto('instance').values({ host, pid, token })
    .onConflict((oc) => oc.column('token').doUpdateSet({ pid }))
    .returning('id').executeTakeFirstOrThrow()
  return { versionId, instanceId }
}

/**
 * Creates the endpoints of a project the database does not know yet, at `defaultLevel`, and returns the
 * id and (possibly admin-changed) level of each, in the order given.
 */
export async function upsertEndpoints (db: Kysely<Database>, endpoints: EndpointKey[], defaultLevel: number, projectId: number):
Promise<Array<{ id: number, level: number }>> {
  if (endpoints.length === 0) return []
  const methods = endpoints.map((e) => e.method)
  const routes = endpoints.map((e) => e.route)
  // only the new ones reach the insert: `on conflict do nothing` alone would take an id from the sequence
  // for every known endpoint, on every call (a collector calls it for its senders' endpoints all day)
  await sql`insert into ${sql.table('endpoint')} (project_id, method, route, monitor_level)
    select ${projectId}::integer, m, r, ${defaultLevel} from unnest(${methods}::text[], ${routes}::text[]) as u(m, r)
    where not exists (select 1 from ${sql.table('endpoint')} e where e.project_id = ${projectId}::integer and e.method = u.m and e.route = u.r)
    on conflict (project_id, method, route) do nothing`.execute(db)
  const rows = await sql<{ id: number, method: string, route: string, monitor_level: number }>`
    select e.id, e.method, e.route, e.monitor_level from ${sql.table('endpoint')} e
    join unnest(${methods}::text[], ${routes}::text[]) as u(m, r) on e.method = u.m and e.route = u.r
    where e.project_id = ${projectId}::integer`.execute(db)
  const byKey = new Map(rows.rows.map((row) => [`${row.method} ${row.route}`, row]))
  return endpoints.map((e) => {
    const row = byKey.get(`${e.method} ${e.route}`)
    if (row === undefined) throw new Error(`endpoint ${e.method} ${e.route} vanished during registration`)
    return { id: row.id, level: row.monitor_level }
  })
}

/** Current level of every endpoint of a project, by database id. */
export async function readLevels (db: Kysely<Database>, projectId: number): Promise<Map<number, number>> {
  const rows = await db.selectFrom('endpoint').select(['id', 'monitor_level']).where('project_id', '=', projectId).execute()
  return new Map(rows.map((row) => [row.id, row.monitor_level]))
}

export async function setLevel (db: Kysely<Database>, endpointId: number, level: number): Promise<void> {
  await db.updateTable('endpoint').set({ monitor_level: level }).where('id', '=', endpointId).execute()
}

/** The raw table's columns in the order {@link requestCopyData} writes them. */
const REQUEST_COLUMNS = ['id', 'endpoint_id', 'time_requested', 'duration_ms', 'status_code', 'seq', 'group_by', 'ip', 'version_id', 'instance_id'] as const
/**
 * Request ids a written batch may take, from its `first_request_id` on (migration 0020 steps the batch
 * table's identity by this much): more than a unit ever holds (`maxBatchSize` ≤ 100,000).
 */
export const REQUEST_ID_BLOCK = 131_072

/** COPY's binary format: the signature, then 32-bit flags and header extension length, both 0. */
const COPY_BINARY_HEADER = Buffer.from('PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0', 'latin1')
/** A row's bytes besides its two strings: the field count, ten field lengths, and the eight numbers. */
const COPY_ROW_FIXED_BYTES = 2 + REQUEST_COLUMNS.length * 4 + 8 + 4 + 8 + 8 + 2 + 8 + 4 + 4
/** PostgreSQL's timestamps count µs from 2000-01-01 UTC. */
const PG_EPOCH_US = Date.UTC(2000, 0, 1) * 1000
const TWO_32 = 2 ** 32
const MAX_BIGINT = 2n ** 63n - 1n

/** A value the column cannot hold: SQLSTATE 22003 as the server would answer, so the writer treats it as bad data, not an outage. */
function outOfRange (column: string, value: number): Error {
  return Object.assign(new Error(`${column} ${value} is out of range for its column`), { code: '22003' })
}

/** Widest spread of endpoint ids in a unit that {@link endpointOrder} sorts (its counts take 4 bytes per id). */
const MAX_ENDPOINT_SPREAD = 65_536

/**
 * Row indexes grouped by endpoint, endpoints ascending and each one's rows in arrival order (a stable
 * counting sort), or undefined when the rows already are. Written in this order, the rows of one endpoint
 * go into the raw table's (endpoint, time) index next to each other, on pages just touched, instead of
 * one descent to a different leaf per row: at 300 endpoints PostgreSQL spent about 0.6 µs less per row
 * (5,000-row COPYs, 4.9-5.8 → 4.4-4.9 µs per row with the index; no difference without it).
 */
export function endpointOrder (endpointId: readonly number[]): Uint32Array | undefined {
  const n = endpointId.length
  let inOrder = true
  let min = Infinity
  let max = -Infinity
  for (let i = 0; i < n; i++) {
    const endpoint = endpointId[i]!
    if (i > 0 && endpoint < endpointId[i - 1]!) inOrder = false
    if (endpoint < min) min = endpoint
    if (endpoint > max) max = endpoint
  }
  // ids are a serial, so close together; ids spread wider are left in arrival order (this only saves work)
  if (inOrder || max - min >= MAX_ENDPOINT_SPREAD) return undefined
  // each endpoint's first slot, then its next one
  const next = new Uint32Array(max - min + 1)
  for (let i = 0; i < n; i++) next[endpointId[i]! - min]!++
  let at = 0
  for (let k = 0; k < next.length; k++) {
    const count = next[k]!
    next[k] = at
    at += count
  }
  const order = new Uint32Array(n)
  for (let row = 0; row < n; row++) order[next[endpointId[row]! - min]!++] = row
  return order
}

/**
 * A unit's rows in COPY's binary format, in {@link endpointOrder}, columns as {@link REQUEST_COLUMNS}, their ids `firstId` (a bigint
 * as text: the batch's block, see {@link REQUEST_ID_BLOCK}) and on. Binary, not text: the server
 * reads numbers and times as they are instead of parsing their digits (measured on PostgreSQL 15: about 1.2 µs
 * less of its CPU per row, and this thread builds the rows in less than half the time), and strings need no
 * escapes. Times are rounded to the µs as `to_timestamp(ms / 1000.0)` rounds them.
 *
 * Written into `into` when it is big enough (a buffer an earlier unit's finished write gave back, see
 * {@link writeUnit}), else into new memory of its own (never Node's shared pool, so its whole ArrayBuffer
 * can be given back). Numbers go through a DataView and ASCII strings byte by byte: both compile to plain
 * stores, where Buffer's write methods are calls (and `write` a call into C++ per string).
 */
export function requestCopyData (unit: WriteUnit, firstId: string, versionId: number, instanceId: number, into?: Buffer): Buffer {
  const n = unit.endpointId.length
  if (n > REQUEST_ID_BLOCK) throw new RangeError(`a unit of ${n} rows is more than a block of ${REQUEST_ID_BLOCK} request ids`)
  // exact past 2^53: the ids as two 32-bit halves, the upper one carried at most once within a block
  // (blocks are aligned to their size as migration 0020 hands them out, but a sequence started elsewhere,
  // e.g. by Citus on a worker, need not be)
  const first = BigInt(firstId)
  if (first < 0n || first + BigInt(n) - 1n > MAX_BIGINT) throw new RangeError(`request ids ${firstId} and on do not fit a bigint`)
  const idHigh = Number(first >> 32n)
  const idLow = Number(first & 0xffffffffn)
  let bound = COPY_BINARY_HEADER.length + 2 + n * COPY_ROW_FIXED_BYTES
  // a UTF-16 code unit is at most 3 bytes of UTF-8
  for (let i = 0; i < n; i++) bound += 3 * ((unit.group[i]?.length ?? 0) + (unit.ip[i]?.length ?? 0))
  const out = into !== undefined && into.length >= bound ? into : Buffer.allocUnsafeSlow(bound)
  const view = new DataView(out.buffer, out.byteOffset, out.length)
  let at = COPY_BINARY_HEADER.copy(out, 0)
  // each field: its length in bytes (-1 for null), then its value (DataView writes big-endian by default)
  const int16 = (value: number): void => { view.setInt32(at, 2); view.setInt16(at + 4, value); at += 6 }
  const int32 = (value: number): void => { view.setInt32(at, 4); view.setInt32(at + 4, value); at += 8 }
  const float8 = (value: number): void => { view.setInt32(at, 8); view.setFloat64(at + 4, value); at += 12 }
  const int64 = (value: number): void => {
    view.setInt32(at, 8)
    view.setInt32(at + 4, Math.floor(value / TWO_32))
    view.setUint32(at + 8, value >>> 0)
    at += 12
  }
  const nothing = (): void => { view.setInt32(at, -1); at += 4 }
  const text = (value: string): void => {
    const start = at + 4
    let length = 0
    for (; length < value.length; length++) {
      const code = value.charCodeAt(length)
      if (code >= 0x80) break
      out[start + length] = code
    }
    // not all ASCII: the whole string again, as UTF-8
    if (length < value.length) length = out.write(value, start, 'utf8')
    view.setInt32(at, length)
    at = start + length
  }
  const { endpointId, timeMs, durationMs, statusCode, seq: seqs, group: groups, ip: ips } = unit
  const order = endpointOrder(endpointId)
  for (let j = 0; j < n; j++) {
    const i = order === undefined ? j : order[j]!
    const status = statusCode[i]!
    if (!(status >= -32768 && status <= 32767)) throw outOfRange('status_code', status)
    const seq = seqs[i]
    const group = groups[i]
    const ip = ips[i]
    view.setInt16(at, REQUEST_COLUMNS.length)
    view.setInt32(at + 2, 8)
    const low = idLow + j
    if (low < TWO_32) {
      view.setInt32(at + 6, idHigh)
      view.setUint32(at + 10, low)
    } else {
      view.setInt32(at + 6, idHigh + 1)
      view.setUint32(at + 10, low - TWO_32)
    }
    at += 14
    int32(endpointId[i]!)
    int64(Math.round(timeMs[i]! * 1000) - PG_EPOCH_US)
    float8(durationMs[i]!)
    int16(status)
    if (seq === null || seq === undefined) nothing(); else int64(seq)
    if (group === null || group === undefined) nothing(); else text(group)
    if (ip === null || ip === undefined) nothing(); else text(ip)
    int32(versionId)
    int32(instanceId)
  }
  // the trailer: a field count of -1
  view.setInt16(at, -1)
  return out.subarray(0, at + 2)
}

/**
 * SQL: a unit's share of every rollup (summed in this thread, see rollups.ts), merged into the stored
 * rows in one statement. Rollup rows are upserted in key order (sorted in rollups.ts), so concurrent
 * writers lock them in the same order (no deadlock).
 */
function rollupUpsertSql ({ status, periods }: UnitRollups, versionId: number): RawBuilder<unknown> {
  const version = sql`${versionId}::integer`
  // the rows of one grain, as a derived table with columns e, p (period start, ms), n, c4, c5, d, o, s
  const periodRows = (rows: PeriodRows) => sql`unnest(${numberArrayLiteral(rows.endpointId)}::integer[], ${numberArrayLiteral(rows.periodMs)}::float8[],
    ${numberArrayLiteral(rows.hits)}::bigint[], ${numberArrayLiteral(rows.clientErrors)}::bigint[], ${numberArrayLiteral(rows.serverErrors)}::bigint[],
    ${numberArrayLiteral(rows.durationSum)}::float8[], ${numberArrayLiteral(rows.sketch.map((k) => k.offset))}::smallint[],
    ${textArrayLiteral(rows.sketch.map((k) => numberArrayLiteral(k.counts)))}::text[]) as u(e, p, n, c4, c5, d, o, s)`
  const mergeCounts = mergeRollupRowSql()
  // days and months only for rows of folded hours: usually none (a batch's hour is still open)
  const daysAndMonths = periods.day.endpointId.length === 0 ? sql`` : sql`, day_rows as (select * from ${periodRows(periods.day)}), version_days as (
      insert into ${sql.table('version_day')} as h (day, version_id, endpoint_id, hits)
      select (to_timestamp(p / 1000.0) at time zone 'UTC')::date, ${version}, e, n from day_rows
      on conflict (day, version_id, endpoint_id) do update set hits = h.hits + excluded.hits
    ), days as (
      insert into ${sql.table('endpoint_day')} as h (endpoint_id, day, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
      select e, (to_timestamp(p / 1000.0) at time zone 'UTC')::date, n, c4, c5, d, o, s::bigint[] from day_rows
      on conflict (endpoint_id, day) do update set ${mergeCounts}
    ), months as (
      insert into ${sql.table('endpoint_month')} as h (endpoint_id, month, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
      select e, (to_timestamp(p / 1000.0) at time zone 'UTC')::date, n, c4, c5, d, o, s::bigint[] from ${periodRows(periods.month)}
      on conflict (endpoint_id, month) do update set ${mergeCounts}
    )`
  return sql`with hour_rows as (select * from ${periodRows(periods.hour)}) ${daysAndMonths}, counts as (
      insert into ${sql.table('request_hour')} as h (endpoint_id, hour, version_id, status_code, hits, duration_sum)
      select e, to_timestamp(p / 1000.0), ${version}, s, n, d
      from unnest(${numberArrayLiteral(status.endpointId)}::integer[], ${numberArrayLiteral(status.hourMs)}::float8[],
        ${numberArrayLiteral(status.statusCode)}::smallint[], ${numberArrayLiteral(status.hits)}::bigint[], ${numberArrayLiteral(status.durationSum)}::float8[])
        as u(e, p, s, n, d)
      on conflict (endpoint_id, hour, version_id, status_code)
      do update set hits = h.hits + excluded.hits, duration_sum = h.duration_sum + excluded.duration_sum
    ), versions as (
      insert into ${sql.table('version_hour')} as h (endpoint_id, hour, version_id, hits, sketch_offset, sketch)
      select e, to_timestamp(p / 1000.0), ${version}, n, o, s::bigint[] from hour_rows
      on conflict (endpoint_id, hour, version_id) do update set hits = h.hits + excluded.hits, ${mergeSketchSql()}
    ), version_totals as (
      insert into ${sql.table('version_total_hour')} as h (hour, version_id, hits)
      select to_timestamp(p / 1000.0), ${version}, sum(n) from hour_rows group by p order by p
      on conflict (hour, version_id) do update set hits = h.hits + excluded.hits
    )
    insert into ${sql.table('endpoint_hour')} as h (endpoint_id, hour, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
    select e, to_timestamp(p / 1000.0), n, c4, c5, d, o, s::bigint[] from hour_rows
    on conflict (endpoint_id, hour) do update set ${mergeCounts}`
}

/**
 * SQL: which of the hours in [firstMs, lastMs] are folded, under a lock that a fold ({@link foldHour})
 * waits for: the batch's rows then go into the days and months of the hours listed here, and any other
 * hour's fold comes after this batch's commit and reads its rows. Batches share the lock.
 */
function foldedHoursSql (firstMs: number, lastMs: number): { lock: RawBuilder<unknown>, select: RawBuilder<{ hour: Date }> } {
  return {
    lock: sql`lock table ${sql.table('folded_hour')} in share mode`,
    select: sql<{ hour: Date }>`select hour from ${sql.table('folded_hour')} where hour >= ${new Date(firstMs)} and hour <= ${new Date(lastMs)}`
  }
}

/**
 * Folds one closed hour into its day's and month's rows (`endpoint_day`, `endpoint_month`, `version_day`)
 * and lists it as folded, once whichever writer gets there first; returns false when it already was.
 * Takes the lock that batches share, so it waits for batches that found the hour not folded, and later
 * ones find it folded. Each endpoint has one row per hour: no row is upserted twice in one statement.
 */
export async function foldHour (db: Kysely<Database>, hourMs: number): Promise<boolean> {
  const hour = new Date(hourMs)
  const mergeCounts = mergeRollupRowSql()
  return await db.transaction().execute(async (trx) => {
    await sql`lock table ${sql.table('folded_hour')} in exclusive mode`.execute(trx)
    const listed = await sql`insert into ${sql.table('folded_hour')} (hour) values (${hour}) on conflict (hour) do nothing returning hour`.execute(trx)
    if (listed.rows.length === 0) return false
    for (const { grain, table, column } of GRAINS) {
      if (grain === 'hour') continue
      await sql`insert into ${sql.table(table)} as h (endpoint_id, ${sql.ref(column)}, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch)
        select endpoint_id, date_trunc(${sql.lit(grain)}, hour at time zone 'UTC')::date, hits, client_errors, server_errors, duration_sum, sketch_offset, sketch
        from ${sql.table('endpoint_hour')} where hour = ${hour} order by endpoint_id
        on conflict (endpoint_id, ${sql.ref(column)}) do update set ${mergeCounts}`.execute(trx)
    }
    await sql`insert into ${sql.table('version_day')} as h (day, version_id, endpoint_id, hits)
      ${versionCountsFromHoursSql('day', sql`hour = ${hour}`)} order by 2, 3
      on conflict (day, version_id, endpoint_id) do update set hits = h.hits + excluded.hits`.execute(trx)
    return true
  })
}

/**
 * The hours in [`sinceMs`, `beforeMs`) that have rollup rows but are not folded: what writers that stopped
 * before folding them left. Reads the hourly rows' `hour` index.
 */
export async function unfoldedHours (db: Kysely<Database>, sinceMs: number, beforeMs: number): Promise<number[]> {
  const { rows } = await sql<{ hour: Date }>`select distinct hour from ${sql.table('endpoint_hour')} e
    where hour >= ${new Date(sinceMs)} and hour < ${new Date(beforeMs)}
      and not exists (select 1 from ${sql.table('folded_hour')} f where f.hour = e.hour) order by hour`.execute(db)
  return rows.map((row) => row.hour.getTime())
}

/**
 * The memory of the last COPY this thread finished, filled again by the next unit: new memory costs a page
 * fault per 4 KB the first time it is written (measured: about a tenth of the writer thread's CPU per row).
 * One, taken while in use, so two writes at once (a collector's ingest beside the writer) never share it.
 */
let spareCopyBuffer: Buffer | undefined
/** Bigger ones (long strings in a big unit) are let go rather than held for the thread's life. */
const MAX_SPARE_COPY_BYTES = 4 * 1024 * 1024

function takeSpareCopyBuffer (): Buffer | undefined {
  const spare = spareCopyBuffer
  spareCopyBuffer = undefined
  return spare
}

/**
 * Writes one unit in one transaction: its id into the batch table, then every raw row, then the
 * unit's share of the rollups. Returns false when the id was already there, i.e. an earlier attempt
 * committed but its acknowledgement was lost.
 *
 * On a PostgreSQL server the raw rows go in with `COPY … FROM STDIN` in its binary format
 * (`copyTransaction`, see dialect.ts, and {@link requestCopyData}): measured at 2,500-row batches, COPY cost
 * the server about 1 µs less per row than an insert from arrays, and binary COPY about 1.2 µs less than text.
 * PGlite has no STDIN and gets the insert.
 */
export async function writeUnit (db: Kysely<Database>, unit: WriteUnit, versionId: number, instanceId: number, copyTransaction?: OpenedDatabase['copyTransaction'],
  unfolded?: (hoursMs: number[]) => void): Promise<boolean> {
  // the claim also takes the unit's block of request ids, so the rows carry their ids in (no nextval per row)
  const claim = sql<{ first_request_id: string | number | bigint }>`insert into ${sql.table('batch')} (id, rows) values (${unit.id}, ${unit.endpointId.length})
    on conflict (id) do nothing returning first_request_id`
  const { firstMs, lastMs } = timeSpan(unit.timeMs)
  const folded = foldedHoursSql(periodStart('hour', firstMs), periodStart('hour', lastMs))
  // the unit's rollups, once the folded hours among its own are known
  const rollups = (foldedRows: Array<{ hour: Date }>): RawBuilder<unknown> => {
    const foldedHours = new Set(foldedRows.map((row) => row.hour.getTime()))
    const aggregated = aggregateRollups(unit.endpointId, unit.timeMs, unit.durationMs, unit.statusCode, (hourMs) => foldedHours.has(hourMs))
    const open = aggregated.hours.filter((hourMs) => !foldedHours.has(hourMs))
    if (open.length > 0) unfolded?.(open)
    return rollupUpsertSql(aggregated, versionId)
  }
  if (copyTransaction !== undefined) {
    let rows: Buffer | undefined
    const stored = await copyTransaction(async (tx) => {
      const [claimed] = await tx.query(claim.compile(db))
      if (claimed === undefined) return false
      // a value no column can hold throws here (SQLSTATE 22003) and the transaction is rolled back
      rows = requestCopyData(unit, String(claimed.first_request_id), versionId, instanceId, takeSpareCopyBuffer())
      await tx.copyFrom(sql`copy ${sql.table('request')} (${sql.join(REQUEST_COLUMNS.map((c) => sql.ref(c)))}) from stdin (format binary)`.compile(db), rows)
      await tx.query(folded.lock.compile(db))
      await tx.query(rollups(await tx.query(folded.select.compile(db))).compile(db))
      return true
    })
    // only after a write that finished: a failed one's connection may still hold the bytes in its socket
    if (rows !== undefined && rows.buffer.byteLength <= MAX_SPARE_COPY_BYTES) spareCopyBuffer = Buffer.from(rows.buffer)
    return stored
  }
  return await db.transaction().execute(async (trx) => {
    const [claimed] = (await claim.execute(trx)).rows
    if (claimed === undefined) return false
    // the identity is `generated always`: ids given need `overriding system value` (COPY writes them as given)
    await sql`insert into ${sql.table('request')} (${sql.join(REQUEST_COLUMNS.map((c) => sql.ref(c)))}) overriding system value
      select ${String(claimed.first_request_id)}::bigint + o - 1, e, to_timestamp(t / 1000.0), d, s, q, g, i, ${versionId}::integer, ${instanceId}::integer
      from unnest(${numberArrayLiteral(unit.endpointId)}::integer[], ${numberArrayLiteral(unit.timeMs)}::float8[],
        ${numberArrayLiteral(unit.durationMs)}::float8[], ${numberArrayLiteral(unit.statusCode)}::smallint[],
        ${numberArrayLiteral(unit.seq)}::bigint[], ${textArrayLiteral(unit.group)}::text[], ${textArrayLiteral(unit.ip)}::text[])
        with ordinality as u(e, t, d, s, q, g, i, o)`.execute(trx)
    await folded.lock.execute(trx)
    await rollups((await folded.select.execute(trx)).rows).execute(trx)
    return true
  })
}

/** Moves `last_requested` forward; idempotent, so a retry or a race with another process is harmless. */
export async function touchEndpoints (db: Kysely<Database>, lastSeen: Map<number, number>): Promise<void> {
  if (lastSeen.size === 0) return
  // sorted, so concurrent writers lock rows in the same order and cannot deadlock each other
  const ids = [...lastSeen.keys()].sort((a, b) => a - b)
  const times = ids.map((id) => lastSeen.get(id)!)
  await sql`update ${sql.table('endpoint')} as e
    set last_requested = greatest(e.last_requested, to_timestamp(u.t / 1000.0))
    from unnest(${ids}::integer[], ${times}::float8[]) as u(id, t) where e.id = u.id`.execute(db)
}

/** Forgets batch ids old enough that no retry can still carry them. */
export async function pruneBatchIds (db: Kysely<Database>, olderThanMs: number): Promise<void> {
  await db.deleteFrom('batch').where('written_at', '<', new Date(Date.now() - olderThanMs)).execute()
}

/** Outliers ready to insert: the request thread's record with its endpoint's database id. */
export type OutlierRow = Omit<OutlierRecord, 'endpointIndex'> & { endpointId: number }
/** A level-3 call tree ready to insert. */
export type ProfileRow = Omit<ProfileRecord, 'endpointIndex'> & { endpointId: number }

/** What levels 2 and 3 found, ready to insert: outliers, outliers counted past the hourly cap, call trees. */
export interface DiagnosticRows {
  outliers: OutlierRow[]
  overflow: Array<{ endpointId: number, hourMs: number, count: number }>
  profiles: ProfileRow[]
}

/**
 * Inserts call trees and outliers in one transaction. Of the outliers, keeps the `keepPerHour` slowest of
 * each endpoint and UTC hour they fall in (a slower outlier replaces the fastest kept, whichever process
 * found it), and adds what was found to the per-hour counts, `stored` being what is kept. With `batchId`
 * (another process's batch) the id is claimed first and nothing is written when it was: answers whether
 * this call wrote them.
 */
export async function writeDiagnostics (db: Kysely<Database>, { outliers, overflow, profiles }: DiagnosticRows,
  ids: { versionId: number, instanceId: number, keepPerHour: number, batchId?: string }): Promise<boolean> {
  const { versionId, instanceId, keepPerHour, batchId } = ids
  return await db.transaction().execute(async (trx) => {
    if (batchId !== undefined) {
      const claimed = await sql`insert into ${sql.table('batch')} (id, rows) values (${batchId}, ${outliers.length + profiles.length})
        on conflict (id) do nothing returning id`.execute(trx)
      if (claimed.rows.length === 0) return false
    }
    if (profiles.length > 0) {
      await sql`insert into ${sql.table('profile')} (endpoint_id, time_requested, duration_ms, version_id, instance_id, tree)
        select p."endpointId", to_timestamp(p."timeMs" / 1000.0), p."durationMs", ${versionId}::integer, ${instanceId}::integer, p.tree
        from jsonb_to_recordset(${jsonForJsonb(profiles)}::jsonb) as p("endpointId" integer, "timeMs" float8, "durationMs" float8, tree jsonb)`.execute(trx)
    }
    if (outliers.length > 0) {
      await sql`insert into ${sql.table('outlier')}
        (endpoint_id, time_requested, duration_ms, threshold_ms, status_code, version_id, instance_id, request, phases, process, stacks)
        select o."endpointId", to_timestamp(o."timeMs" / 1000.0), o."durationMs", o."thresholdMs", o."statusCode",
          ${versionId}::integer, ${instanceId}::integer, o.request, o.phases, o.process, o.stacks
        from jsonb_to_recordset(${jsonForJsonb(outliers)}::jsonb) as o("endpointId" integer, "timeMs" float8, "durationMs" float8,
          "thresholdMs" float8, "statusCode" smallint, request jsonb, phases jsonb, process jsonb, stacks jsonb)`.execute(trx)
    }
    const counts = [
      ...outliers.map((r) => ({ endpointId: r.endpointId, timeMs: r.timeMs, found: 1 })),
      ...overflow.map((o) => ({ endpointId: o.endpointId, timeMs: o.hourMs, found: o.count }))
    ]
    if (counts.length === 0) return true
    const touched = sql`select c."endpointId" as e, date_trunc('hour', to_timestamp(c."timeMs" / 1000.0), 'UTC') as h, sum(c.found) as found
      from jsonb_to_recordset(${JSON.stringify(counts)}::jsonb) as c("endpointId" integer, "timeMs" float8, found integer) group by 1, 2`
    if (outliers.length > 0) {
      // the hour's slowest stay (by the endpoint + time index: one hour of one endpoint's outliers)
      await sql`delete from ${sql.table('outlier')} o using (
          select k.id from (${touched}) t cross join lateral (
            select id from ${sql.table('outlier')} where endpoint_id = t.e and time_requested >= t.h and time_requested < t.h + interval '1 hour'
            order by duration_ms desc, id desc offset ${keepPerHour}
          ) k
        ) beyond where o.id = beyond.id`.execute(trx)
    }
    await sql`insert into ${sql.table('outlier_hour')} as h (endpoint_id, hour, found, stored)
      select t.e, t.h, t.found, (select count(*) from ${sql.table('outlier')} o
        where o.endpoint_id = t.e and o.time_requested >= t.h and o.time_requested < t.h + interval '1 hour')
      from (${touched}) t order by 1, 2
      on conflict (endpoint_id, hour) do update set found = h.found + excluded.found, stored = excluded.stored`.execute(trx)
    return true
  })
}

/** Keeps the latest `keep` call trees per endpoint. */
export async function pruneProfiles (db: Kysely<Database>, keep: number): Promise<void> {
  await sql`delete from ${sql.table('profile')} p using (
      select id from (select id, row_number() over (partition by endpoint_id order by time_requested desc, id desc) as n from ${sql.table('profile')}) ranked
      where n > ${keep}
    ) old where p.id = old.id`.execute(db)
}
