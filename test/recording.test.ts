import t from 'tap'
import { sql } from 'kysely'
import { DIALECTS, backend, buildApp } from './helpers.js'
import { UNMATCHED_ROUTE } from '../lib/index.js'

for (const dialect of DIALECTS) {
  t.test(`${dialect}: every request is stored with duration, status, version, group and IP`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await buildApp({
      ...store.options,
      appVersion: '1.4.2',
      groupBy: (request) => request.headers['x-user'] as string | undefined
    }, { trustProxy: true })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready

    const before = Date.now()
    for (let i = 0; i < 25; i++) {
      await app.inject({ url: `/users/${i}`, headers: { 'x-user': `user-${i % 3}`, 'x-forwarded-for': `10.0.0.${i % 5}` } })
    }
    for (let i = 0; i < 5; i++) await app.inject({ method: 'POST', url: '/users', payload: {} })
    for (let i = 0; i < 3; i++) await app.inject({ url: '/fail' })
    for (let i = 0; i < 7; i++) await app.inject({ url: `/no/such/${i}?q=${i}` })
    await app.inject({ url: '/slow' })
    const after = Date.now()
    await app.monitor.flush()

    const rows = await app.monitor.db.selectFrom('request as r')
      .innerJoin('endpoint as e', 'e.id', 'r.endpoint_id')
      .innerJoin('version as v', 'v.id', 'r.version_id')
      .select(['e.method', 'e.route', 'r.status_code', 'r.duration_ms', 'r.group_by', 'r.ip', 'v.version', 'r.time_requested'])
      .execute()
    t.equal(rows.length, 41, 'one row per request')
    const users = rows.filter((r) => r.route === '/users/:id')
    t.equal(users.length, 25)
    t.same(new Set(users.map((r) => r.status_code)), new Set([200]))
    t.same([...new Set(users.map((r) => r.group_by))].sort(), ['user-0', 'user-1', 'user-2'])
    t.same([...new Set(users.map((r) => r.ip))].sort(), ['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'], 'trustProxy is honoured')
    t.equal(rows.filter((r) => r.route === '/users' && r.method === 'POST' && r.status_code === 201).length, 5)
    t.equal(rows.filter((r) => r.route === '/fail' && r.status_code === 500).length, 3)
    const unmatched = rows.filter((r) => r.route === UNMATCHED_ROUTE)
    t.equal(unmatched.length, 7, 'unmatched requests share one endpoint')
    t.same(new Set(unmatched.map((r) => r.status_code)), new Set([404]))
    t.ok(rows.every((r) => r.version === '1.4.2'))
    const slow = rows.find((r) => r.route === '/slow')!
    t.ok(slow.duration_ms >= 29 && slow.duration_ms < 2000, `slow route took ${slow.duration_ms} ms`)
    t.ok(rows.every((r) => r.time_requested.getTime() >= before - 5 && r.time_requested.getTime() <= after + 5), 'times are when the requests came')

    const endpoints = await app.monitor.db.selectFrom('endpoint').select(['method', 'route', 'monitor_level', 'last_requested']).execute()
    const keys = endpoints.map((e) => `${e.method} ${e.route}`).sort()
    t.same(keys, ['*  __unmatched__'.replace('  ', ' '), 'GET /fail', 'GET /slow', 'GET /users/:id', 'POST /users'].sort())
    t.ok(endpoints.every((e) => e.last_requested !== null), 'last_requested is set on every endpoint that was hit')

    const partitions = await sql<{ n: number }>`select count(*)::int as n from pg_inherits i join pg_class c on c.oid = i.inhparent where c.relname = ${`${store.prefix}request`}`.execute(app.monitor.db)
    t.ok(partitions.rows[0]!.n >= 4, 'daily partitions exist ahead of time')
  })
}
