import t from 'tap'
import { Counter, Registry } from 'prom-client'
import { DIALECTS, backend, buildApp } from './helpers.js'
import { UNMATCHED_ROUTE } from '../lib/index.js'

const dialect = DIALECTS[0]!

/** `name{labels} value` lines of a Prometheus text exposition, as a map; labels sorted by name (order carries no meaning). */
function parse (text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    const series = line.slice(0, space)
    const brace = series.indexOf('{')
    const key = brace < 0
      ? series
      : `${series.slice(0, brace)}{${series.slice(brace + 1, -1).split(/,(?=[a-z_]+=")/).sort().join(',')}}`
    samples.set(key, Number(line.slice(space + 1)))
  }
  return samples
}

t.test('http_request_duration_seconds counts every request by method, route template and status', async (t) => {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, appVersion: '2.0.0', metrics: { buckets: [0.01, 0.02, 5] } })
  t.teardown(() => app.close())
  await app.ready()
  for (let i = 0; i < 12; i++) await app.inject(`/users/${i}`)
  for (let i = 0; i < 3; i++) await app.inject('/fail')
  for (let i = 0; i < 4; i++) await app.inject({ method: 'POST', url: '/users', payload: {} })
  for (let i = 0; i < 5; i++) await app.inject(`/nope/${i}`)
  await app.inject('/slow')
  await app.inject({ method: 'HEAD', url: '/users/1' })
  await app.inject('/metrics')

  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const samples = parse(res.body)
  const count = (method: string, route: string, status: number): number | undefined =>
    samples.get(`http_request_duration_seconds_count{method="${method}",route="${route}",status_code="${status}"}`)
  t.equal(count('GET', '/users/:id', 200), 12)
  t.equal(count('GET', '/fail', 500), 3)
  t.equal(count('POST', '/users', 201), 4)
  t.equal(count('GET', UNMATCHED_ROUTE, 404), 5, 'unmatched requests share one route label')
  t.equal(count('HEAD', '/users/:id', 200), undefined, 'HEAD is not counted')
  t.notOk([...samples.keys()].some((k) => k.includes('route="/metrics"')), 'scrapes are not counted')
  const bucket = (le: string): number | undefined => samples.get(`http_request_duration_seconds_bucket{le="${le}",method="GET",route="/slow",status_code="200"}`)
  t.equal(bucket('0.01'), 0, 'a 30 ms request is above 10 ms')
  t.equal(bucket('0.02'), 0)
  t.equal(bucket('5'), 1)
  t.equal(bucket('+Inf'), 1)
  const sum = samples.get('http_request_duration_seconds_sum{method="GET",route="/slow",status_code="200"}')!
  t.ok(sum >= 0.029 && sum < 2, `sum ${sum} s`)

  t.equal(samples.get('fastify_monitor_app_info{version="2.0.0"}'), 1, 'the version is an info metric')
  t.notOk([...samples.keys()].some((k) => k.startsWith('http_request') && k.includes('version=')), 'not a label of every series')
  for (const name of ['fastify_monitor_records_buffered', 'fastify_monitor_database_up', 'fastify_monitor_records_written_total',
    'fastify_monitor_records_dropped_total', 'fastify_monitor_write_errors_total', 'fastify_monitor_batch_write_duration_seconds_count']) {
    t.ok(samples.has(name), name)
  }
  t.ok([...samples.keys()].some((k) => k.startsWith('nodejs_eventloop_lag_seconds')), 'default Node.js metrics, unprefixed')
  t.ok([...samples.keys()].some((k) => k.startsWith('process_cpu_user_seconds_total')))

  await app.monitor.flush()
  const after = parse((await app.inject('/metrics')).body)
  t.equal(after.get('fastify_monitor_records_written_total'), 25, 'written records are counted once flushed')
  t.equal(after.get('fastify_monitor_database_up'), 1)
})

t.test('a bearer token guards the metrics; a caller registry carries user metrics; options turn parts off', async (t) => {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const registry = new Registry()
  const cacheHits = new Counter({ name: 'cache_hits_total', help: 'cache hits', registers: [registry] })
  cacheHits.inc(3)
  const app = await buildApp({ ...store.options, metrics: { path: '/internal/metrics', token: 'a-long-secret', registry, defaultMetrics: false } })
  t.teardown(() => app.close())
  await app.ready()
  t.equal((await app.inject('/internal/metrics')).statusCode, 401)
  t.equal((await app.inject({ url: '/internal/metrics', headers: { authorization: 'Bearer wrong-secret!' } })).statusCode, 401)
  const res = await app.inject({ url: '/internal/metrics', headers: { authorization: 'Bearer a-long-secret' } })
  t.equal(res.statusCode, 200)
  t.match(res.body, /^cache_hits_total 3$/m, 'the user metric is served beside ours')
  t.notMatch(res.body, /nodejs_/, 'defaultMetrics: false')
  t.equal(app.monitor.registry, registry)
  t.equal((await app.inject('/metrics')).statusCode, 404)
})

