import t from 'tap'
import Fastify from 'fastify'
import monitor from '../lib/index.js'
import { DIALECTS, ONE_DIALECT, backend, until } from './helpers.js'
import { canvasesDrawn, openDashboard } from './browser.js'

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
    t.equal(grouped.nodes[heavy]!.url, 'test/profiler.test.ts')
    // every kept tree has samples in the handler, and the handler spends all but microseconds in this function
    t.ok(grouped.nodes[heavy]!.hits >= Math.ceil(grouped.requests * 0.7), `in (nearly) every request (${grouped.nodes[heavy]!.hits} of ${grouped.requests})`)
    // the time charged to a request cannot exceed the request's own duration (other requests' samples are not its)
    const longest = Math.max(...profiledMs)
    t.ok(grouped.nodes[heavy]!.meanMs > 0 && grouped.nodes[heavy]!.meanMs <= longest, `mean time per request (${grouped.nodes[heavy]!.meanMs.toFixed(1)} ms, sd ${grouped.nodes[heavy]!.stdDevMs.toFixed(1)}) within the requests' durations (at most ${longest.toFixed(1)} ms)`)
    const inner = grouped.nodes.find((node) => node.functionName === 'innerHotLoopForProfileTest')
    // one assertion either way, so the suite's count does not depend on what V8 inlined
    t.ok(inner === undefined || grouped.nodes[inner.parent]?.functionName === 'heavyWorkForProfileTest',
      `the callee sits under its caller where V8 did not inline it (${inner === undefined ? 'inlined' : `under ${grouped.nodes[inner.parent]?.functionName ?? 'nothing'}`})`)
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

    // the page is the same whichever backend answered the API (its replies are checked above, on both)
    if (ONE_DIALECT.includes(dialect)) {
      // the profiler tab: the grouped table and its sunburst
      const ui = await openDashboard(t, app, { username: 'root', password: 'root-password' }, `#/endpoint/${heavyId}?tab=profiler`)
      await ui.waitForSelector('[data-testid=profile-table]')
      t.ok((await ui.locator('[data-testid=profile-function]').allTextContents()).includes('heavyWorkForProfileTest'), 'the grouped profile table names the function')
      t.ok((await ui.locator('[data-testid=profile-library]').allTextContents()).includes('[fastify]'), 'and shows Fastify as one folded row')
      await ui.waitForTimeout(200)
      t.same(await canvasesDrawn(ui), [true], 'the sunburst is drawn')
      await ui.screenshot({ path: new URL(`./screenshots/${dialect}-profiler.png`, import.meta.url).pathname, fullPage: true })
    }
  })
}
