import t from 'tap'
import Fastify from 'fastify'
import monitor from '../lib/index.js'
import { DIALECTS, backend, buildApp, until } from './helpers.js'

for (const dialect of DIALECTS) {
  t.test(`${dialect}: setMonitorLevel right after start waits for the endpoint's row; before ready it says when to call it`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    // the README's snippet as a new user ran it: the level set as soon as the server listens, no dashboard
    const app = Fastify()
    await app.register(monitor, { ...store.options, dashboard: false, metrics: false })
    app.get('/users/:id', async () => 'user')
    t.teardown(() => app.close())
    await t.rejects(app.monitor.setMonitorLevel('GET', '/users/:id', 0), { code: 'FST_MONITORING_STORAGE_UNAVAILABLE', message: /after await app.ready\(\)/ })
    await app.listen({ port: 0, host: '127.0.0.1' })
    await app.monitor.setMonitorLevel('GET', '/users/:id', 0)
    const stored = await app.monitor.db.selectFrom('endpoint').select('monitor_level').where('route', '=', '/users/:id').executeTakeFirstOrThrow()
    t.equal(stored.monitor_level, 0, 'stored (it threw "endpoint not registered in the database yet")')
  })

  t.test(`${dialect}: level 0 keeps only last_requested; levels persist and change at run time`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await buildApp({ ...store.options, defaultMonitorLevel: 0 })
    await app.ready()
    await app.monitor.ready
    t.ok(app.monitor.endpoints().every((e) => e.level === 0))

    await app.inject('/users/1')
    await app.monitor.flush()
    const count = async (): Promise<number> => Number((await app.monitor.db.selectFrom('request')
      .select(({ fn }) => fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n)
    t.equal(await count(), 0, 'level 0 stores no request rows')
    const seen = await app.monitor.db.selectFrom('endpoint').select('last_requested').where('route', '=', '/users/:id').executeTakeFirstOrThrow()
    t.ok(seen.last_requested instanceof Date, 'but moves last_requested')

    await app.monitor.setMonitorLevel('get', '/users/:id', 1)
    await app.inject('/users/2')
    await app.monitor.flush()
    t.equal(await count(), 1, 'level 1 takes effect at once')
    await t.rejects(app.monitor.setMonitorLevel('GET', '/nope', 1), { code: 'FST_MONITORING_UNKNOWN_ENDPOINT' })
    await t.rejects(app.monitor.setMonitorLevel('GET', '/users/:id', 7 as 1), { code: 'FST_MONITORING_INVALID_OPTION' })
    await app.close()

    // a restart keeps the admin's choice over the default
    const again = await buildApp({ ...store.options, defaultMonitorLevel: 0 })
    t.teardown(() => again.close())
    await again.ready()
    t.ok(await until(() => again.monitor.endpoints().find((e) => e.route === '/users/:id')?.level === 1, 90_000), 'the stored level wins over the default')
    t.equal(again.monitor.endpoints().find((e) => e.route === '/fail')?.level, 0)
  })
}

t.test('postgres: two app instances write into one database at once, and see each other\'s level changes', async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  const first = await buildApp({ ...store.options, appVersion: 'a' })
  const second = await buildApp({ ...store.options, appVersion: 'b' })
  t.teardown(() => Promise.all([first.close(), second.close()]))
  await Promise.all([first.ready(), second.ready()])
  await Promise.all([first.monitor.ready, second.monitor.ready])
  await Promise.all([
    (async () => { for (let i = 0; i < 200; i++) await first.inject(`/users/${i}`) })(),
    (async () => { for (let i = 0; i < 150; i++) await second.inject(`/users/${i}`) })()
  ])
  await Promise.all([first.monitor.flush(), second.monitor.flush()])
  const rows = await first.monitor.db.selectFrom('request as r').innerJoin('version as v', 'v.id', 'r.version_id')
    .select(['v.version', ({ fn }) => fn.countAll<string>().as('n')]).groupBy('v.version').orderBy('v.version').execute()
  t.same(rows.map((r) => [r.version, Number(r.n)]), [['a', 200], ['b', 150]])
  const endpoints = await first.monitor.db.selectFrom('endpoint').select('route').where('route', '=', '/users/:id').execute()
  t.equal(endpoints.length, 1, 'endpoints are not duplicated')
  const instances = await first.monitor.db.selectFrom('instance').select('pid').execute()
  t.equal(instances.length, 2, 'each app is an instance')

  await first.monitor.setMonitorLevel('GET', '/users/:id', 3)
  t.ok(await until(() => second.monitor.endpoints().find((e) => e.route === '/users/:id')?.level === 3),
    'the other instance picks the new level up')
})

t.test('pglite: a second app on the same data directory is refused clearly', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const first = await buildApp(store.options)
  t.teardown(() => first.close())
  const second = Fastify()
  // it waits for the first to close (closeTimeoutMs + 10 s, at most half the plugin timeout), then gives up
  second.register(monitor, { ...store.options, closeTimeoutMs: 0 })
  await t.rejects(async () => { await second.ready() }, { code: 'FST_MONITORING_DATA_DIR_LOCKED', message: /in use by another app in this process, still open after/ })
})

t.test('routes registered before the plugin, in child plugins and with several methods are all endpoints', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const app = Fastify()
  app.get('/early', async () => 'early')
  await app.register(monitor, { ...store.options, flushIntervalMs: 20, ignoreRoutes: ['/health'] })
  await app.register(async (child) => {
    child.get('/child/:x', async () => 'child')
  }, { prefix: '/api' })
  app.route({ method: ['GET', 'POST'], url: '/both', handler: async () => 'both' })
  app.get('/health', async () => 'ok')
  app.get('/private', { config: { monitor: false } }, async () => 'private')
  t.teardown(() => app.close())
  await app.ready()
  const known = app.monitor.endpoints().map((e) => `${e.method} ${e.route}`)
  t.ok(known.includes('GET /api/child/:x'))
  t.ok(known.includes('GET /both') && known.includes('POST /both'))
  t.notOk(known.includes('GET /health'), 'ignoreRoutes')
  t.notOk(known.includes('GET /private'), 'config.monitor: false')
  t.notOk(known.some((k) => k.startsWith('HEAD ')), 'HEAD is ignored by default')
  for (const url of ['/early', '/api/child/1', '/both', '/health', '/private']) await app.inject(url)
  await app.inject({ method: 'POST', url: '/both' })
  await app.inject({ method: 'HEAD', url: '/both' })
  await app.monitor.ready
  await app.monitor.flush()
  t.ok(await until(async () => {
    await app.monitor.flush()
    const rows = await app.monitor.db.selectFrom('request as r').innerJoin('endpoint as e', 'e.id', 'r.endpoint_id')
      .select(['e.method', 'e.route']).execute()
    return rows.length === 4
  }), 'early, child, GET and POST /both are stored; health, private and HEAD are not')
  t.ok(app.monitor.endpoints().some((e) => e.route === '/early'), 'a route registered before the plugin is found at its first request')
})
