import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import monitor, { type MonitorOptions } from '../lib/index.js'
import { insertRequests } from '../lib/db/seed.js'
import { buildReport } from '../lib/queries/reports.js'
import { parseSelector } from '../lib/reports/selector.js'
import { compareSides, DEFAULT_THRESHOLDS, type SideSample } from '../lib/reports/compare.js'
import { reportText } from '../lib/cli/main.js'
import { reportHtml } from '../lib/cli/html.js'
import stringWidth from 'string-width'
import { histogramOf, mannWhitneyU, ksTwoSample, quantile } from '../lib/reports/stats.js'
import { bucketOf, bucketValue } from '../lib/db/rollup.js'
import { DIALECTS, backend, until } from './helpers.js'
import { syntheticRequests } from './synthetic.js'

// Issue #16 reports: known synthetic latencies. Version v2 is 20% slower on /slower only, fails more on
// /failing only, and is the same distribution (other draws) on /same; two days with the same
// distribution are compared as ranges. Only the changed endpoints may be flagged.
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const HOUR_MS = 3_600_000

async function reportApp (options: MonitorOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(monitor, { flushIntervalMs: 20, appVersion: 'live', metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) }, ...options })
  for (const route of ['/slower', '/same', '/failing', '/quiet']) app.get(route, async () => 'ok')
  await app.ready()
  await app.monitor.ready
  await until(async () => (await app.monitor.db.selectFrom('endpoint').select('id').execute()).length >= 4)
  return app
}

async function ids (app: FastifyInstance): Promise<Record<string, number>> {
  const rows = await app.monitor.db.selectFrom('endpoint').select(['id', 'route']).execute()
  return Object.fromEntries(rows.map((row) => [row.route, row.id]))
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: a report flags the changed endpoints only, with the p-values of the rows stored`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await reportApp(store.options)
    t.teardown(() => app.close())
    const endpoint = await ids(app)
    const start = Date.UTC(2026, 10, 20)
    const rows = syntheticRequests(endpoint, start)
    await insertRequests(app.monitor.db, rows)

    const report = await buildReport(app.monitor.db, { kind: 'version', version: 'v1' }, { kind: 'version', version: 'v2' })
    const byRoute = Object.fromEntries(report.endpoints.map((e) => [e.route, e]))
    t.equal(byRoute['/slower']!.verdict, 'regression', `20% slower is a regression: ${byRoute['/slower']!.reasons.join('; ')}`)
    t.equal(byRoute['/same']!.verdict, 'no change', `the same distribution is not flagged (p = ${byRoute['/same']!.mannWhitney?.p})`)
    t.equal(byRoute['/failing']!.verdict, 'regression', `2% → 12% 5xx is a regression: ${byRoute['/failing']!.reasons.join('; ')}`)
    t.match(byRoute['/failing']!.reasons.join(), /5xx share/)
    t.equal(byRoute['/quiet']!.verdict, 'insufficient data', '5 requests a side are too few')
    t.same(report.summary, { regressions: 2, improvements: 0, unchanged: 1, insufficient: 1 })
    t.same(report.endpoints.slice(0, 2).map((e) => e.verdict), ['regression', 'regression'], 'flagged rows first')
    const shift = byRoute['/slower']!.shift!
    t.ok(shift.low > 0 && shift.low < 8 && shift.high > 8, `the Hodges–Lehmann interval [${shift.low}, ${shift.high}] ms holds the true shift of ≈ 8 ms`)

    // the p-values are those of the stored rows as the rollups keep them: every response's duration,
    // each at its bucket's value
    const bucketed = (route: string, version: string) => histogramOf(rows.filter((r) => r.endpointId === endpoint[route] && r.version === version)
      .map((r) => bucketValue(bucketOf(r.durationMs))))
    for (const route of ['/slower', '/same', '/failing']) {
      const expected = mannWhitneyU(bucketed(route, 'v1'), bucketed(route, 'v2'))
      t.ok(Math.abs(byRoute[route]!.mannWhitney!.p - expected.p) <= 1e-9 * expected.p, `${route}: Mann–Whitney p ${byRoute[route]!.mannWhitney!.p} is that of the seeded values`)
      t.equal(byRoute[route]!.ks!.d, ksTwoSample(bucketed(route, 'v1'), bucketed(route, 'v2')).d)
    }
    const failing = rows.filter((r) => r.endpointId === endpoint['/failing'] && r.version === 'v2')
    t.equal(byRoute['/failing']!.candidate.serverErrorShare, failing.filter((r) => r.statusCode >= 500).length / failing.length, 'the 5xx share of a version, from its hours')

    // swapped: the same change is an improvement
    const back = await buildReport(app.monitor.db, { kind: 'version', version: 'v2' }, { kind: 'version', version: 'v1' })
    t.equal(back.endpoints.find((e) => e.route === '/slower')!.verdict, 'improvement')

    // ranges: the first and second six hours of v1 are the same distribution
    const range = (from: number, to: number) => ({ kind: 'range' as const, from: new Date(start + from * HOUR_MS), to: new Date(start + to * HOUR_MS) })
    const same = await buildReport(app.monitor.db, range(0, 6), range(6, 12))
    t.equal(same.summary.regressions + same.summary.improvements, 0, 'two windows of one distribution: nothing flagged')
    const across = await buildReport(app.monitor.db, range(0, 12), range(12, 24))
    t.equal(across.endpoints.find((e) => e.route === '/slower')!.verdict, 'regression', 'the same change found between windows')

    // a window that starts and ends inside hours: whole hours from the rollups, the parts at its edges
    // from the raw rows, so every request in it counts once
    const odd = { kind: 'range' as const, from: new Date(start + 0.5 * HOUR_MS + 1234), to: new Date(start + 13.25 * HOUR_MS) }
    const inOdd = (route: string) => rows.filter((r) => r.endpointId === endpoint[route] && r.time >= odd.from && r.time < odd.to)
    const edges = await buildReport(app.monitor.db, odd, range(13, 24))
    for (const route of ['/slower', '/failing']) {
      const side = edges.endpoints.find((e) => e.route === route)!.baseline
      t.equal(side.hits, inOdd(route).length, `${route}: the hits of a window with partial hours`)
      const exact = histogramOf(inOdd(route).map((r) => bucketValue(bucketOf(r.durationMs))))
      t.equal(side.median, quantile(exact, 0.5), `${route}: its median is the bucketed rows'`)
    }

    // the API: the same report, errors for bad or unknown selections, a session required
    const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: ADMIN.username, password: ADMIN.password } })
    const cookie = String(login.headers['set-cookie']).split(';')[0]!
    const api = async (query: string) => await app.inject({ url: `/dashboard/api/reports?${query}`, headers: { cookie } })
    const res = await api('baseline=version:v1&candidate=version:v2')
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.same(body.summary, report.summary)
    t.same(body.baseline, { label: 'version:v1', from: null, to: null })
    t.equal(body.endpoints[0].verdict, 'regression')
    const windows = await api(`baseline=range:${new Date(start).toISOString()}/${new Date(start + 6 * HOUR_MS).toISOString()}&candidate=range:${new Date(start + 6 * HOUR_MS).toISOString()}/${new Date(start + 12 * HOUR_MS).toISOString()}`)
    t.equal(windows.json().baseline.from, new Date(start).toISOString())
    t.equal((await api('baseline=version:v1&candidate=version:nope')).statusCode, 404)
    t.match((await api('baseline=version:v1&candidate=version:nope')).json().error, /no requests of version "nope"/)
    t.equal((await api('baseline=bogus&candidate=version:v2')).statusCode, 400)
    t.equal((await api('baseline=range:2026-01-02T00:00:00Z/2026-01-01T00:00:00Z&candidate=version:v2')).statusCode, 400)
    t.equal((await api('baseline=version:v1&candidate=version:v2&alpha=0.9')).statusCode, 400)
    t.equal((await app.inject({ url: '/dashboard/api/reports?baseline=version:v1&candidate=version:v2' })).statusCode, 401)
  })
}

