import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { DIALECTS, POSTGRES_URL, backend, buildApp, tmpDir, until, freePort } from './helpers.js'
import { UNMATCHED_ROUTE } from '../lib/index.js'
import { DEFAULT_BUCKETS_SECONDS } from '../lib/metrics/http-duration.js'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname
const BOARDS = readdirSync(join(root, 'grafana/dashboards')).filter((f) => f.endsWith('.json'))
const boards = BOARDS.map((file) => ({ file, board: JSON.parse(readFileSync(join(root, 'grafana/dashboards', file), 'utf8')) }))
const PROVISIONED: Record<string, string> = { 'fmd-prometheus': 'prometheus', 'fmd-postgres': 'grafana-postgresql-datasource' }

interface Target { refId: string, datasource: { type: string, uid: string }, expr?: string, rawSql?: string }
interface Panel { id: number, title: string, datasource: { type: string, uid: string }, targets: Target[] }
const panelsOf = (board: { panels: Panel[] }): Panel[] => board.panels
const variablesOf = (board: { templating: { list: Array<{ name: string, type: string, query: unknown, datasource?: { type: string, uid: string } }> } }) => board.templating.list

t.test('every board is a Grafana dashboard model (@grafana/schema), references provisioned datasources and uses every variable', async (t) => {
  // type-check each board as a literal against the schema's Dashboard type
  const dir = join(root, 'test/.generated')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'boards.ts')
  writeFileSync(file, `import type { Dashboard } from '@grafana/schema'\n${boards.map(({ board }, i) => `export const board${i} = ${JSON.stringify(board)} satisfies Dashboard\n`).join('')}`)
  const tsc = await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--skipLibCheck',
    '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', file]).then(() => '', (err: { stdout: string }) => err.stdout)
  t.equal(tsc, '', 'the boards satisfy @grafana/schema\'s Dashboard type')
  rmSync(dir, { recursive: true, force: true })

  const datasources = readFileSync(join(root, 'grafana/provisioning/datasources/datasources.yml'), 'utf8')
  for (const [uid, type] of Object.entries(PROVISIONED)) t.match(datasources, new RegExp(`uid: ${uid}\\s+type: ${type}`), `${uid} is provisioned as ${type}`)
  t.match(readFileSync(join(root, 'grafana/provisioning/dashboards/dashboards.yml'), 'utf8'), /path: \/var\/lib\/grafana\/dashboards/)

  const uids = new Set(boards.map(({ board }) => board.uid))
  for (const { file, board } of boards) {
    const variables = variablesOf(board)
    // every datasource is chosen through the board's datasource variable, so the board imports into any Grafana
    // (a fixed uid exists only in the Grafana it was provisioned in); the variable defaults to the provisioned one
    const datasourceVariable = variables.find((v) => v.type === 'datasource') as { name: string, query: string, current: { value: string } } | undefined
    t.ok(datasourceVariable, `${file} has a datasource variable`)
    t.equal(PROVISIONED[datasourceVariable!.current.value], datasourceVariable!.query, `${file}: its default is the provisioned ${datasourceVariable!.query}`)
    const resolve = (ref: { type: string, uid: string }): string | undefined =>
      ref.uid === `\${${datasourceVariable!.name}}` ? datasourceVariable!.query : undefined
    for (const panel of panelsOf(board)) {
      t.equal(resolve(panel.datasource), panel.datasource.type, `${file} "${panel.title}": the ${panel.datasource.type} datasource variable`)
      for (const target of panel.targets) t.equal(resolve(target.datasource), target.datasource.type, `${file} "${panel.title}" ${target.refId}`)
    }
    for (const variable of variables) if (variable.datasource) t.equal(resolve(variable.datasource), variable.datasource.type, `${file} variable ${variable.name}`)
    const text = JSON.stringify(board)
    for (const variable of variables) {
      const uses = text.split(`$${variable.name}`).length - 1 + text.split(`\${${variable.name}}`).length - 1
      t.ok(uses > 0, `${file}: variable ${variable.name} is used`)
    }
    // links between the boards point at existing uids
    for (const match of text.matchAll(/\/d\/([a-z0-9-]+)\//g)) t.ok(uids.has(match[1]!), `${file} links to board ${match[1]}`)
  }
  t.match(JSON.stringify(boards.find((b) => b.board.uid === 'fmd-endpoints')!.board), /\$\{dashboard_url\}\/#\/endpoint\/\$\{__data\.fields\.id\}/, 'a link to the built-in view of the endpoint')
})

t.test('docker-compose.yml passes docker-compose config, and has every service the README names, each with a healthcheck', async (t) => {
  // every secret of the stack is required: set them all (issue #12.2)
  const secrets = { GRAFANA_ADMIN_PASSWORD: 'test-password', SESSION_SECRET: 'x'.repeat(40), DEMO_PASSWORD: 'demo-test-password', POSTGRES_PASSWORD: 'pg-test-password' }
  const env = { ...process.env, BIND_ADDRESS: '', ...secrets }
  const { stdout } = await run('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config'], { env })
  const services = new Map<string, string>()
  let current = ''
  let inServices = false
  for (const line of stdout.split('\n')) {
    if (/^services:/.test(line)) { inServices = true; continue }
    if (/^\S/.test(line)) inServices = false
    const name = /^ {2}([a-z-]+):$/.exec(line)
    if (inServices && name !== null) { current = name[1]!; services.set(current, '') } else if (inServices && current !== '') services.set(current, services.get(current)! + line + '\n')
  }
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const named = [...readme.slice(readme.indexOf('### The docker-compose stack')).matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]!)
  t.same(named.sort(), ['app', 'grafana', 'postgres', 'postgres-exporter', 'prometheus'], 'the README names the five services')
  for (const service of named) {
    t.ok(services.has(service), `${service} is in docker-compose.yml`)
    t.match(services.get(service), /healthcheck:\s+[\s\S]*test:/, `${service} has a healthcheck`)
  }
  t.match(services.get('grafana'), /GF_AUTH_ANONYMOUS_ENABLED: ["']false["']/, 'anonymous Grafana access is off')
  t.match(services.get('grafana'), /GF_SECURITY_ADMIN_PASSWORD: test-password/, 'the admin password comes from the environment')
  for (const name of Object.keys(secrets)) {
    await t.rejects(run('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config', '-q'], { env: { ...env, [name]: '' } }), `no ${name}, no stack`)
  }
  t.notMatch(stdout, /change-this|demo-password/, 'no published default secret')
  t.match(services.get('app'), /FASTIFY_MONITOR_SESSION_SECRET: x{40}/, 'the session secret comes from the environment')
  const published = [...stdout.matchAll(/^ {4}- (\S+:\d+:\d+)\/tcp$/gm)].map((m) => m[1]!)
  t.same(published.sort(), ['127.0.0.1:3000:3000', '127.0.0.1:3001:3000', '127.0.0.1:9090:9090', '127.0.0.1:9187:9187'], 'every port is bound to 127.0.0.1 by default')
  const exposed = (await run('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config'], { env: { ...env, BIND_ADDRESS: '0.0.0.0' } })).stdout
  t.match(exposed, /- 0\.0\.0\.0:3000:3000\/tcp/, 'BIND_ADDRESS publishes them elsewhere')
})

