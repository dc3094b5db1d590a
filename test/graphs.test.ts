import t from 'tap'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import monitor, { type MonitorOptions } from '../lib/index.js'
import { DIALECTS, backend, until } from './helpers.js'

// Issue #16 custom graphs: values stored at their schedule (a real 1 s interval and a cron with
// seconds: fake timers would not show that node-cron and the database agree), a throwing, a hanging
// and a NaN-returning function, two instances on one PostgreSQL running each tick once, close stopping all.
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const HOSTILE = '<img src=x onerror="alert(1)">\u202e'

function logCapture (): { stream: Writable, lines: Array<{ level: number, msg: string }> } {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  return { stream, lines }
}

async function graphApp (options: MonitorOptions, stream?: Writable): Promise<FastifyInstance> {
  const app = Fastify({ logger: stream === undefined ? false : { level: 'info', stream } })
  await app.register(monitor, { flushIntervalMs: 20, appVersion: 'live', dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) }, ...options })
  app.get('/ping', async () => 'pong')
  return app
}

async function rows (app: FastifyInstance, graph: string): Promise<Array<{ tick: Date, value: number | null, error: string | null }>> {
  return await app.monitor.db.selectFrom('graph_run').select(['tick', 'value', 'error']).where('graph', '=', graph).orderBy('tick').execute()
}

