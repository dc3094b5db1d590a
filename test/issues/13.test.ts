// Issue #13, items 2 and 4: no secret in outlier evidence (stored, API, UI), request values for admins
// only, and a grouped profile that cannot block the host's event loop.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import monitor from '../../lib/index.js'
import { DIALECTS, ONE_DIALECT, backend, until } from '../helpers.js'
import { openDashboard } from '../browser.js'
import type { CallTree } from '../../lib/profiling/sampler.js'

const users = [
  { username: 'root', password: 'root-password', role: 'admin' as const },
  { username: 'visitor', password: 'visitor-password', role: 'guest' as const }
]
async function cookieOf (app: FastifyInstance, username: string): Promise<string> {
  const user = users.find((u) => u.username === username)!
  // configured users are provisioned once the database is ready (a login before that is a 401, and counts
  // against the login rate limit): wait for the row, then log in once
  await until(async () => (await app.monitor.db.selectFrom('dashboard_user').select('username').where('username', '=', username).executeTakeFirst()) !== undefined, 20_000, 50)
  const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: username, password: user.password } })
  const cookie = String(login.headers['set-cookie']).split(';')[0]!
  return cookie
}

/** Every secret sent with the slow request; none may be stored or shown. */
const SECRETS = ['tok-query-1', 'tok-query-2', 'tok-query-3', 'tok-header-1', 'tok-header-2', 'tok-header-3', 'tok-body-pw', '4111 1111 1111 1111', '5500000000000004', 'tok-form-pw']
const SECRET_PATTERN = new RegExp(SECRETS.join('|'))

for (const dialect of DIALECTS) {
  t.test(`${dialect}: secrets never reach the stored outlier, the API or the UI; guests get no request values`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false })
    await app.register(monitor, { ...store.options, flushIntervalMs: 20, defaultMonitorLevel: 2, metrics: false, outliers: { minSamples: 20, window: 50 }, dashboard: { users, sessionSecret: 's'.repeat(40) } })
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })
    app.post<{ Querystring: { ms?: string } }>('/pay', async (request) => {
      await new Promise((resolve) => setTimeout(resolve, Number(request.query.ms ?? 0)))
      return 'paid'
    })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    for (let i = 0; i < 25; i++) await app.inject({ method: 'POST', url: '/pay', payload: { n: i } })
    const sendSecrets = async (): Promise<void> => {
      await app.inject({
        method: 'POST',
        url: '/pay?ms=300&token=tok-query-1&access_token=tok-query-2&password=tok-query-3&order=42',
        headers: { 'x-auth-token': 'tok-header-1', 'x-access-token': 'tok-header-2', 'x-csrf-token': 'tok-header-3', 'x-request-id': 'req-7' },
        payload: { user: 'ann', password: 'tok-body-pw', card: '4111 1111 1111 1111', payment: { number: 5500000000000004 } }
      })
      await app.inject({ method: 'POST', url: '/pay?ms=300', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'user=ann&password=tok-form-pw' })
    }
    const db = app.monitor.db
    const id = (await db.selectFrom('endpoint').select('id').where('route', '=', '/pay').executeTakeFirstOrThrow()).id
    const slowOnes = async (): Promise<Array<{ request: unknown }>> => await db.selectFrom('outlier').select('request').where('endpoint_id', '=', id).where('duration_ms', '>=', 250).execute()
    const bothKinds = async (): Promise<boolean> => {
      const urls = (await slowOnes()).map((o) => (o.request as { url: string }).url)
      return urls.some((url) => url.includes('token')) && urls.some((url) => !url.includes('token'))
    }
    // a stall of the loaded machine during warm-up can lift the threshold above the slow requests: send again
    let sent = 0
    t.ok(await until(async () => {
      if (sent++ % 40 === 0) await sendSecrets()
      await app.monitor.flush()
      return await bothKinds()
    }, 60_000, 100), 'both slow requests are outliers')
    const stored = JSON.stringify(await db.selectFrom('outlier').selectAll().where('endpoint_id', '=', id).execute())
    t.notMatch(stored, SECRET_PATTERN, 'no secret in any stored outlier row')
    t.match(stored, /req-7/, 'other headers are kept')
    t.match(stored, /order=42/, 'and other query parameters')

    const admin = await cookieOf(app, 'root')
    const list = await app.inject({ url: `/dashboard/api/endpoints/${id}/outliers`, headers: { cookie: admin } })
    t.notMatch(list.body, SECRET_PATTERN, 'no secret in the list')
    if (list.statusCode !== 200) t.fail(list.body)
    const slow = (list.json() as { rows: Array<{ id: string, url: string }> }).rows.filter((r) => r.url.includes('token'))
    t.ok(slow.length >= 1, 'the list has the outlier with secrets in its query')
    const detail = await app.inject({ url: `/dashboard/api/outliers/${slow[0]!.id}`, headers: { cookie: admin } })
    t.notMatch(detail.body, SECRET_PATTERN, 'no secret in the evidence an admin reads')
    const evidence = detail.json() as { request: { headers: Record<string, string>, query: Record<string, string>, body: string, url: string } }
    for (const name of ['x-auth-token', 'x-access-token', 'x-csrf-token']) t.equal(evidence.request.headers[name], '[redacted]', `${name} redacted`)
    t.same(evidence.request.query, { ms: '300', token: '[redacted]', access_token: '[redacted]', password: '[redacted]', order: '42' })
    t.match(JSON.parse(evidence.request.body), { user: 'ann', password: '[redacted]', card: '[redacted]', payment: { number: '[redacted]' } })

    const guest = await cookieOf(app, 'visitor')
    const guestList = (await app.inject({ url: `/dashboard/api/endpoints/${id}/outliers`, headers: { cookie: guest } })).json() as { requestValues: boolean, rows: Array<{ id: string, url: string }> }
    t.equal(guestList.requestValues, false, 'the list says request values are withheld')
    t.ok(guestList.rows.every((r) => !r.url.includes('?')), 'a guest sees paths without query strings')
    const guestDetail = (await app.inject({ url: `/dashboard/api/outliers/${slow[0]!.id}`, headers: { cookie: guest } })).json() as { request: Record<string, unknown>, phases: unknown, stacks: unknown }
    t.same(guestDetail.request, { method: 'POST', url: '/pay', hidden: true }, 'a guest gets no headers, query, params, body or IP')
    t.ok(guestDetail.phases !== undefined && guestDetail.stacks !== undefined, 'but the rest of the evidence')

    // the page is the same whichever backend answered the API (its replies are checked above, on both)
    if (ONE_DIALECT.includes(dialect)) {
      // the admin's view in the browser: expanded evidence, nothing secret on the page
      const ui = await openDashboard(t, app, users[0]!, `#/endpoint/${id}?tab=outliers`)
      await ui.waitForSelector('[data-testid=outliers-table]')
      await ui.click('[data-testid=outliers-table] tbody tr:first-child button')
      await ui.waitForSelector('[data-testid=evidence] h3')
      const page = await ui.textContent('body')
      t.notMatch(page, SECRET_PATTERN, 'no secret on the dashboard page')
      t.match(page, /\[redacted\]/, 'redacted values show as such')
    }
  })
}

