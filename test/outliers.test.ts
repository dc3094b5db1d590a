import t from 'tap'
import Fastify from 'fastify'
import monitor from '../lib/index.js'
import { DIALECTS, ONE_DIALECT, backend, until } from './helpers.js'
import { canvasesDrawn, openDashboard } from './browser.js'

/** Burns the main thread; its name is what the outlier's stack evidence must show. */
function burnCpuForOutlierTest (ms: number): number {
  const end = performance.now() + ms
  let spins = 0
  while (performance.now() < end) spins++
  return spins
}

interface Evidence {
  durationMs: number
  thresholdMs: number
  hottestFunction: string | null
  request: { method: string, url: string, headers: Record<string, string>, body: string | null, bodyTruncated: boolean, query: Record<string, string> }
  phases: { beforeHandler: number | null, handler: number | null, afterHandler: number | null, total: number }
  process: { cpuPercent: number | null, rssBytes: number, heapUsedBytes: number, eventLoopDelayMaxMs: number, env: Record<string, string> }
  stacks: { samples: number, busyPercent: number, otherBusyPercent: number, attribution: string, hot: Array<{ frame: { functionName: string, url: string, line: number }, samples: number, stack: Array<{ functionName: string }> }> }
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: level 2 keeps outliers with the evidence of why they were slow`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false })
    await app.register(monitor, {
      ...store.options,
      flushIntervalMs: 20,
      defaultMonitorLevel: 2,
      appVersion: 'v-outliers',
      outliers: { stackSampling: 'always', minSamples: 20, window: 100, bodyLimitBytes: 64, redactHeaders: ['X-Session-Token'], envAllowList: ['FMD_TEST_ALLOWED'] },
      dashboard: { users: [{ username: 'root', password: 'root-password', role: 'admin' }], sessionSecret: 's'.repeat(40) }
    })
    process.env.FMD_TEST_ALLOWED = 'visible'
    process.env.FMD_TEST_SECRET = 'never-stored'
    app.post<{ Querystring: { ms?: string } }>('/burn', async (request) => ({ spins: burnCpuForOutlierTest(Number(request.query.ms ?? 0)) }))
    app.get<{ Querystring: { ms?: string } }>('/wait', async (request) => {
      await new Promise((resolve) => setTimeout(resolve, Number(request.query.ms ?? 0)))
      return 'waited'
    })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready

    for (let i = 0; i < 30; i++) {
      await app.inject({ method: 'POST', url: '/burn?ms=0.2', payload: { n: i } })
      await app.inject('/wait?ms=1')
    }
    const secretHeaders = { authorization: 'Bearer top-secret', cookie: 'sid=top-secret', 'x-api-key': 'top-secret', 'x-session-token': 'top-secret', 'x-request-id': 'kept-123' }
    await app.inject({ method: 'POST', url: '/burn?ms=150', headers: secretHeaders, payload: { padding: 'p'.repeat(200) } })
    await app.inject('/wait?ms=150')

    const db = app.monitor.db
    // 140: a 150 ms timer may fire a little early by the high-resolution clock (libuv's loop time is cached, in ms)
    const slowOnes = async (): Promise<number> => (await db.selectFrom('outlier').select('id').where('duration_ms', '>=', 140).execute()).length
    t.ok(await until(async () => { await app.monitor.flush(); return await slowOnes() >= 2 }, 20_000), 'both slow requests are stored as outliers')

    const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: 'root', password: 'root-password' } })
    const cookie = String(login.headers['set-cookie']).split(';')[0]!
    const endpointId = async (route: string): Promise<number> => (await db.selectFrom('endpoint').select('id').where('route', '=', route).executeTakeFirstOrThrow()).id
    const evidenceOf = async (route: string): Promise<Evidence> => {
      // the slowest: warm-up noise (a first GC, a cold path) may add small outliers of its own
      const list = (await app.inject({ url: `/dashboard/api/endpoints/${await endpointId(route)}/outliers`, headers: { cookie } })).json() as { rows: Array<{ id: string, durationMs: number }> }
      const slowest = list.rows.sort((a, b) => b.durationMs - a.durationMs)[0]!
      return (await app.inject({ url: `/dashboard/api/outliers/${slowest.id}`, headers: { cookie } })).json() as Evidence
    }

    const burn = await evidenceOf('/burn')
    t.ok(burn.durationMs >= 150 && burn.durationMs > burn.thresholdMs, `duration ${burn.durationMs.toFixed(1)} ms above the threshold ${burn.thresholdMs.toFixed(2)} ms`)
    t.ok(burn.thresholdMs >= 5, 'the threshold shown is the one that applied: at least minDurationMs (5 ms) on a sub-millisecond endpoint')
    // a major collection during the burn (seen on a loaded CI machine) may outweigh it: V8's pseudo-frames, named in parentheses, are not code
    const hottestCode = burn.stacks.hot.find((h) => !h.frame.functionName.startsWith('('))
    t.equal(hottestCode?.frame.functionName, 'burnCpuForOutlierTest', 'the stack evidence names the CPU-burning function', { hot: burn.stacks.hot.slice(0, 3) })
    t.equal(burn.hottestFunction, burn.stacks.hot[0]!.frame.functionName, 'first, unless a pseudo-frame such as (garbage collector) took more samples')
    t.equal(hottestCode?.frame.url, 'test/outliers.test.ts', 'and its file, relative to the app\'s root')
    t.ok(hottestCode!.frame.line > 0, 'and line')
    t.ok(burn.phases.handler! >= 140, `the time is in the handler (${burn.phases.handler?.toFixed(1)} ms)`)
    // shares of time depend on how the machine schedules this process; what is asserted is where the samples were charged
    t.ok(burn.process.cpuPercent !== null && burn.process.cpuPercent > 0, `and on the CPU (${burn.process.cpuPercent}% of a core, process-wide)`)
    t.equal(burn.stacks.attribution, 'code', 'samples were told apart by the route\'s code')
    t.ok(burn.stacks.samples > 0 && burn.stacks.busyPercent > burn.stacks.otherBusyPercent,
      `the request's own code ran more than anything else during it (${burn.stacks.busyPercent}% vs ${burn.stacks.otherBusyPercent}%)`)
    t.ok(burn.process.eventLoopDelayMaxMs >= 100, `the blocked event loop shows (${burn.process.eventLoopDelayMaxMs} ms)`)
    for (const name of ['authorization', 'cookie', 'x-api-key', 'x-session-token']) t.equal(burn.request.headers[name], '[redacted]', `${name} is redacted`)
    t.equal(burn.request.headers['x-request-id'], 'kept-123', 'other headers are kept')
    t.notMatch(JSON.stringify(burn), /top-secret/, 'no secret anywhere in the evidence')
    t.equal(Buffer.byteLength(burn.request.body!), 64, 'the body is cut at bodyLimitBytes')
    t.equal(burn.request.bodyTruncated, true)
    t.same(burn.request.query, { ms: '150' })
    t.same(burn.process.env, { FMD_TEST_ALLOWED: 'visible' }, 'only allow-listed environment variables')

