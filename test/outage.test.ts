import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { backend, buildApp, until, withPostgres, type Backend } from './helpers.js'
import { TcpProxy } from './tcp-proxy.js'
import type { MonitorOptions } from '../lib/index.js'

// A database outage is a Postgres-server scenario: PGlite runs in-process and cannot go away.
async function countRows (prefix: string): Promise<number> {
  return await withPostgres(async (client) => {
    const { rows } = await client.query(`select count(*)::int as n from "${prefix}request"`)
    return rows[0].n as number
  })
}

/** An app whose database connection goes through a proxy the test can cut; closed in teardown unless told not to. */
async function appBehindProxy (t: Test, options: MonitorOptions = {}, closeInTeardown = true, fastifyOptions: FastifyServerOptions = {}):
Promise<{ app: FastifyInstance, proxy: TcpProxy, store: Backend }> {
  const proxy = await new TcpProxy().start()
  t.teardown(() => proxy.close())
  const store = await backend('postgres', { database: proxy.url() })
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, ...options }, fastifyOptions)
  if (closeInTeardown) t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  return { app, proxy, store }
}

t.test('a database that is down at start and comes back later loses nothing', async (t) => {
  const proxy = await new TcpProxy().start()
  t.teardown(() => proxy.close())
  proxy.cut()
  const store = await backend('postgres', { database: proxy.url() })
  t.teardown(store.cleanup)
  const app = await buildApp(store.options)
  t.teardown(() => app.close())
  await app.ready()

  for (let i = 0; i < 50; i++) await app.inject({ url: `/users/${i}` })
  t.ok(await until(() => app.monitor.stats().writeErrors >= 2), 'failed attempts are counted')
  const down = app.monitor.stats()
  t.equal(down.databaseUp, false, 'the writer knows the database is down')
  t.equal(down.written, 0)

  proxy.restore()
  await app.monitor.ready
  await app.monitor.flush()
  t.equal(await countRows(store.prefix), 50, 'every request recorded while the database was down is stored')
  t.equal(app.monitor.stats().dropped, 0)
  t.equal(app.monitor.stats().databaseUp, true)
  const { rows: [order] } = await withPostgres(async (client) => await client.query(`select (select first_seen from "${store.prefix}version") as first_seen,
    (select min(time_requested) from "${store.prefix}request") as first_request`))
  t.ok(order.first_seen <= order.first_request, `the version is first seen (${order.first_seen.toISOString()}) no later than its first request (${order.first_request.toISOString()}), not when the database came back`)
})

t.test('a database that dies mid-run and returns loses nothing', async (t) => {
  const { app, proxy, store } = await appBehindProxy(t)
  for (let i = 0; i < 30; i++) await app.inject({ url: `/users/${i}` })
  await app.monitor.flush()
  proxy.cut()
  for (let i = 0; i < 70; i++) await app.inject({ url: '/fail' })
  t.ok(await until(() => app.monitor.stats().writeErrors > 0), 'the outage is noticed')
  t.equal(app.monitor.stats().databaseUp, false)
  await new Promise((resolve) => setTimeout(resolve, 300))
  proxy.restore()
  await app.monitor.flush()
  t.equal(await countRows(store.prefix), 100)
  t.equal(app.monitor.stats().dropped, 0)
})

t.test('when the buffer is full the oldest records are dropped and counted', async (t) => {
  const { app, proxy, store } = await appBehindProxy(t, { maxBufferedRecords: 40, maxBatchSize: 10 })
  proxy.cut()
  for (let i = 0; i < 100; i++) await app.inject({ url: `/users/${i}` })
  t.ok(await until(() => app.monitor.stats().dropped === 60), `dropped ${app.monitor.stats().dropped} of 100 with room for 40`)
  t.ok(app.monitor.stats().buffered <= 40, 'memory stays bounded')
  proxy.restore()
  await app.monitor.flush()
  const ids = await withPostgres(async (client) => {
    const { rows } = await client.query(`select split_part(e.route, '/', 3) as id from "${store.prefix}request" r
      join "${store.prefix}endpoint" e on e.id = r.endpoint_id`)
    return rows.length
  })
  t.equal(ids, 40, 'what was kept is stored')
  const kept = await app.monitor.db.selectFrom('request').select(({ fn }) => fn.max('time_requested').as('last')).executeTakeFirstOrThrow()
  t.ok(kept.last !== null)
  t.equal(app.monitor.stats().written, 40)
})

t.test('close() with the database unreachable gives up after closeTimeoutMs and reports the loss', async (t) => {
  const { app, proxy } = await appBehindProxy(t, { closeTimeoutMs: 300 }, false)
  proxy.cut()
  for (let i = 0; i < 10; i++) await app.inject({ url: `/users/${i}` })
  const started = Date.now()
  await app.close()
  const took = Date.now() - started
  t.ok(took < 5_000, `close resolved in ${took} ms instead of hanging`)
  t.equal(app.monitor.stats().dropped, 10, 'the unwritten records are counted as dropped')
})

t.test('custom graphs during an outage: one warning, not one per tick, and one line when ticks are stored again', async (t) => {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line)); done() } })
  const { app, proxy } = await appBehindProxy(t, {}, true, { logger: { level: 'info', stream } })
  app.monitor.addGraph('a', () => 1, { everySeconds: 1 })
  app.monitor.addGraph('b', () => 2, { everySeconds: 1 })
  const stored = async (): Promise<number> => (await app.monitor.db.selectFrom('graph_run').select('tick').execute()).length
  t.ok(await until(async () => await stored() >= 2, 20_000), 'ticks are stored')
  proxy.cut()
  const graphLines = (): typeof lines => lines.filter((line) => line.msg.includes('custom graph ticks'))
  await new Promise((resolve) => setTimeout(resolve, 4_000))
  const down = graphLines()
  t.same(down.map((line) => line.level), [40], `one warning in 4 s of two graphs ticking every second (${down.length})`)
  t.match(down[0]!.msg, /cannot be stored; they are lost until the database answers/)
  proxy.restore()
  t.ok(await until(() => graphLines().length === 2, 20_000), 'and one line once they are stored again')
  t.match(graphLines()[1]!.msg, /stored again/)
})