/** A synthetic call tree: `chains` chains of `depth` app functions, named per `variant` so paths differ between trees. */
function syntheticTree (variant: number, chains = 10, depth = 10): CallTree {
  const frames: CallTree['frames'] = []
  const nodes: CallTree['nodes'] = []
  for (let c = 0; c < chains; c++) {
    let parent = -1
    for (let d = 0; d < depth; d++) {
      frames.push({ functionName: `fn_${variant}_${c}_${d}`, url: 'app/work.js', line: d + 1 })
      nodes.push([frames.length - 1, parent, d === depth - 1 ? 900 : 0, 900])
      parent = nodes.length - 1
    }
  }
  return { intervalUs: 1000, samples: chains, concurrent: 0, frames, nodes }
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]!
}

for (const dialect of ONE_DIALECT) {
  t.test(`${dialect}: grouped profiles of 1,000 call trees do not block the host's requests`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false })
    await app.register(monitor, { ...store.options, flushIntervalMs: 20, defaultMonitorLevel: 1, metrics: false, dashboard: { users, sessionSecret: 's'.repeat(40) } })
    app.get('/plain', async () => 'plain')
    app.get('/profiled', async () => 'profiled')
    t.teardown(() => app.close())
    await app.listen({ port: 0, host: '127.0.0.1' })
    await app.monitor.ready
    await app.inject('/profiled')
    const db = app.monitor.db
    await until(async () => (await db.selectFrom('endpoint').select('id').where('route', '=', '/profiled').executeTakeFirst()) !== undefined)
    const endpointId = (await db.selectFrom('endpoint').select('id').where('route', '=', '/profiled').executeTakeFirstOrThrow()).id
    const { id: versionId } = await db.selectFrom('version').select('id').executeTakeFirstOrThrow()
    const { id: instanceId } = await db.selectFrom('instance').select('id').executeTakeFirstOrThrow()
    for (let batch = 0; batch < 10; batch++) {
      await db.insertInto('profile').values(Array.from({ length: 100 }, (_, i) => ({
        endpoint_id: endpointId, time_requested: new Date(Date.now() - (batch * 100 + i) * 1000), duration_ms: 10, version_id: versionId, instance_id: instanceId,
        tree: JSON.stringify(syntheticTree((batch * 100 + i) % 100))
      }))).execute()
    }
    const cookie = await cookieOf(app, 'visitor')
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const profileCall = async (): Promise<number> => {
      const started = performance.now()
      const reply = await fetch(`${base}/dashboard/api/endpoints/${endpointId}/profile?n=1000&libraries=expand`, { headers: { cookie } })
      const body = await reply.json() as { requests: number }
      t.equal(body.requests, 1000, 'the call merges the 1,000 trees')
      return performance.now() - started
    }
    await profileCall()

    // a plain route's latency while guests ask for grouped profiles, two at a time
    const callDurations: number[] = []
    const plainLatencies: number[] = []
    let profiling = true
    const guests = Promise.all([0, 1].map(async () => { for (let i = 0; i < 5; i++) callDurations.push(await profileCall()) })).finally(() => { profiling = false })
    while (profiling) {
      const started = performance.now()
      await (await fetch(`${base}/plain`)).text()
      plainLatencies.push(performance.now() - started)
    }
    await guests
    const p95 = percentile(plainLatencies, 95)
    const callMedian = percentile(callDurations, 50)
    // merged on the request thread, a plain request waits behind whole merges: its p95 is about a call's
    // duration; off it, a plain request only waits for the reply's serialisation
    t.ok(p95 < callMedian / 2, `plain route p95 ${p95.toFixed(1)} ms over ${plainLatencies.length} requests, while a profile call took ${callMedian.toFixed(0)} ms (median)`)
  })
}
