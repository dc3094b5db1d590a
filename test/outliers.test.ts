import t from 'tap'
import Fastify from 'fastify'
import monitor from '../lib/index.js'
import { DIALECTS, backend, until } from './helpers.js'
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
      outliers: { minSamples: 20, window: 100, bodyLimitBytes: 64, redactHeaders: ['X-Session-Token'], envAllowList: ['FMD_TEST_ALLOWED'] },
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
    t.equal(burn.hottestFunction, 'burnCpuForOutlierTest', 'the stack evidence names the CPU-burning function')
    t.equal(burn.stacks.hot[0]!.frame.url, 'test/outliers.test.ts', 'and its file, relative to the app\'s root')
    t.ok(burn.stacks.hot[0]!.frame.line > 0, 'and line')
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

for (const dialect of DIALECTS) {
  t.test(`${dialect}: a burst of 10,000 outliers keeps memory bounded and stores only the cap`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false, bodyLimit: 1 << 20 })
    const cap = 25
    await app.register(monitor, {
      ...store.options,
      // nothing leaves the process until the explicit flush below: what the burst leaves in memory is what is measured
      flushIntervalMs: 60_000,
      defaultMonitorLevel: 2,
      dashboard: false,
      // every other request waits 20 ms, the rest answer at once: with this constant each slow one is an outlier
      outliers: { constant: 1.2, minSamples: 50, window: 2_000, maxPerEndpointHour: cap, bodyLimitBytes: 4_096 }
    })
    app.post<{ Querystring: { slow?: string } }>('/burst', async (request) => {
      if (request.query.slow === '1') await new Promise((resolve) => setTimeout(resolve, 20))
      return 'ok'
    })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    const body = 'b'.repeat(4_096)
    const send = async (slow: boolean): Promise<void> => { await app.inject({ method: 'POST', url: slow ? '/burst?slow=1' : '/burst', payload: body, headers: { 'content-type': 'text/plain' } }) }
    for (let i = 0; i < 100; i++) await send(false)

    const { setFlagsFromString } = await import('node:v8')
    const { runInNewContext } = await import('node:vm')
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const heapAfterGc = (): number => { gc(); gc(); return process.memoryUsage().heapUsed }
    const before = heapAfterGc()
    const outliersFound = async (): Promise<number> => {
      const match = /fastify_monitor_outliers_total\{method="POST",route="\/burst"\} (\d+)/.exec((await app.inject('/metrics')).body)
      return Number(match?.[1] ?? 0)
    }
    // 200 at a time, half of them slow, until 10,000 outliers were found
    let rounds = 0
    while (await outliersFound() < 10_000 && rounds++ < 200) {
      await Promise.all(Array.from({ length: 200 }, async (_, i) => { await send(i % 2 === 0) }))
    }
    const found = await outliersFound()
    t.ok(found >= 10_000, `${found} outliers found in ${rounds} rounds of 200 requests`)
    // the kept ones wait for their stacks (the sampler's next rotation)
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const grownMb = (heapAfterGc() - before) / 1e6
    // a recorder holding every outlier's evidence (a 4 KB body each) would keep over 40 MB
    t.ok(grownMb < 10, `the heap grew ${grownMb.toFixed(1)} MB with ${found} outliers pending`)

    await app.monitor.flush()
    const db = app.monitor.db
    const id = (await db.selectFrom('endpoint').select('id').where('route', '=', '/burst').executeTakeFirstOrThrow()).id
    const hours = await db.selectFrom('outlier_hour').select(['found', 'stored']).where('endpoint_id', '=', id).execute()
    const total = hours.reduce((sum, h) => ({ found: sum.found + Number(h.found), stored: sum.stored + Number(h.stored) }), { found: 0, stored: 0 })
    // the burst may cross an hour: the cap holds per hour
    t.ok(total.stored >= 1 && total.stored <= cap * hours.length, `stored ${total.stored}, at most ${cap} per hour over ${hours.length} hour(s)`)
    t.equal(total.found, found, 'every outlier found is counted in the database')
    t.equal((await db.selectFrom('outlier').select('id').where('endpoint_id', '=', id).execute()).length, total.stored, 'and only the kept ones have rows')
    t.equal(app.monitor.stats().dropped, 0, 'no request record was dropped')
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

