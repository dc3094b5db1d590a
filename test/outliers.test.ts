import t from 'tap'
import Fastify from 'fastify'
import monitor from '../lib/index.js'
import { DIALECTS, backend, until } from './helpers.js'
import { launchChromium } from './browser.js'

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
  stacks: { samples: number, busyPercent: number, hot: Array<{ frame: { functionName: string, url: string, line: number }, samples: number, stack: Array<{ functionName: string }> }> }
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
      outliers: { minSamples: 20, window: 100, maxPerEndpointHour: 4, bodyLimitBytes: 64, redactHeaders: ['X-Session-Token'], envAllowList: ['FMD_TEST_ALLOWED'] },
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
    const slowOnes = async (): Promise<number> => (await db.selectFrom('outlier').select('id').where('duration_ms', '>=', 150).execute()).length
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
    t.match(burn.stacks.hot[0]!.frame.url, /outliers\.test\.ts$/, 'and its file')
    t.ok(burn.stacks.hot[0]!.frame.line > 0, 'and line')
    t.ok(burn.phases.handler! >= 140, `the time is in the handler (${burn.phases.handler?.toFixed(1)} ms)`)
    t.ok(burn.process.cpuPercent! >= 50, `and on the CPU (${burn.process.cpuPercent}% of a core, process-wide)`)
    t.ok(burn.stacks.busyPercent >= 50, `the main thread was busy (${burn.stacks.busyPercent}% of the samples)`)
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

    // the hourly cap: more outliers are counted, at most 4 per endpoint and hour are kept
    for (let i = 0; i < 8; i++) await app.inject({ method: 'POST', url: '/burn?ms=80' })
    const burnId = await endpointId('/burn')
    t.ok(await until(async () => {
      await app.monitor.flush()
      const row = await db.selectFrom('outlier_hour').select(['found', 'stored']).where('endpoint_id', '=', burnId).executeTakeFirst()
      return row !== undefined && Number(row.found) >= 9 && Number(row.stored) >= 4
    }, 20_000), 'every outlier is counted')
    // kept outliers wait for their stacks (the sampler's next rotation): give a fifth the time to show up
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    await app.monitor.flush()
    const hour = await db.selectFrom('outlier_hour').select(['found', 'stored']).where('endpoint_id', '=', burnId).executeTakeFirstOrThrow()
    t.equal(Number(hour.stored), 4, 'but only the cap is stored')
    t.equal((await db.selectFrom('outlier').select('id').where('endpoint_id', '=', burnId).execute()).length, 4)
    t.ok(Number(hour.found) > Number(hour.stored))
    const metrics = (await app.inject('/metrics')).body
    t.match(metrics, /fastify_monitor_outliers_total\{route="\/burn"\} (9|1\d)/, 'the outliers metric counts them all')
    const page = (await app.inject({ url: `/dashboard/api/endpoints/${burnId}/outliers?pageSize=2`, headers: { cookie } })).json() as { found: number, stored: number, rows: unknown[] }
    t.equal(page.rows.length, 2, 'outliers are paged')
    t.ok(page.found >= 9 && page.stored === 4, `found ${page.found}, stored ${page.stored}`)

    // the dashboard's outliers tab shows the evidence
    await app.listen({ port: 0, host: '127.0.0.1' })
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const ui = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    await ui.goto(`${base}/dashboard/`)
    await ui.fill('input[name=username]', 'root')
    await ui.fill('input[name=password]', 'root-password')
    await ui.click('button[type=submit]')
    await ui.waitForSelector('[data-testid=who]')
    await ui.goto(`${base}/dashboard/#/endpoint/${burnId}?tab=outliers`)
    await ui.waitForSelector('[data-testid=outliers-table]')
    t.ok((await ui.locator('[data-testid=hottest]').allTextContents()).includes('burnCpuForOutlierTest'), 'the outliers table names the busiest function')
    await ui.click('[data-testid=outliers-table] tbody tr:first-child button')
    await ui.waitForSelector('[data-testid=hot-frames] li')
    t.match(await ui.textContent('[data-testid=evidence]'), /\[redacted\]|Handler/, 'the evidence opens')
    await ui.screenshot({ path: new URL(`./screenshots/${dialect}-outliers.png`, import.meta.url).pathname, fullPage: true })
  })
}