function timeouts (): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: graphs are stored on their schedule; failures are counted and logged once; close stops them`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const timersBefore = timeouts()
    const { stream, lines } = logCapture()
    const app = await graphApp(store.options, stream)
    let calls = 0
    let hangs = 0
    app.monitor.addGraph('counter', () => ++calls, { everySeconds: 1 })
    app.monitor.addGraph('async cron', async () => await Promise.resolve(42), { cron: '* * * * * *' })
    app.monitor.addGraph('throws', () => { throw new Error('no users table') }, { everySeconds: 1 })
    app.monitor.addGraph('nan', () => Number.NaN, { everySeconds: 1 })
    app.monitor.addGraph('not a number', (() => 'seven') as unknown as () => number, { everySeconds: 1 })
    app.monitor.addGraph('hangs', async () => { hangs++; return await new Promise<number>(() => {}) }, { everySeconds: 1, timeoutMs: 300 })
    app.monitor.addGraph(HOSTILE, () => 1, { everySeconds: 1 })
    app.monitor.addGraph('zoned', () => 1, { cron: '0 9 * * *', timezone: 'Asia/Kolkata' })
    t.throws(() => app.monitor.addGraph('counter', () => 1, { everySeconds: 1 }), { code: 'FST_MONITORING_GRAPH' }, 'a name is added once')
    t.throws(() => app.monitor.addGraph('bad', () => 1, { cron: 'every minute' }), { code: 'FST_MONITORING_GRAPH', message: /not a valid cron/ })
    t.throws(() => app.monitor.addGraph('bad', () => 1, { everySeconds: 0.5 }), { code: 'FST_MONITORING_GRAPH' })
    t.throws(() => app.monitor.addGraph('bad', () => 1, { cron: '* * * * *', timezone: 'Mars/Olympus' }), { code: 'FST_MONITORING_GRAPH' })
    t.throws(() => app.monitor.addGraph('bad', () => 1, {} as never), { code: 'FST_MONITORING_GRAPH', message: /exactly one/ })
    t.throws(() => app.monitor.addGraph('bad', () => 1, { everySecond: 5 } as never), { code: 'FST_MONITORING_GRAPH', message: /has no "everySecond"/ }, 'a misspelt key is named')
    await app.ready()
    await app.monitor.ready

    t.ok(await until(async () => (await rows(app, 'counter')).filter((r) => r.value !== null).length >= 3 &&
      (await rows(app, 'hangs')).filter((r) => r.error !== null).length >= 2 && (await rows(app, 'async cron')).length >= 2, 60_000), 'values and failures stored')
    const counter = (await rows(app, 'counter')).filter((r) => r.value !== null)
    t.ok(counter.every((r) => r.tick.getTime() % 1000 === 0), 'ticks fall on whole seconds')
    t.ok(counter.every((r, i) => i === 0 || r.tick.getTime() > counter[i - 1]!.tick.getTime()), 'one row per tick')
    t.same(counter.map((r) => r.value), counter.map((_r, i) => counter[0]!.value! + i), 'each tick stored the value of its run')
    t.equal((await rows(app, 'async cron'))[0]!.value, 42, 'an async function under a cron schedule with seconds')
    t.match((await rows(app, 'throws'))[0]!.error, /no users table/)
    t.match((await rows(app, 'nan'))[0]!.error, /returned NaN, not a finite number/)
    t.match((await rows(app, 'not a number'))[0]!.error, /returned string/)
    t.match((await rows(app, 'hangs')).find((r) => r.error !== null)!.error, /no value within 300 ms/)
    t.equal((await app.inject('/ping')).statusCode, 200, 'the app serves on')
    const logged = (graph: string) => lines.filter((line) => line.msg.includes(`custom graph "${graph}" failed`)).length
    t.equal(logged('throws'), 1, 'a failing graph is logged once')
    t.equal(logged('hangs'), 1)
    const status = Object.fromEntries(app.monitor.graphs().map((g) => [g.name, g]))
    t.ok(status.throws!.errors >= 2 && status.throws!.lastError === 'no users table')
    t.equal(status.counter!.schedule, 'every:1s')
    t.equal(status['async cron']!.schedule, 'cron:* * * * * *')
    t.equal(status.zoned!.schedule, 'cron:0 9 * * * (Asia/Kolkata)', 'the time zone does not read as a sixth field')

    const metrics = (await app.inject('/metrics')).body
    t.match(metrics, /fastify_monitor_custom_graph_value\{graph="counter"\} \d+/)
    t.match(metrics, /fastify_monitor_custom_graph_errors_total\{graph="throws"\} [2-9]/)
    t.match(metrics, /fastify_monitor_custom_graph_errors_total\{graph="counter"\} 0/)

    // the API: every graph with its points; a hostile name comes back as data
    const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: ADMIN.username, password: ADMIN.password } })
    const cookie = String(login.headers['set-cookie']).split(';')[0]!
    // the last 5 minutes: one-second buckets, every tick a point of its own
    const res = await app.inject({ url: `/dashboard/api/graphs?from=${new Date(Date.now() - 300_000).toISOString()}`, headers: { cookie } })
    t.equal(res.statusCode, 200)
    const listed = res.json() as Array<{ name: string, schedule: string, lastValue: number | null, lastError: string | null, errors: number, points: Array<{ time: string, value: number }> }>
    t.same(listed.map((g) => g.name).sort(), ['async cron', 'counter', 'hangs', 'nan', 'not a number', 'throws', 'zoned', HOSTILE].sort())
    const shown = Object.fromEntries(listed.map((g) => [g.name, g]))
    t.equal(shown.zoned!.schedule, 'cron:0 9 * * * (Asia/Kolkata)', 'stored as shown')
    t.ok(shown.counter!.points.length >= 3 && shown.counter!.lastValue! >= 3, `${shown.counter!.points.length} points, last ${shown.counter!.lastValue}`)
    const week = (await app.inject({ url: '/dashboard/api/graphs', headers: { cookie } })).json() as typeof listed
    t.ok(week.find((g) => g.name === 'counter')!.points.length <= 2, 'a week is averaged into 20-minute buckets')
    t.equal(shown[HOSTILE]!.lastValue, 1)
    t.ok(shown.throws!.errors >= 2 && shown.throws!.lastError === 'no users table' && shown.throws!.points.length === 0)

    await app.close()
    const callsAtClose = calls
    const hangsAtClose = hangs
    await new Promise((resolve) => setTimeout(resolve, 2500))
    t.equal(calls, callsAtClose, 'nothing runs after close')
    t.equal(hangs, hangsAtClose)
    t.equal(timeouts(), timersBefore, 'no timer of a graph is left after close')
    t.throws(() => app.monitor.addGraph('late', () => 1, { everySeconds: 1 }), { message: /closed/ })
  })
}

if (DIALECTS.includes('postgres')) {
  t.test('postgres: two instances sharing one database run each tick once', async (t) => {
    const store = await backend('postgres')
    t.teardown(store.cleanup)
    const apps = [await graphApp({ ...store.options, dashboard: false, metrics: false }), await graphApp({ ...store.options, dashboard: false, metrics: false })]
    const calls = [0, 0]
    for (const [i, app] of apps.entries()) {
      app.monitor.addGraph('shared', () => { calls[i]!++; return i }, { everySeconds: 1 })
      await app.ready()
      await app.monitor.ready
    }
    t.ok(await until(async () => (await rows(apps[0]!, 'shared')).filter((r) => r.value !== null).length >= 5, 30_000))
    for (const app of apps) await app.close()
    const { rows: stored } = await import('./helpers.js').then(async ({ withPostgres }) => await withPostgres(async (client) =>
      await client.query<{ tick: Date, value: number | null }>(`select tick, value from "${store.prefix}graph_run" where graph = 'shared' order by tick`)))
    const ticks = stored.map((r) => r.tick.getTime())
    t.equal(new Set(ticks).size, ticks.length, 'one row per tick')
    t.equal(calls[0]! + calls[1]!, stored.length, `${stored.length} ticks ran ${calls[0]! + calls[1]!} times in all (${calls[0]} + ${calls[1]})`)
  })
}