t.test('selectors', async (t) => {
  const now = new Date('2026-11-26T15:00:00Z') // a Thursday
  t.same(parseSelector('version:1.5.0'), { kind: 'version', version: '1.5.0' })
  t.same(parseSelector('run:baseline'), { kind: 'run', tag: 'baseline' })
  t.same(parseSelector('yesterday', now), { kind: 'range', from: new Date('2026-11-25T00:00:00Z'), to: new Date('2026-11-26T00:00:00Z') })
  t.same(parseSelector('last-week', now), { kind: 'range', from: new Date('2026-11-16T00:00:00Z'), to: new Date('2026-11-23T00:00:00Z') })
  t.same(parseSelector('this-week', now), { kind: 'range', from: new Date('2026-11-23T00:00:00Z'), to: now })
  t.ok(parseSelector('range:x/y') instanceof Error)
  t.ok(parseSelector('version:') instanceof Error)
})

t.test("the text report aligns its columns by the terminal's columns (CJK takes two, a combining mark none)", async (t) => {
  const side = (ms: number): SideSample => ({ hits: 30, serverErrors: 0, latency: histogramOf(Array<number>(30).fill(ms)) })
  const routes = ['/ascii', '/注文/一覧', '/cafe\u0301', '/😀']
  const endpoints = routes.map((route, i) => ({ endpointId: i, method: 'GET', route, ...compareSides(side(10), side(10)) }))
  const text = reportText({
    baseline: { label: 'version:a', from: null, to: null },
    candidate: { label: 'version:b', from: null, to: null },
    thresholds: DEFAULT_THRESHOLDS,
    endpoints,
    summary: { regressions: 0, improvements: 0, unchanged: routes.length, insufficient: 0 }
  })
  const lines = text.split('\n')
  const header = lines.find((l) => l.startsWith('endpoint'))!
  const column = stringWidth(header.slice(0, header.indexOf('hits A')))
  for (const route of routes) {
    const line = lines.find((l) => l.startsWith(`GET ${route} `))!
    t.equal(stringWidth(line.slice(0, line.indexOf(' 30') + 1)), column, `${route}: hits A starts under its header`)
  }
})

t.test("the HTML report's charts are not squeezed by one slow request", async (t) => {
  const side = (ms: number): SideSample => {
    const durations = Array.from({ length: 60 }, (_, i) => ms * (1 + i / 600))
    durations.push(70.8)
    return { hits: durations.length, serverErrors: 0, latency: histogramOf(durations) }
  }
  const endpoint = { endpointId: 1, method: 'GET', route: '/slow', ...compareSides(side(20), side(30)) }
  const html = reportHtml({
    baseline: { label: 'version:a', from: null, to: null },
    candidate: { label: 'version:b', from: null, to: null },
    thresholds: DEFAULT_THRESHOLDS,
    endpoints: [endpoint],
    summary: { regressions: 1, improvements: 0, unchanged: 0, insufficient: 0 }
  })
  const ends = [...html.matchAll(/text-anchor="end">([\d.]+) ms</g)].map((m) => Number(m[1]))
  t.equal(ends.length, 2, 'both charts label their axis end')
  t.ok(ends.every((end) => end < 45 && end >= endpoint.candidate.p95!), `the axis ends past the p95, well before the slowest request: ${ends.join(', ')} ms`)
  t.equal(html.match(/<title>max 70\.8 ms<\/title>/g)?.length, 2, "each side's slowest request is marked at the axis end")
})