t.test('metrics: false serves nothing; invalid exporter options name the option', async (t) => {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, metrics: false })
  t.teardown(() => app.close())
  await app.ready()
  t.equal((await app.inject('/metrics')).statusCode, 404)
  t.equal(app.monitor.registry, undefined)
  const { resolveOptions } = await import('../lib/options.js')
  t.match((resolveOptions({ metrics: { buckets: [1, 0.5] } }, {}) as Error).message, /"metrics.buckets" option must be a non-empty list of increasing/)
  t.match((resolveOptions({ metrics: 'metrics' }, {}) as Error).message, /"metrics.path" option must start with "\/"/)
  t.match((resolveOptions({ metrics: { token: 'short' } }, {}) as Error).message, /"metrics.token" option/)
  t.match((resolveOptions({ metrics: { colour: 1 } as never }, {}) as Error).message, /"metrics.colour" option is not an option/)
})

t.test('10k requests to random unmatched URLs add one route label value', async (t) => {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const app = await buildApp(store.options)
  t.teardown(() => app.close())
  await app.ready()
  const routesBefore = new Set([...(await app.inject('/metrics')).body.matchAll(/route="([^"]*)"/g)].map((m) => m[1]))
  for (let i = 0; i < 10_000; i++) {
    await app.inject({ url: `/${Math.random().toString(36).slice(2)}/<script>${i}`, headers: { 'x-group': `${i}` } })
  }
  const body = (await app.inject('/metrics')).body
  const routesAfter = new Set([...body.matchAll(/route="([^"]*)"/g)].map((m) => m[1]))
  t.ok(routesAfter.size <= routesBefore.size + 1, `${routesBefore.size} → ${routesAfter.size} route values`)
  t.ok(routesAfter.has(UNMATCHED_ROUTE))
  t.match(body, new RegExp(`http_request_duration_seconds_count\\{method="GET",route="${UNMATCHED_ROUTE}",status_code="404"\\} 10000`))
})

t.test('OpenMetrics when the scraper asks for it, Prometheus text otherwise', async (t) => {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, metrics: { defaultMetrics: false } })
  t.teardown(() => app.close())
  await app.ready()
  for (let i = 0; i < 3; i++) await app.inject('/users/1')
  await app.monitor.flush()
  // the header Prometheus 2.x sends
  const accept = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
  const om = await app.inject({ url: '/metrics', headers: { accept } })
  t.match(om.headers['content-type'], /^application\/openmetrics-text; version=1\.0\.0/)
  t.ok(om.body.endsWith('# EOF\n'), 'ends with # EOF')
  t.match(om.body, /^# TYPE fastify_monitor_records_written counter$/m, 'a counter family is named without _total')
  t.match(om.body, /^fastify_monitor_records_written_total 3$/m, 'its sample with it')
  t.match(om.body, /^# TYPE http_request_duration_seconds histogram$/m)
  t.match(om.body, /^http_request_duration_seconds_count\{method="GET",route="\/users\/:id",status_code="200"\} 3$/m)
  t.match(om.body, /^http_request_duration_seconds_bucket\{method="GET",route="\/users\/:id",status_code="200",le="\+Inf"\} 3$/m)

  // rendering OpenMetrics must not rename anything in the Prometheus format afterwards
  const text = await app.inject('/metrics')
  t.match(text.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(text.body, /^fastify_monitor_records_written_total 3$/m)
  t.match(text.body, /^# TYPE fastify_monitor_records_written_total counter$/m)
  t.notMatch(text.body, /# EOF/)
})

for (const backendName of DIALECTS) {
  t.test(`${backendName}: OpenMetrics buckets carry an exemplar naming a stored request`, async (t) => {
    const { findRequestByExemplarId } = await import('../lib/index.js')
    const store = await backend(backendName)
    t.teardown(store.cleanup)
    const app = await buildApp({ ...store.options, metrics: { defaultMetrics: false, buckets: [0.01, 5] } })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    await app.inject('/slow')
    await app.monitor.setMonitorLevel('GET', '/users/:id', 0)
    await app.inject('/users/1')
    await app.monitor.flush()

    const accept = 'application/openmetrics-text;version=1.0.0'
    const body = (await app.inject({ url: '/metrics', headers: { accept } })).body
    const line = body.split('\n').find((l) => l.startsWith('http_request_duration_seconds_bucket{method="GET",route="/slow"') && l.includes('le="5"'))!
    const match = / # \{request_id="([^"]+)"\} ([0-9.e-]+) ([0-9.]+)$/.exec(line)
    t.ok(match, `the bucket the request fell in has an exemplar: ${line}`)
    const [, requestId, seconds, timestamp] = match!
    t.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 60, 'exemplar timestamp is now, in seconds')
    const stored = await findRequestByExemplarId(app.monitor.db, requestId!)
    t.ok(stored, 'the exemplar resolves to the stored request')
    t.equal(stored!.route, '/slow')
    t.equal(stored!.statusCode, 200)
    t.ok(Math.abs(stored!.durationMs - Number(seconds) * 1000) < 0.01, 'with the same duration')
    const at = new Date(Number(timestamp) * 1000)
    t.same(await findRequestByExemplarId(app.monitor.db, requestId!, at), stored, 'bounded by the exemplar time, the same request')
    t.equal(await findRequestByExemplarId(app.monitor.db, requestId!, new Date(at.getTime() - 7_200_000)), undefined,
      'a bound that excludes the request finds nothing')
    t.notMatch(body.split('\n').filter((l) => l.includes('route="/users/:id"')).join('\n'), /# \{/, 'a level-0 request is not stored, so it is no exemplar')
    t.notMatch((await app.inject('/metrics')).body, /request_id/, 'the Prometheus text format carries no exemplars')
    t.equal(await findRequestByExemplarId(app.monitor.db, "x'; drop table request; --"), undefined)
  })
}