t.test('below level 2 no probe runs and nothing is kept', async (t) => {
  const app = Fastify()
  await app.register(monitor, { dataDir: 'memory://', defaultMonitorLevel: 1, metrics: false, dashboard: false, outliers: { minSamples: 5 } })
  app.get('/x', async () => { burnCpuForOutlierTest(Number(0)); return 'x' })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  const { hasSubscribers } = await import('node:diagnostics_channel').then((dc) => ({ hasSubscribers: dc.channel('tracing:fastify.request.handler:start').hasSubscribers }))
  t.equal(hasSubscribers, false, 'no diagnostics-channel subscriber at level 1')
  await app.monitor.setMonitorLevel('GET', '/x', 2)
  const dc = await import('node:diagnostics_channel')
  t.equal(dc.channel('tracing:fastify.request.handler:start').hasSubscribers, true, 'subscribed once an endpoint is at level 2')
  await app.monitor.setMonitorLevel('GET', '/x', 1)
  t.equal(dc.channel('tracing:fastify.request.handler:start').hasSubscribers, false, 'and unsubscribed when none is')
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
    app.get('/heavy', async () => ({ n: heavyWorkForProfileTest(20) }))
    app.get('/light', async () => 'light')
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    for (let i = 0; i < 10; i++) await app.inject('/heavy')
    const db = app.monitor.db
    const heavyId = (await db.selectFrom('endpoint').select('id').where('route', '=', '/heavy').executeTakeFirstOrThrow()).id
    t.ok(await until(async () => {
      await app.monitor.flush()
      return (await db.selectFrom('profile').select('id').where('endpoint_id', '=', heavyId).execute()).length >= 10
    }, 20_000), 'every profiled request has a call tree')

    const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: 'root', password: 'root-password' } })
    const cookie = String(login.headers['set-cookie']).split(';')[0]!
    const grouped = (await app.inject({ url: `/dashboard/api/endpoints/${heavyId}/profile`, headers: { cookie } })).json() as {
      requests: number
      latest: Array<{ id: string }>
      nodes: Array<{ functionName: string, url: string, line: number, parent: number, depth: number, hits: number, totalMs: number, meanMs: number, stdDevMs: number, selfMs: number }>
    }
    t.equal(grouped.requests, 10)
    const heavy = grouped.nodes.findIndex((node) => node.functionName === 'heavyWorkForProfileTest')
    t.ok(heavy >= 0, 'the grouped profile has the handler\'s function')
    const inner = grouped.nodes.find((node) => node.functionName === 'innerHotLoopForProfileTest')!
    t.ok(inner !== undefined && inner.parent === heavy, 'with the function it calls as its child')
    t.match(inner.url, /outliers\.test\.ts$/)
    // a sampling profiler on a loaded 2-core machine misses some ticks: most requests, most of the time
    t.ok(grouped.nodes[heavy]!.hits >= 8, `in (nearly) every request (${grouped.nodes[heavy]!.hits} of 10)`)
    t.ok(inner.meanMs >= 5 && inner.meanMs <= 60, `mean time per request near the 20 ms burnt (${inner.meanMs.toFixed(1)} ms, sd ${inner.stdDevMs.toFixed(1)})`)
    t.ok(inner.totalMs >= 0.8 * grouped.nodes[heavy]!.totalMs, 'the callee holds most of its caller\'s time')
    t.ok(grouped.nodes.every((node, i) => node.parent < i), 'parents come before their children')

    const one = (await app.inject({ url: `/dashboard/api/profiles/${grouped.latest[0]!.id}`, headers: { cookie } })).json() as { tree: { frames: Array<{ functionName: string }>, nodes: number[][], samples: number } }
    t.ok(one.tree.frames.some((frame) => frame.functionName === 'innerHotLoopForProfileTest'), 'a single request\'s tree names the function')
    t.ok(one.tree.samples >= 5)

    // the profiler tab: the grouped table and its sunburst
    await app.listen({ port: 0, host: '127.0.0.1' })
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const ui = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    await ui.goto(`${base}/dashboard/`)
    await ui.fill('input[name=username]', 'root')
    await ui.fill('input[name=password]', 'root-password')
    await ui.click('button[type=submit]')
    await ui.waitForSelector('[data-testid=who]')
    await ui.goto(`${base}/dashboard/#/endpoint/${heavyId}?tab=profiler`)
    await ui.waitForSelector('[data-testid=profile-table]')
    t.ok((await ui.locator('[data-testid=profile-function]').allTextContents()).includes('innerHotLoopForProfileTest'), 'the grouped profile table names the function')
    await ui.waitForTimeout(200)
    const drawn = await ui.$eval('canvas', (canvas) => {
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true
      return false
    })
    t.ok(drawn, 'the sunburst is drawn')
    await ui.screenshot({ path: new URL(`./screenshots/${dialect}-profiler.png`, import.meta.url).pathname, fullPage: true })
  })
}
