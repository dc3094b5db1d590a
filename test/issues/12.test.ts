// Issue #12, items 5 and 6: evidence attributed to the request it belongs to, and outliers that are worth keeping.
import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import monitor from '../../lib/index.js'
import { DIALECTS, backend, until } from '../helpers.js'

/** Burns the main thread in slices, yielding between them, so two requests' work interleaves. */
async function burnInSlices (ms: number, slice: (sliceMs: number) => number): Promise<number> {
  let spins = 0
  for (let done = 0; done < ms; done += 4) {
    spins += slice(4)
    await new Promise((resolve) => setImmediate(resolve))
  }
  return spins
}
function betaWorkForAttributionTest (ms: number): number {
  const end = performance.now() + ms
  let n = 0
  while (performance.now() < end) n++
  return n
}

/**
 * Alpha's and beta's work compiled anew for each app: V8 names no frame it inlined into code it optimised
 * before the sampler started (README, outliers), and both dialects' tests run in this one process, the second
 * after the first made these functions hot. Their script is named, as a file's would be.
 */
function freshWork (dialect: string): { alpha: (ms: number) => number, beta: (ms: number) => number } {
  const compile = (name: string): ((ms: number) => number) => (0, eval)(
    `(function ${name} (ms) { const end = performance.now() + ms; let n = 0; while (performance.now() < end) n++; return n })\n` +
    `//# sourceURL=${pathToFileURL(join(process.cwd(), `test/issues/12-${dialect}-${name}.js`)).href}`)
  return { alpha: compile('alphaWorkForAttributionTest'), beta: compile('betaWorkForAttributionTest') }
}

const PLUGIN_SOURCE = /(^|\/)(lib|dist)\/(profiling|collection|writer|storage|metrics|routes)\//

async function adminCookie (app: FastifyInstance): Promise<string> {
  // configured users are provisioned once the database is ready (a login before that is a 401, and counts
  // against the login rate limit): wait for the row, then log in once
  await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('username').where('username', '=', 'root').executeTakeFirst()) !== undefined, 20_000, 50)
  const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: 'root', password: 'root-password' } })
  const cookie = String(login.headers['set-cookie']).split(';')[0]!
  return cookie
}
const dashboard = { users: [{ username: 'root', password: 'root-password', role: 'admin' as const }], sessionSecret: 's'.repeat(40) }

interface Grouped { requests: number, sharedRequests: number, nodes: Array<{ functionName: string, url: string }> }

