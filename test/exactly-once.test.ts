import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { Database } from '../lib/db/database.js'
import { withTableNamesIntrospector } from '../lib/db/introspector.js'
import { migrateToLatest } from '../lib/db/migrate.js'
import { PartitionManager, dayOf } from '../lib/db/partitions.js'
import { registerInstance, upsertEndpoints, writeUnit, type WriteUnit } from '../lib/writer/store.js'
import { TablePrefixPlugin } from '../lib/db/table-prefix-plugin.js'
import { SPARSE_LINGER_FACTOR, SPARSE_ROWS_PER_ENDPOINT, Writer } from '../lib/writer/writer.js'
import { createRecordBatch, type RecordBatch } from '../lib/protocol.js'
import { POSTGRES_URL, backend } from './helpers.js'

/** A migrated PostgreSQL schema with one endpoint and today's partitions, as the writer thread sets it up. */
async function openStore (t: Test): Promise<{ db: Kysely<Database>, versionId: number, instanceId: number, endpointId: number }> {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  // as the plugin opens it: kysely's own introspector races other tests' DROP TABLE (introspector.test.ts)
  const rawDb = new Kysely<any>({ dialect: withTableNamesIntrospector(new PostgresDialect({ pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 2 }) })) })
  t.teardown(() => rawDb.destroy())
  const db = rawDb.withPlugin(new TablePrefixPlugin(store.prefix)) as Kysely<Database>
  await migrateToLatest(rawDb, store.prefix)
  const { versionId, instanceId } = await registerInstance(db, 'v1', randomUUID(), new Date())
  const [endpoint] = await upsertEndpoints(db, [{ index: 0, method: 'GET', route: '/x' }], 1, 1)
  await new PartitionManager(db, store.prefix).ensure(dayOf(Date.now()) - 1, dayOf(Date.now()) + 1)
  return { db, versionId, instanceId, endpointId: endpoint!.id }
}

t.test('a batch whose commit acknowledgement is lost is written once, not twice', async (t) => {
  const { db, versionId, instanceId, endpointId } = await openStore(t)
  const unit: WriteUnit = {
    id: randomUUID(), endpointId: [endpointId, endpointId], timeMs: [Date.now(), Date.now()], durationMs: [1, 2],
    statusCode: [200, 500], seq: [1, 2], group: [null, 'g'], ip: ['::1', null], attempts: 0
  }
  t.equal(await writeUnit(db, unit, versionId, instanceId), true)
  t.equal(await writeUnit(db, unit, versionId, instanceId), false, 'the retry sees its id and writes nothing')

  // the writer's view: the first write commits but reports a lost connection; the retry must not duplicate
  let calls = 0
  const writer = new Writer({
    target: 'the database',
    resolveEndpoint: () => ({ id: endpointId, level: 1 }),
    write: async (u) => {
      await writeUnit(db, u, versionId, instanceId)
      if (++calls === 1) throw Object.assign(new Error('Connection terminated unexpectedly'), {})
    },
    ensurePartitions: async () => {},
    touch: async () => {},
    log: () => {},
    onStats: () => {}
  }, { maxBufferedRecords: 1000, maxBatchSize: 1000, retryMaxDelayMs: 50 })
  const batch = createRecordBatch(3)
  for (let i = 0; i < 3; i++) {
    batch.endpoint[i] = 0; batch.timeMs[i] = Date.now(); batch.durationMs[i] = i; batch.statusCode[i] = 200; batch.seq[i] = 3 + i; batch.group[i] = -1; batch.ip[i] = -1
  }
  batch.length = 3
  writer.enqueue(batch)
  await writer.drain()
  t.equal(calls, 2, 'the unit was retried')
  t.equal(writer.stats.written, 3)
  const { n } = await db.selectFrom('request').select(({ fn }) => fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  t.equal(Number(n), 5, '2 + 3 rows, none twice')
})

t.test('lingerMs: a partial unit waits for more rows, longer when spread thin over its endpoints; a full one or a drain goes at once', async (t) => {
  const { db, versionId, instanceId, endpointId } = await openStore(t)
  const units: number[] = []
  const writer = new Writer({
    target: 'the database',
    resolveEndpoint: () => ({ id: endpointId, level: 1 }),
    write: async (u) => { units.push(u.endpointId.length); await writeUnit(db, u, versionId, instanceId) },
    ensurePartitions: async () => {},
    touch: async () => {},
    log: () => {},
    onStats: () => {}
  }, { maxBufferedRecords: 1000, maxBatchSize: 10, retryMaxDelayMs: 50, lingerMs: 300 })
  const rows = (n: number, endpoints = 1): RecordBatch => {
    const batch = createRecordBatch(n)
    for (let i = 0; i < n; i++) {
      batch.endpoint[i] = i % endpoints; batch.timeMs[i] = Date.now(); batch.durationMs[i] = 1; batch.statusCode[i] = 200; batch.seq[i] = i; batch.group[i] = -1; batch.ip[i] = -1
    }
    batch.length = n
    return batch
  }
  const settled = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 50)) }
  writer.enqueue(rows(3))
  writer.kick()
  await settled()
  t.same(units, [], 'a partial unit younger than lingerMs waits')
  writer.accept(rows(4), undefined)
  writer.kick()
  await settled()
  t.same(units, [], 'still under maxBatchSize')
  writer.accept(rows(5), undefined)
  await settled()
  t.same(units, [10], 'maxBatchSize rows went at once; the 2 left over wait')
  await new Promise((resolve) => setTimeout(resolve, 300))
  writer.kick()
  await settled()
  t.same(units, [10], `2 rows of one endpoint are fewer than ${SPARSE_ROWS_PER_ENDPOINT} per endpoint: sparse, they wait past lingerMs`)
  await new Promise((resolve) => setTimeout(resolve, 300 * SPARSE_LINGER_FACTOR - 350))
  writer.kick()
  await settled()
  t.same(units, [10, 2], `a sparse unit goes once its oldest rows have waited ${SPARSE_LINGER_FACTOR} × lingerMs`)
  writer.enqueue(rows(8, 2))
  await new Promise((resolve) => setTimeout(resolve, 300))
  writer.kick()
  await settled()
  t.same(units, [10, 2, 8], `${SPARSE_ROWS_PER_ENDPOINT} rows for each of its endpoints: the unit goes once its oldest rows have waited lingerMs`)
  writer.enqueue(rows(7, 2))
  await new Promise((resolve) => setTimeout(resolve, 300))
  writer.kick()
  await settled()
  t.same(units, [10, 2, 8], 'one row short of that, it waits')
  writer.enqueue(rows(1))
  await writer.drain()
  t.same(units, [10, 2, 8, 8], 'drain writes a partial unit at once')
  t.equal(writer.stats.written, 28)
})