/** The Prometheus bucket (index into the upper bounds) a duration in seconds falls in. */
const bucketIndex = (seconds: number): number => { const i = DEFAULT_BUCKETS_SECONDS.findIndex((le) => seconds <= le); return i < 0 ? DEFAULT_BUCKETS_SECONDS.length : i }

t.test('every panel query runs against the real Prometheus and PostgreSQL, and all three sources agree with the traffic sent', { skip: !DIALECTS.includes('postgres') && 'needs the PostgreSQL backend' }, async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  const admin = { username: 'root', password: 'root-password', role: 'admin' as const }
  // level 2, so the outliers panel has something to show
  const app = await buildApp({ ...store.options, appVersion: 'v-grafana', defaultMonitorLevel: 2, outliers: { minSamples: 10 }, groupBy: (request) => request.headers['x-user'], dashboard: { users: [admin], sessionSecret: 's'.repeat(40) } })
  app.get<{ Querystring: { ms: string } }>('/variable', async (request) => { await new Promise((resolve) => setTimeout(resolve, Number(request.query.ms))); return 'ok' })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const dir = tmpDir()
  const promPort = await freePort()
  writeFileSync(join(dir, 'prometheus.yml'), `
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ['${join(root, 'prometheus/rules/recording.yml')}']
scrape_configs:
  - job_name: app
    static_configs: [{ targets: ['127.0.0.1:${(app.server.address() as { port: number }).port}'] }]
`)
  const server = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: 'ignore' })
  t.teardown(() => { server.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }) })
  const query = async (expr: string): Promise<Array<{ metric: Record<string, string>, value: [number, string] }>> => {
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`)
    const json = await res.json() as { status: string, error?: string, data: { result: Array<{ metric: Record<string, string>, value: [number, string] }> } }
    if (json.status !== 'success') throw new Error(`${expr}: ${json.error}`)
    return json.data.result
  }
  t.ok(await until(async () => (await query('up{job="app"} == 1').catch(() => [])).length === 1, 30_000), 'Prometheus scrapes the app')

  // known traffic, with a spread of durations
  const sent: Record<string, number> = {}
  const send = async (path: string, route: string): Promise<void> => {
    await (await fetch(base + path, { headers: { 'x-user': `user${Object.values(sent).reduce((a, b) => a + b, 0) % 3}` } })).arrayBuffer()
    sent[route] = (sent[route] ?? 0) + 1
  }
  // rollup-based answers count whole UTC hours whose start is in the range: start at an hour
  const start = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000)
  for (let i = 0; i < 40; i++) await send(`/users/${i}`, '/users/:id')
  for (let i = 0; i < 12; i++) await send('/slow', '/slow')
  for (let i = 0; i < 8; i++) await send('/fail', '/fail')
  for (let i = 0; i < 4; i++) await send(`/missing/${i}`, UNMATCHED_ROUTE)
  for (let i = 0; i < 15; i++) await send('/variable?ms=1', '/variable')
  await send('/variable?ms=120', '/variable')
  await app.monitor.flush()
  // an outlier's stacks come with the sampler's next rotation
  t.ok(await until(async () => { await app.monitor.flush(); return (await app.monitor.db.selectFrom('outlier').select('id').execute()).length > 0 }, 20_000), 'the slow request is an outlier')
  const end = new Date(Date.now() + 60_000)

  // 1. Prometheus
  const promCounts = async (): Promise<Record<string, number>> => Object.fromEntries((await query('sum by (route) (http_request_duration_seconds_count{job="app"})'))
    .map((r) => [r.metric.route!, Number(r.value[1])]))
  t.ok(await until(async () => JSON.stringify(Object.entries(await promCounts()).sort()) === JSON.stringify(Object.entries(sent).sort()), 30_000), 'Prometheus has the traffic')
  t.same(await promCounts(), sent, 'Prometheus: requests per route = sent')

  // 2. the dashboard API
  const login = await app.inject({ method: 'POST', url: '/dashboard/api/login', payload: { username: admin.username, password: admin.password } })
  const cookie = String(login.headers['set-cookie']).split(';')[0]!
  const range = `from=${start.toISOString()}&to=${end.toISOString()}`
  const overview = (await app.inject({ url: '/dashboard/api/overview', headers: { cookie } })).json() as Array<{ id: number, route: string }>
  const performance = (await app.inject({ url: `/dashboard/api/performance?${range}`, headers: { cookie } })).json() as Array<{ endpointId: number, count: number, p95: number }>
  const routeOf = new Map(overview.map((e) => [e.id, e.route]))
  const apiCounts = Object.fromEntries(performance.map((p) => [routeOf.get(p.endpointId)!, p.count]))
  t.same(apiCounts, sent, 'dashboard API: requests per route = sent')

  // 3. every SQL panel, with Grafana's macros and variables expanded as Grafana would
  const client = new pg.Client({ connectionString: POSTGRES_URL })
  await client.connect()
  t.teardown(() => client.end())
  const quoteList = (values: string[]): string => values.map((v) => `'${v.replaceAll("'", "''")}'`).join(',')
  const versions = (await client.query<{ version: string }>(`select version from "${store.prefix}version"`)).rows.map((r) => r.version)
  const expandSql = (sql: string, projects = ['default']): string => sql
    .replaceAll('${prefix}', store.prefix)
    .replaceAll('($project)', `(${quoteList(projects)})`)
    .replaceAll('($route)', `(${quoteList(Object.keys(sent))})`)
    .replaceAll('($version)', `(${quoteList(versions)})`)
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_m, col: string) => `${col} between '${start.toISOString()}' and '${end.toISOString()}'`)
    .replace(/\$__timeGroupAlias\(([^,]+), '1h'\)/g, (_m, col: string) => `floor(extract(epoch from ${col}) / 3600) * 3600 as "time"`)
  const endpointsBoard = boards.find((b) => b.board.uid === 'fmd-endpoints')!.board
  for (const panel of panelsOf(endpointsBoard)) {
    for (const target of panel.targets) {
      const sql = expandSql(target.rawSql!)
      t.notMatch(sql, /\$/, `"${panel.title}": every macro and variable expanded`)
      const { rows } = await client.query(sql)
      t.ok(rows.length > 0, `"${panel.title}" returns rows (${rows.length})`)
    }
  }
  for (const variable of variablesOf(endpointsBoard).filter((v) => v.type === 'query')) {
    const { rows } = await client.query(expandSql(String(variable.query)))
    t.ok(rows.length > 0, `variable ${variable.name} has values`)
  }
  const table = (await client.query<{ route: string, hits: string, p95_ms: number }>(expandSql(panelsOf(endpointsBoard)[0]!.targets[0]!.rawSql!))).rows
  t.same(Object.fromEntries(table.map((r) => [r.route, Number(r.hits)])), sent, 'SQL panel: requests per route = sent')
  t.same((await client.query(expandSql(panelsOf(endpointsBoard)[0]!.targets[0]!.rawSql!, ['billing']))).rows, [], 'the project variable filters: another project has none of these')

  // p95 of each route agrees across the three sources within one histogram bucket
  for (const route of Object.keys(sent)) {
    const [prom] = await query(`histogram_quantile(0.95, sum by (le) (http_request_duration_seconds_bucket{job="app", route="${route}"}))`)
    const promP95 = Number(prom!.value[1])
    const apiP95 = performance.find((p) => routeOf.get(p.endpointId) === route)!.p95 / 1000
    const sqlP95 = table.find((r) => r.route === route)!.p95_ms / 1000
    const indexes = [bucketIndex(promP95), bucketIndex(apiP95), bucketIndex(sqlP95)]
    t.ok(Math.max(...indexes) - Math.min(...indexes) <= 1, `${route}: p95 Prometheus ${promP95.toFixed(4)} s, API ${apiP95.toFixed(4)} s, SQL ${sqlP95.toFixed(4)} s within one bucket`)
  }

  // every PromQL expression of the boards returns data from this Prometheus
  const httpBoard = boards.find((b) => b.board.uid === 'fmd-http')!.board
  const expandPromql = (expr: string): string => expr
    .replaceAll('=~"$job"', '=~"app"').replaceAll('=~"$instance"', '=~".*"').replaceAll('=~"$route"', '=~".*"')
    .replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m')
  for (const panel of panelsOf(httpBoard)) {
    for (const target of panel.targets) {
      const expr = expandPromql(target.expr!)
      t.notMatch(expr, /\$/, `"${panel.title}" ${target.refId}: every variable expanded`)
      t.ok(await until(async () => (await query(expr)).length > 0, 30_000), `"${panel.title}" ${target.refId} returns data: ${expr}`)
    }
  }
  for (const variable of variablesOf(httpBoard).filter((v) => v.type === 'query')) {
    const match = /label_values\((.+), (\w+)\)$/.exec((variable.query as { query: string }).query)!
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/label/${match[2]}/values?match[]=${encodeURIComponent(expandPromql(match[1]!))}`)
    const values = (await res.json() as { data: string[] }).data
    t.ok(values.length > 0, `variable ${variable.name} has values (${values.join(', ')})`)
  }
})