    const wait = await evidenceOf('/wait')
    t.ok(wait.phases.handler! >= 140, `a timer's wait shows in the handler phase (${wait.phases.handler?.toFixed(1)} ms)`)
    t.ok(wait.stacks.busyPercent < 30, `but the main thread was mostly idle (${wait.stacks.busyPercent}% busy)`)
    t.notOk(wait.stacks.hot.some((h) => h.frame.functionName === 'burnCpuForOutlierTest'), 'and its stacks do not blame the other route')

    const burnId = await endpointId('/burn')
    const metrics = (await app.inject('/metrics')).body
    t.match(metrics, /fastify_monitor_outliers_total\{method="POST",route="\/burn"\} [1-9]/, 'the outliers metric counts them')
    type Box = { count: number, min: number, median: number, max: number }
    const page = (await app.inject({ url: `/dashboard/api/endpoints/${burnId}/outliers?pageSize=1`, headers: { cookie } })).json() as {
      found: number, stored: number, rows: unknown[], resources: { cpuPercent?: Box, rssMb?: Box, heapUsedMb?: Box, eventLoopDelayMs?: Box }
    }
    t.equal(page.rows.length, 1, 'outliers are paged')
    t.ok(page.found >= 1 && page.stored === page.found, `found ${page.found}, stored ${page.stored}`)
    // the resource box plots cover every kept outlier of the range, not only the page
    t.equal(page.resources.rssMb?.count, page.stored, 'RSS distribution over the kept outliers')
    t.ok(page.resources.cpuPercent !== undefined && page.resources.cpuPercent.count === page.stored, `the CPU distribution covers them (max ${page.resources.cpuPercent?.max}%)`)
    t.ok(page.resources.eventLoopDelayMs !== undefined && page.resources.eventLoopDelayMs.max >= 100, 'and so does the event-loop block')
    t.ok(page.resources.heapUsedMb!.max <= page.resources.rssMb!.max, 'heap within RSS')