for (const dialect of DIALECTS) {
  t.test(`${dialect}: two endpoints busy at once: each profile names only its own handler's work, never the plugin's`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false })
    await app.register(monitor, { ...store.options, flushIntervalMs: 20, defaultMonitorLevel: 3, metrics: false, outliers: { profileShare: 1 }, dashboard })
    const work = freshWork(dialect)
    app.get('/alpha', async () => ({ n: await burnInSlices(40, work.alpha) }))
    app.get('/beta', async () => ({ n: await burnInSlices(40, work.beta) }))
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    const db = app.monitor.db
    const idOf = async (route: string): Promise<number> => (await db.selectFrom('endpoint').select('id').where('route', '=', route).executeTakeFirstOrThrow()).id
    const [alphaId, betaId] = [await idOf('/alpha'), await idOf('/beta')]
    const profiles = async (id: number): Promise<number> => (await db.selectFrom('profile').select('id').where('endpoint_id', '=', id).execute()).length
    // both routes at once, until each has call trees (a loaded machine may leave a request without samples)
    t.ok(await until(async () => {
      await Promise.all(Array.from({ length: 4 }, async (_, i) => await app.inject(i % 2 === 0 ? '/alpha' : '/beta')))
      await app.monitor.flush()
      return await profiles(alphaId) >= 4 && await profiles(betaId) >= 4
    }, 60_000, 0), 'both endpoints have call trees')

    const cookie = await adminCookie(app)
    const grouped = async (id: number): Promise<Grouped> => (await app.inject({ url: `/dashboard/api/endpoints/${id}/profile?libraries=expand`, headers: { cookie } })).json() as Grouped
    const alpha = await grouped(alphaId)
    const beta = await grouped(betaId)
    const names = (g: Grouped): Set<string> => new Set(g.nodes.map((n) => n.functionName))
    t.ok(names(alpha).has('alphaWorkForAttributionTest'), 'the alpha profile has its own work')
    t.notOk(names(alpha).has('betaWorkForAttributionTest'), 'and none of beta\'s, though they ran interleaved')
    t.ok(names(beta).has('betaWorkForAttributionTest'), 'the beta profile has its own work')
    t.notOk(names(beta).has('alphaWorkForAttributionTest'), 'and none of alpha\'s')
    t.ok(alpha.requests > 0 && alpha.sharedRequests <= alpha.requests, `requests of one endpoint that overlapped are counted (${alpha.sharedRequests} of ${alpha.requests})`)
    for (const g of [alpha, beta]) {
      const own = g.nodes.filter((n) => PLUGIN_SOURCE.test(n.url))
      t.same(own.map((n) => `${n.functionName} ${n.url}`), [], 'no frame of the plugin itself')
      t.ok(g.nodes.some((n) => n.url === 'test/issues/12.test.ts') && !g.nodes.some((n) => n.url.startsWith('file://') && n.url.endsWith('/test/issues/12.test.ts')),
        'stack paths are relative to the app root')
    }
  })

  t.test(`${dialect}: a sleeping outlier is not "busy" in another request's code`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false })
    await app.register(monitor, { ...store.options, flushIntervalMs: 20, defaultMonitorLevel: 2, metrics: false, outliers: { stackSampling: 'always', minSamples: 20, window: 50 }, dashboard })
    app.get<{ Querystring: { ms: string } }>('/sleep', async (request) => {
      await new Promise((resolve) => setTimeout(resolve, Number(request.query.ms)))
      return 'slept'
    })
    app.get('/neighbour', async () => ({ n: betaWorkForAttributionTest(100) }))
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    for (let i = 0; i < 25; i++) await app.inject('/sleep?ms=2')
    // the neighbour burns the main thread while the sleep waits
    await Promise.all([app.inject('/sleep?ms=150'), new Promise((resolve) => setTimeout(resolve, 10)).then(async () => await app.inject('/neighbour'))])
    const db = app.monitor.db
    const sleepId = (await db.selectFrom('endpoint').select('id').where('route', '=', '/sleep').executeTakeFirstOrThrow()).id
    t.ok(await until(async () => {
      await app.monitor.flush()
      return (await db.selectFrom('outlier').select('id').where('endpoint_id', '=', sleepId).where('duration_ms', '>=', 140).execute()).length > 0
    }, 30_000), 'the long sleep is an outlier')
    const cookie = await adminCookie(app)
    const list = (await app.inject({ url: `/dashboard/api/endpoints/${sleepId}/outliers`, headers: { cookie } })).json() as { rows: Array<{ id: string, durationMs: number, hottestFunction: string | null }> }
    if (list.rows === undefined) t.fail(JSON.stringify(list))
    const slowest = list.rows.sort((a, b) => b.durationMs - a.durationMs)[0]!
    t.not(slowest.hottestFunction, 'betaWorkForAttributionTest', 'the list does not say it was busiest in the neighbour')
    const detail = (await app.inject({ url: `/dashboard/api/outliers/${slowest.id}`, headers: { cookie } })).json() as {
      stacks: { attribution: string, busyPercent: number, otherBusyPercent: number, concurrent: number, hot: Array<{ frame: { functionName: string }, stack: Array<{ functionName: string, url: string }> }> }
    }
    t.equal(detail.stacks.attribution, 'code', 'samples were told apart by the route\'s code')
    t.notOk(detail.stacks.hot.some((h) => h.frame.functionName === 'betaWorkForAttributionTest' || h.stack.some((f) => f.functionName === 'betaWorkForAttributionTest')),
      'no hot frame or stack of the neighbour')
    t.ok(detail.stacks.busyPercent < 50, `its own code was busy a small part of the time (${detail.stacks.busyPercent}%)`)
    t.equal(detail.stacks.concurrent, 0, 'no other request of its endpoint overlapped it')
    t.notOk(detail.stacks.hot.some((h) => h.stack.some((f) => PLUGIN_SOURCE.test(f.url))), 'no plugin frame in its stacks')
  })

  t.test(`${dialect}: outliers have a minimum duration (404s too), and the slowest of the hour are kept`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false })
    const cap = 3
    await app.register(monitor, { ...store.options, flushIntervalMs: 20, defaultMonitorLevel: 2, outliers: { minSamples: 20, window: 40, minDurationMs: 50, maxPerEndpointHour: cap }, dashboard: false })
    // a client-controlled delay before routing: what a slowly sent request costs, on matched and unmatched routes alike
    app.addHook('onRequest', async (request) => {
      const ms = Number(request.headers['x-delay-ms'] ?? 0)
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms))
    })
    app.get('/fast', async () => 'fast')
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    const db = app.monitor.db
    const outliersOf = async (route: string): Promise<Array<{ duration_ms: number }>> => {
      const endpoint = await db.selectFrom('endpoint').select('id').where('route', '=', route).executeTakeFirst()
      return endpoint === undefined ? [] : await db.selectFrom('outlier').select('duration_ms').where('endpoint_id', '=', endpoint.id).execute()
    }
    for (const url of ['/fast', '/nowhere']) {
      for (let i = 0; i < 25; i++) await app.inject(url)
      // far above the sub-millisecond mean, far under the floor (a timer late by 47 ms would be needed to cross it)
      for (let i = 0; i < 5; i++) await app.inject({ url, headers: { 'x-delay-ms': '3' } })
    }
    // above the floor: the first three fill the cap, then only slower ones replace the fastest kept
    for (const ms of [100, 150, 200, 80, 300, 120, 400]) await app.inject({ url: '/nowhere', headers: { 'x-delay-ms': String(ms) } })
    const kept = async (): Promise<number[]> => (await outliersOf('__unmatched__')).map((o) => o.duration_ms).sort((a, b) => a - b)
    t.ok(await until(async () => { await app.monitor.flush(); const k = await kept(); return k.length === cap && k[0]! >= 190 }, 20_000), '404 outliers above the floor are kept')
    // an outlier's evidence waits for the sampler's next rotation (1 s): wait past it before counting
    await new Promise((resolve) => setTimeout(resolve, 1_300))
    await app.monitor.flush()
    const durations = await kept()
    t.equal(durations.length, cap, `the cap holds (${durations.map((d) => d.toFixed(0)).join(', ')} ms kept)`)
    t.ok(durations[0]! >= 190, 'the kept ones are the slowest three (200, 300, 400 ms), not the first three')
    t.ok((await outliersOf('/fast')).every((o) => o.duration_ms >= 50), 'no outlier of the fast endpoint is under the floor')

    // what was counted as found: only requests at or above the floor (every request is stored at level 2, so
    // they can be counted), never the 3 ms ones that are 2.5× their endpoint's mean. A machine stall may make
    // another request slow, during warm-up too (not judged yet): hence at most, not exactly.
    const metrics = (await app.inject('/metrics')).body
    for (const route of ['/fast', '__unmatched__']) {
      const id = (await db.selectFrom('endpoint').select('id').where('route', '=', route).executeTakeFirstOrThrow()).id
      const aboveFloor = (await db.selectFrom('request').select('duration_ms').where('endpoint_id', '=', id).where('duration_ms', '>=', 50).execute()).length
      const hours = await db.selectFrom('outlier_hour').select(['found', 'stored']).where('endpoint_id', '=', id).execute()
      const found = hours.reduce((sum, h) => sum + Number(h.found), 0)
      const stored = hours.reduce((sum, h) => sum + Number(h.stored), 0)
      t.ok(found <= aboveFloor, `${route}: ${found} found, of ${aboveFloor} requests above the floor`)
      if (route === '__unmatched__') t.ok(found >= 7, 'the seven slow 404s are all found')
      t.equal(stored, Math.min(cap, found), `${route}: stored counts what is kept`)
      const counted = new RegExp(`fastify_monitor_outliers_total\\{method="[^"]+",route="${route}"\\} (\\d+)`).exec(metrics)?.[1]
      t.equal(Number(counted ?? 0), found, `${route}: the metric counts the same`)
    }
  })
}

t.test('outliers.minDurationMs is validated with a coded error naming it', async (t) => {
  for (const bad of [-1, 'five', Number.NaN, 1e9]) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(monitor, { dataDir: 'memory://', outliers: { minDurationMs: bad as number } }); await app.ready() },
      { code: 'FST_MONITORING_INVALID_OPTION', message: /"outliers\.minDurationMs" option/ })
  }
  for (const [name, bad] of [['adminOnlyRequestValues', 'yes'], ['redact', 'token'], ['keep', [1]], ['appRoot', '']] as const) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(monitor, { dataDir: 'memory://', outliers: { [name]: bad } as never }); await app.ready() },
      { code: 'FST_MONITORING_INVALID_OPTION', message: new RegExp(`"outliers\\.${name}" option`) })
  }
})
