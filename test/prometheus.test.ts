import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { DIALECTS, backend, buildApp, until } from './helpers.js'
import { startPrometheus } from './prometheus-server.js'
import { UNMATCHED_ROUTE } from '../lib/index.js'

// Real binaries (Debian's prometheus package; .ci/run installs it when absent).
const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname
const prom = (path: string): string => join(root, 'prometheus', path)

t.test('promtool accepts the shipped config and rules, and their unit tests pass', async (t) => {
  const config = await run('promtool', ['check', 'config', prom('prometheus.yml')])
  t.match(config.stdout, /SUCCESS: .*prometheus.yml is valid/)
  t.match(config.stdout, /rules\/database\.yml/, 'the config loads the database rules')
  const rules = await run('promtool', ['check', 'rules', prom('rules/recording.yml'), prom('rules/alerts.yml'), prom('rules/database.yml')])
  t.match(rules.stdout, /SUCCESS: 8 rules found[\s\S]*SUCCESS: 6 rules found[\s\S]*SUCCESS: 8 rules found/)
  for (const file of ['tests/alerts.test.yml', 'tests/database.test.yml']) {
    const tests = await run('promtool', ['test', 'rules', prom(file)])
    t.match(tests.stdout, /SUCCESS/, file)
  }
})

t.test('promtool check metrics finds no problem in the plugin\'s series', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const app = await buildApp(store.options)
  t.teardown(() => app.close())
  await app.ready()
  for (let i = 0; i < 5; i++) await app.inject(`/users/${i}`)
  await app.inject('/nope')
  const body = (await app.inject('/metrics')).body
  const checker = spawn('promtool', ['check', 'metrics'])
  let report = ''
  checker.stdout.on('data', (chunk) => { report += chunk })
  checker.stderr.on('data', (chunk) => { report += chunk })
  checker.stdin.end(body)
  await new Promise((resolve) => checker.once('close', resolve))
  // prom-client's default nodejs_*/process_* names are what community boards expect: exempt
  const problems = report.split('\n').filter((line) => line.trim() !== '' && !/^(nodejs_|process_)/.test(line.trim()))
  t.same(problems, [], 'no lint problem outside the default runtime metrics')
})

t.test('a real Prometheus scrapes exactly the traffic sent, and every recording rule returns data', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const app = await buildApp(store.options)
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const appPort = (app.server.address() as { port: number }).port

  const prometheus = await startPrometheus({ jobs: { app: `127.0.0.1:${appPort}` }, ruleFiles: [prom('rules/recording.yml')] })
  t.teardown(prometheus.stop)
  const query = prometheus.query
  t.ok(await until(async () => (await query('up{job="app"} == 1').catch(() => [])).length === 1, 30_000), 'Prometheus scrapes the app')

  const base = `http://127.0.0.1:${appPort}`
  const sent: Record<string, number> = {}
  const send = async (method: string, path: string, key: string): Promise<void> => {
    await (await fetch(base + path, { method, body: method === 'POST' ? '{}' : undefined, headers: method === 'POST' ? { 'content-type': 'application/json' } : {} })).arrayBuffer()
    sent[key] = (sent[key] ?? 0) + 1
  }
  for (let i = 0; i < 30; i++) await send('GET', `/users/${i}`, '/users/:id 200')
  for (let i = 0; i < 7; i++) await send('GET', '/fail', '/fail 500')
  for (let i = 0; i < 5; i++) await send('POST', '/users', '/users 201')
  for (let i = 0; i < 4; i++) await send('GET', `/missing/${i}`, `${UNMATCHED_ROUTE} 404`)

  const scraped = async (): Promise<Record<string, number>> => Object.fromEntries((await query('sum by (route, status_code) (http_request_duration_seconds_count{job="app"})'))
    .map((r) => [`${r.metric.route} ${r.metric.status_code}`, Number(r.value[1])]))
  t.ok(await until(async () => JSON.stringify(Object.entries(await scraped()).sort()) === JSON.stringify(Object.entries(sent).sort()), 30_000),
    'per route and status, Prometheus holds exactly the requests sent')
  t.same(await scraped(), sent)

  const rules = ['instance_method_route:http_requests:rate5m', 'instance_method_route_status:http_requests:rate5m',
    'instance_method_route_le:http_request_duration_seconds_bucket:rate5m', 'job_method_route:http_requests:rate5m',
    'job_method_route:http_request_errors:ratio_rate5m', 'job_method_route:http_request_duration_seconds:p50_5m',
    'job_method_route:http_request_duration_seconds:p95_5m', 'job_method_route:http_request_duration_seconds:p99_5m']
  t.same((await prometheus.rules()).map((r) => r.name), rules, 'every recording rule is loaded')
  for (const rule of rules) {
    t.ok(await until(async () => (await query(`${rule}{job="app"}`)).length > 0, 30_000), `${rule} returns data`)
    // GET and POST of one route are two endpoints; instance_* rules let a board filter by instance
    const series = await query(`${rule}{job="app"}`)
    t.ok(series.every((s) => s.metric.method === (s.metric.route === '/users' ? 'POST' : 'GET')), `${rule} keeps the method`)
    if (rule.startsWith('instance_')) t.ok(series.every((s) => s.metric.instance === `127.0.0.1:${appPort}`), `${rule} keeps the instance`)
  }
  // rate() cannot see the increase that created a series: more failures once it exists
  for (let i = 0; i < 5; i++) await send('GET', '/fail', '/fail 500')
  t.ok(await until(async () => {
    const ratio = await query('job_method_route:http_request_errors:ratio_rate5m{job="app",route="/fail"}')
    return ratio.length === 1 && Number(ratio[0]!.value[1]) === 1
  }, 30_000), 'the error ratio of /fail is 1: all its requests are 5xx')
})