/** Level 3's known call path: the grouped profile must show heavyWorkForProfileTest → innerHotLoopForProfileTest. */
function innerHotLoopForProfileTest (ms: number): number {
  const end = performance.now() + ms
  let n = 0
  while (performance.now() < end) n++
  return n
}
function heavyWorkForProfileTest (ms: number): number {
  return innerHotLoopForProfileTest(ms)
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: level 3 keeps a call tree per profiled request and groups them per endpoint`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false })
    await app.register(monitor, {
      ...store.options,
      flushIntervalMs: 20,
      defaultMonitorLevel: 3,
      metrics: false,
      outliers: { profileShare: 1 },
      dashboard: { users: [{ username: 'root', password: 'root-password', role: 'admin' }], sessionSecret: 's'.repeat(40) }
    })
    // 40 ms: on a loaded machine the profiler's own thread can be kept off the CPU for a shorter request, leaving it no sample
    app.get('/heavy', async () => ({ n: heavyWorkForProfileTest(40) }))
    app.get('/light', async () => 'light')
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    const db = app.monitor.db
    await app.inject('/heavy')
    await until(async () => (await db.selectFrom('endpoint').select('id').where('route', '=', '/heavy').executeTakeFirst()) !== undefined)
    const heavyId = (await db.selectFrom('endpoint').select('id').where('route', '=', '/heavy').executeTakeFirstOrThrow()).id
    // a request the sampler's thread got no tick in (a loaded machine) keeps no tree: ask until ten have one
    let sent = 1
    t.ok(await until(async () => {
      await app.monitor.flush()
      if ((await db.selectFrom('profile').select('id').where('endpoint_id', '=', heavyId).execute()).length >= 10) return true
      if (sent < 60) { sent++; await app.inject('/heavy') }
      return false
    }, 60_000, 20), 'profiled requests keep their call trees')
    const profiledMs = (await db.selectFrom('profile').select('duration_ms').where('endpoint_id', '=', heavyId).execute()).map((p) => p.duration_ms)

    const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: 'root', password: 'root-password' } })
    const cookie = String(login.headers['set-cookie']).split(';')[0]!
    const grouped = (await app.inject({ url: `/dashboard/api/endpoints/${heavyId}/profile`, headers: { cookie } })).json() as {
      requests: number
      latest: Array<{ id: string }>
      nodes: Array<{ functionName: string, url: string, line: number, library?: string, functions: number, parent: number, depth: number, hits: number, totalMs: number, meanMs: number, stdDevMs: number, selfMs: number }>
    }
    t.equal(grouped.requests, profiledMs.length)
    // the handler's function; V8 may inline its callee into it, so the callee is checked where it shows
    const heavy = grouped.nodes.reduce((best, node, i) => node.functionName === 'heavyWorkForProfileTest' && (best < 0 || node.hits > grouped.nodes[best]!.hits) ? i : best, -1)
    t.ok(heavy >= 0, 'the grouped profile has the handler\'s function')
    t.equal(grouped.nodes[heavy]!.url, 'test/outliers.test.ts')
    // every kept tree has samples in the handler, and the handler spends all but microseconds in this function
    t.ok(grouped.nodes[heavy]!.hits >= Math.ceil(grouped.requests * 0.7), `in (nearly) every request (${grouped.nodes[heavy]!.hits} of ${grouped.requests})`)
    // the time charged to a request cannot exceed the request's own duration (other requests' samples are not its)
    const longest = Math.max(...profiledMs)
    t.ok(grouped.nodes[heavy]!.meanMs > 0 && grouped.nodes[heavy]!.meanMs <= longest, `mean time per request (${grouped.nodes[heavy]!.meanMs.toFixed(1)} ms, sd ${grouped.nodes[heavy]!.stdDevMs.toFixed(1)}) within the requests' durations (at most ${longest.toFixed(1)} ms)`)
    const inner = grouped.nodes.find((node) => node.functionName === 'innerHotLoopForProfileTest')
    if (inner !== undefined) t.equal(grouped.nodes[inner.parent]?.functionName, 'heavyWorkForProfileTest', 'the callee sits under its caller')
    t.ok(grouped.nodes.every((node, i) => node.parent < i), 'parents come before their children')
    // by default a run of calls inside one library is one row: the handler's function is not buried under Fastify's lifecycle
    t.ok(grouped.nodes.some((node) => node.library === 'fastify' && node.functions > 3), 'Fastify\'s own calls are folded into library rows')
    t.ok(grouped.nodes.every((node) => node.library === undefined || grouped.nodes[node.parent]?.library !== node.library), 'no library row sits right under a row of the same library')
    const expanded = (await app.inject({ url: `/dashboard/api/endpoints/${heavyId}/profile?libraries=expand`, headers: { cookie } })).json() as typeof grouped
    t.notOk(expanded.nodes.some((node) => node.library !== undefined), 'libraries=expand shows every function')
    const heavyExpanded = expanded.nodes.filter((node) => node.functionName === 'heavyWorkForProfileTest').sort((a, b) => b.hits - a.hits)[0]!
    t.ok(grouped.nodes[heavy]!.depth < heavyExpanded.depth, `the handler's function sits at depth ${grouped.nodes[heavy]!.depth} folded, ${heavyExpanded.depth} expanded`)
    t.equal(grouped.nodes[heavy]!.totalMs.toFixed(3), heavyExpanded.totalMs.toFixed(3), 'folding moves no time: the function\'s total is the same')

    const one = (await app.inject({ url: `/dashboard/api/profiles/${grouped.latest[0]!.id}`, headers: { cookie } })).json() as { tree: { frames: Array<{ functionName: string }>, nodes: number[][], samples: number } }
    t.ok(one.tree.frames.some((frame) => /^(heavyWork|innerHotLoop)ForProfileTest$/.test(frame.functionName)), 'a single request\'s tree names the function')
    t.ok(one.tree.samples >= 5)

    // the profiler tab: the grouped table and its sunburst
    const ui = await openDashboard(t, app, { username: 'root', password: 'root-password' }, `#/endpoint/${heavyId}?tab=profiler`)
    await ui.waitForSelector('[data-testid=profile-table]')
    t.ok((await ui.locator('[data-testid=profile-function]').allTextContents()).includes('heavyWorkForProfileTest'), 'the grouped profile table names the function')
    t.ok((await ui.locator('[data-testid=profile-library]').allTextContents()).includes('[fastify]'), 'and shows Fastify as one folded row')
    await ui.waitForTimeout(200)
    t.same(await canvasesDrawn(ui), [true], 'the sunburst is drawn')
    await ui.screenshot({ path: new URL(`./screenshots/${dialect}-profiler.png`, import.meta.url).pathname, fullPage: true })
  })
}