    // the page is the same whichever backend answered the API (its replies are checked above, on both)
    if (ONE_DIALECT.includes(dialect)) {
      // the dashboard's outliers tab shows the evidence
      const ui = await openDashboard(t, app, { username: 'root', password: 'root-password' }, `#/endpoint/${burnId}?tab=outliers`)
      await ui.waitForSelector('[data-testid=outliers-table]')
      t.ok((await ui.locator('[data-testid=hottest]').allTextContents()).includes('burnCpuForOutlierTest'), 'the outliers table names the busiest function')
      await ui.click('[data-testid=outliers-table] tbody tr:first-child button')
      await ui.waitForSelector('[data-testid=hot-frames] li')
      t.match(await ui.textContent('[data-testid=evidence]'), /\[redacted\]|Handler/, 'the evidence opens')
      await ui.waitForTimeout(300)
      t.same(await canvasesDrawn(ui, '[data-testid=outlier-resources] canvas'), [true, true, true], 'CPU, memory and event-loop box plots are drawn')
      await ui.screenshot({ path: new URL(`./screenshots/${dialect}-outliers.png`, import.meta.url).pathname, fullPage: true })
    }
  })
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: beyond the hourly cap outliers are counted, not kept`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false })
    await app.register(monitor, { ...store.options, flushIntervalMs: 20, defaultMonitorLevel: 2, dashboard: false, outliers: { minSamples: 50, window: 200, maxPerEndpointHour: 3 } })
    app.get<{ Querystring: { ms: string } }>('/capped', async (request) => ({ spins: burnCpuForOutlierTest(Number(request.query.ms)) }))
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    for (let i = 0; i < 60; i++) await app.inject('/capped?ms=0.2')
    for (let i = 0; i < 10; i++) await app.inject('/capped?ms=100')
    const db = app.monitor.db
    const id = (await db.selectFrom('endpoint').select('id').where('route', '=', '/capped').executeTakeFirstOrThrow()).id
    const counts = async (): Promise<{ found: number, stored: number }> => {
      const row = await db.selectFrom('outlier_hour').select(['found', 'stored']).where('endpoint_id', '=', id).executeTakeFirst()
      return { found: Number(row?.found ?? 0), stored: Number(row?.stored ?? 0) }
    }
    t.ok(await until(async () => { await app.monitor.flush(); const c = await counts(); return c.found >= 10 && c.stored >= 3 }, 20_000), 'every outlier is counted')
    // kept outliers wait for their stacks (the sampler's next rotation): give a fourth the time to show up
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    await app.monitor.flush()
    const { found, stored } = await counts()
    t.equal(stored, 3, `only the cap is kept (${found} found)`)
    t.equal((await db.selectFrom('outlier').select('id').where('endpoint_id', '=', id).execute()).length, 3)
    t.match((await app.inject('/metrics')).body, new RegExp(`fastify_monitor_outliers_total\\{method="GET",route="/capped"\\} ${found}\\b`), 'the metric counts them all')
  })
}

t.test('library frames are told from the app\'s own', async (t) => {
  const { libraryOf } = await import('../lib/queries/profiles.js')
  const frame = (url: string, functionName = 'f'): { url: string, functionName: string, line: number } => ({ url, functionName, line: 1 })
  t.equal(libraryOf(frame('file:///srv/app/node_modules/fastify/lib/route.js')), 'fastify')
  t.equal(libraryOf(frame('file:///srv/app/node_modules/@fastify/static/index.js')), '@fastify/static', 'a scoped package whole')
  t.equal(libraryOf(frame('file:///srv/app/node_modules/a/node_modules/b/x.js')), 'a', 'a nested package counts as the one the app installed')
  t.equal(libraryOf(frame('node:internal/process/task_queues')), 'node')
  t.equal(libraryOf(frame('', 'runMicrotasks')), 'node', 'a V8 builtin')
  t.equal(libraryOf(frame('', '(garbage collector)')), null, 'V8\'s pseudo-frames stay visible')
  t.equal(libraryOf(frame('file:///srv/app/routes/users.js')), null, 'the app\'s own code')
})

t.test('below level 2 no probe runs and nothing is kept', async (t) => {
  const app = Fastify()
  await app.register(monitor, { dataDir: 'memory://', defaultMonitorLevel: 1, metrics: false, dashboard: false, outliers: { minSamples: 5 } })
  app.get('/x', async () => { burnCpuForOutlierTest(Number(0)); return 'x' })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  // Fastify builds a diagnostics store for every request of every route while its handler channel has a
  // subscriber: level 2 times handlers in the route's own wrapper instead, so other routes pay nothing
  const dc = await import('node:diagnostics_channel')
  const subscribed = (): boolean => dc.channel('tracing:fastify.request.handler:start').hasSubscribers
  t.equal(subscribed(), false, 'no diagnostics-channel subscriber at level 1')
  await app.monitor.setMonitorLevel('GET', '/x', 2)
  t.equal(subscribed(), false, 'nor at level 2')
  await app.monitor.setMonitorLevel('GET', '/x', 1)
  await t.rejects(async () => { const bad = Fastify(); await bad.register(monitor, { dataDir: 'memory://', outliers: { constant: 0.5 } }); await bad.ready() }, /"outliers.constant" option/)
})

t.test('stackSampling after-outlier: later outliers keep their handler\'s samples, even when V8 inlined the handler into the plugin\'s wrapper before the sampler started', async (t) => {
  const app = Fastify()
  await app.register(monitor, { dataDir: 'memory://', metrics: false, dashboard: false })
  // the loop in the handler itself, as the trial had it: a called function would keep a frame of its own
  app.get('/invoices/:id', async (request) => {
    if ((request.query as { slow?: string }).slow !== undefined) { const end = Date.now() + 150; while (Date.now() < end); }
    return { total: 42 }
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  await app.monitor.setMonitorLevel('GET', '/invoices/:id', 2)
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  // over HTTP, as a new user's trial found it: the first slow request's query differs in shape from the later
  // ones', and every later outlier had 0 samples (V8 had inlined the handler into code the sampler could not see into)
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < (round === 0 ? 60 : 10); i++) await (await fetch(`${base}/invoices/${i}`)).text()
    await (await fetch(round === 0 ? `${base}/invoices/99?slow=1&q=ok` : `${base}/invoices/1?slow=1`)).text()
    // other code of the handler's file runs now and then, as an app's does: the sampler learns the file's URL
    // from it (the inlined handler has no frame of its own to give it, and V8 gives no URL without a debugger)
    if (round === 0) burnCpuForOutlierTest(30)
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  const db = app.monitor.db
  const slow = async (): Promise<Array<{ stacks: any }>> => await db.selectFrom('outlier').select('stacks').where('duration_ms', '>=', 140).orderBy('time_requested').execute()
  t.ok(await until(async () => { await app.monitor.flush(); return (await slow()).length === 4 }, 20_000), 'the four slow requests are outliers')
  const [, ...later] = await slow()
  // on a loaded machine an ordinary request can be an outlier too, before the first slow one: whichever came first started the sampler
  const first = await db.selectFrom('outlier').select('stacks').orderBy('time_requested').executeTakeFirstOrThrow()
  t.equal(first.stacks, null, 'the first outlier started the sampler: no stacks of its own')
  for (const [i, { stacks }] of later.entries()) {
    t.ok(stacks.samples > 0 && stacks.busyPercent > 0, `outlier ${i + 2}: samples attributed (${String(stacks.samples)})`)
    t.match(stacks.hot[0]?.frame.url, /test\/outliers\.test\.ts$/, `outlier ${i + 2}: its hottest frame is the app's own code`)
  }
})