t.test('the default buckets resolve a sub-millisecond route, and Prometheus run with the compose stack\'s flags keeps its exemplars', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const app = await buildApp(store.options)
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const appPort = (app.server.address() as { port: number }).port
  // the flags docker-compose.yml gives Prometheus (exemplar storage), so the stack's setting is the one tested
  const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8')
  const flags = [...compose.matchAll(/^\s+- (--enable-feature=\S+)$/gm)].map((m) => m[1]!)
  t.same(flags, ['--enable-feature=exemplar-storage'], 'the compose Prometheus stores exemplars')
  const prometheus = await startPrometheus({ jobs: { app: `127.0.0.1:${appPort}` }, flags })
  t.teardown(prometheus.stop)
  const query = prometheus.query

  const n = 200
  for (let i = 0; i < n; i++) await (await fetch(`http://127.0.0.1:${appPort}/users/${i}`)).arrayBuffer()
  await app.monitor.flush()
  const durations = (await app.monitor.db.selectFrom('request as r').innerJoin('endpoint as e', 'e.id', 'r.endpoint_id')
    .select('r.duration_ms').where('e.route', '=', '/users/:id').execute()).map((r) => r.duration_ms).sort((a, b) => a - b)
  t.equal(durations.length, n)
  const selector = 'http_request_duration_seconds_bucket{job="app",route="/users/:id"}'
  t.ok(await until(async () => Number((await query(`sum(http_request_duration_seconds_count{job="app",route="/users/:id"})`))[0]?.value[1]) === n, 30_000), 'Prometheus has every request')
  for (const q of [0.5, 0.95]) {
    const exactS = durations[Math.ceil(q * n) - 1]! / 1000
    const promS = Number((await query(`histogram_quantile(${q}, sum by (le) (${selector}))`))[0]!.value[1])
    // with buckets at most 2.5× apart, the interpolated quantile is within a factor 2.5 of the exact one;
    // prom-client's defaults (from 5 ms) read ~2.5 ms for a 0.1 ms median
    t.ok(promS / exactS > 1 / 2.5 && promS / exactS < 2.5, `p${q * 100}: Prometheus ${(promS * 1000).toFixed(3)} ms, exact ${(exactS * 1000).toFixed(3)} ms`)
  }

  const exemplars = async (): Promise<Array<{ labels: Record<string, string> }>> => (await prometheus.exemplars(selector, 600)).flatMap((s) => s.exemplars)
  t.ok(await until(async () => (await exemplars()).length > 0, 30_000), 'Prometheus stored exemplars of the route')
  t.ok((await exemplars()).every((e) => /^[^:]+:\d+$/.test(e.labels.request_id ?? '')), 'each names a stored request (request_id = <instance token>:<seq>)')
})
