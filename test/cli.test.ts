import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import monitor, { type MonitorOptions } from '../lib/index.js'
import { insertRequests } from '../lib/db/seed.js'
import { compilePlugin } from './compiled.js'
import { DIALECTS, POSTGRES_URL, backend, tmpDir, until } from './helpers.js'
import { launchChromium } from './browser.js'
import { syntheticRequests } from './synthetic.js'

// Issue #16: the CLI as a CI runs it — the compiled bin in a child process — its exit codes, its JSON,
// its HTML report opened in Chromium, and a load-test baseline compared with a slower candidate run.
t.setTimeout(600_000)
const HOUR_MS = 3_600_000
const bin = join(compilePlugin(), '..', 'cli.js')
const run = promisify(execFile)

async function cli (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { maxBuffer: 16 << 20, env: { ...process.env, FASTIFY_MONITOR_DATABASE_URL: '' } })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

/** The exit code, with the command's stderr in the failure's diagnostics: a wrong code says why. */
function exits (t: Test, result: { code: number, stderr: string }, code: number, message?: string): void {
  t.equal(result.code, code, message ?? `exit ${code}`, { stderr: result.stderr })
}

async function seededApp (options: MonitorOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(monitor, { flushIntervalMs: 20, dashboard: false, metrics: false, ...options })
  for (const route of ['/slower', '/same', '/failing', '/quiet']) app.get(route, async () => 'ok')
  await app.ready()
  await app.monitor.ready
  await until(async () => (await app.monitor.db.selectFrom('endpoint').select('id').execute()).length >= 4)
  return app
}

/** The synthetic requests of issue #16 in a fresh database; the app that stored them is closed. */
async function seededDatabase (t: Test, dialect: 'pglite' | 'postgres'): Promise<{ common: string[], start: number }> {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const app = await seededApp(store.options)
  const endpoints = Object.fromEntries((await app.monitor.db.selectFrom('endpoint').select(['id', 'route']).execute()).map((r) => [r.route, r.id]))
  const start = Date.UTC(2026, 10, 20)
  await insertRequests(app.monitor.db, syntheticRequests(endpoints, start))
  // a PGlite directory belongs to one process: the CLI reads it once the app is closed, as a CI step would
  await app.close()
  const database = dialect === 'postgres' ? ['--database', POSTGRES_URL] : ['--database', store.options.dataDir!]
  return { common: [...database, '--table-prefix', store.prefix], start }
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: report exit codes and --json`, async (t) => {
    const { common, start } = await seededDatabase(t, dialect)

    const regressed = await cli(['report', ...common, '--baseline', 'version:v1', '--candidate', 'version:v2'])
    exits(t, regressed, 1, 'exit 1: an endpoint regressed')
    t.match(regressed.stdout, /GET \/slower .*REGRESSION/)
    t.match(regressed.stdout, /GET \/failing .*REGRESSION/)
    t.match(regressed.stdout, /GET \/same .*no change/)
    t.match(regressed.stdout, /2 regressions, 0 improvements, 1 unchanged, 1 with too few requests/)
    t.match(regressed.stderr, /compared 4 endpoints/, 'progress on stderr')

    // every CLI run on PGlite opens the directory anew (seconds each): the option matrix runs on PostgreSQL
    if (dialect === 'postgres') await optionMatrix(t, common, start)
  })
}

async function optionMatrix (t: Test, common: string[], start: number): Promise<void> {
  exits(t, await cli(['report', ...common, '--baseline', 'version:v1', '--candidate', 'version:v2', '--fail-on', 'never']), 0)
  exits(t, await cli(['report', ...common, '--baseline', 'version:v2', '--candidate', 'version:v1']), 0, 'improvements only: exit 0')
  const range = (from: number, to: number): string => `range:${new Date(start + from * HOUR_MS).toISOString()}/${new Date(start + to * HOUR_MS).toISOString()}`
  exits(t, await cli(['report', ...common, '--baseline', range(0, 6), '--candidate', range(6, 12)]), 0, 'the same distribution: exit 0')

  const json = await cli(['report', ...common, '--baseline', 'version:v1', '--candidate', 'version:v2', '--json'])
  exits(t, json, 1)
  const parsed = JSON.parse(json.stdout) as { summary: { regressions: number }, endpoints: Array<{ route: string, verdict: string }> }
  t.equal(parsed.summary.regressions, 2)
  t.equal(parsed.endpoints[0]!.verdict, 'regression')

  const usage = await cli(['report', ...common, '--baseline', 'v1', '--candidate', 'version:v2'])
  exits(t, usage, 2, 'a bad selector is a usage error')
  t.match(usage.stderr, /--baseline "v1" must be version/)
  exits(t, await cli(['report', ...common, '--baseline', 'version:v1', '--candidate', 'version:v9']), 2, 'an unknown version')
  exits(t, await cli(['report', ...common, '--baseline', 'version:v1']), 2, 'a missing side')
  exits(t, await cli(['report', ...common, '--bogus']), 2, 'an unknown option')
  const scoped = await cli(['report', ...common, '--baseline', 'version:v1', '--candidate', 'version:v2', '--project', 'default', '--json'])
  t.equal(JSON.parse(scoped.stdout).endpoints.length, 4, '--project default: the app\'s four endpoints')
  const other = await cli(['report', ...common, '--baseline', 'version:v1', '--candidate', 'version:v2', '--project', 'billing'])
  exits(t, other, 2, 'a project the database does not have is a usage error')
  t.match(other.stderr, /--project billing: no such project/)
  exits(t, await cli(['explode']), 2)
  const prefix = await cli(['report', '--database', POSTGRES_URL, '--table-prefix', 'x;drop', '--baseline', 'today', '--candidate', 'yesterday'])
  exits(t, prefix, 2, 'a table prefix the plugin would refuse is a usage error')
  t.match(prefix.stderr, /"tablePrefix" option must match/)
  t.match((await cli(['--help'])).stderr, /report  compare two versions/, 'the report and test commands share one usage')
  exits(t, await cli(['report', '--database', 'postgres://postgres@127.0.0.1:1/none', '--baseline', 'today', '--candidate', 'yesterday']), 3, 'an unreachable database is a failure, not a verdict')

  // a gate that compared nothing does not pass (a new user's trial: all of these exited 0)
  const empty = await cli(['report', ...common, '--baseline', range(-48, -24), '--candidate', range(-24, -12)])
  exits(t, empty, 2, 'two windows without requests: nothing to compare')
  t.match(empty.stderr, /nothing to compare: no endpoint has requests on either side/)
  t.match(empty.stdout, /0 regressions, 0 improvements, 0 unchanged, 0 with too few requests/, 'the (empty) report is still printed')
  exits(t, await cli(['report', ...common, '--baseline', range(-48, -24), '--candidate', range(-24, -12), '--fail-on', 'never']), 0, '--fail-on never accepts it')
  const oneSided = await cli(['report', ...common, '--baseline', range(0, 6), '--candidate', range(-24, -12)])
  exits(t, oneSided, 2, 'requests on one side only')
  t.match(oneSided.stderr, /nothing to compare: none of the \d+ endpoints has 20 requests on both sides/)
  const otherPrefix = await cli(['report', '--database', POSTGRES_URL, '--table-prefix', 'nothing_here_', '--baseline', 'yesterday', '--candidate', 'today'])
  exits(t, otherPrefix, 2, 'a prefix with no tables is a usage error')
  t.match(otherPrefix.stderr, /holds no monitoring tables \(table prefix nothing_here_\)/)
  const { rows } = await sql<{ made: string | null }>`select to_regclass('nothing_here_migration')::text as made`.execute(probe)
  t.equal(rows[0]!.made, null, 'and nothing was created under it')
  const alpha = await cli(['report', ...common, '--baseline', 'version:v1', '--candidate', 'version:v2', '--alpha', '2'])
  exits(t, alpha, 2, 'an alpha the API would refuse')
  t.match(alpha.stderr, /--alpha must be above 0 and at most 0.5, got "2"/)
}

/** Reads the shared server as the tests' own connection (the CLI's runs are child processes). */
const probe = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 1 }) }) })
t.teardown(async () => { await probe.destroy() })

t.test('report and load leave a PGlite directory that does not exist alone', async (t) => {
  const dir = join(tmpDir(), 'never-made')
  for (const args of [['report', '--baseline', 'yesterday', '--candidate', 'today'], ['load', '--url', 'http://127.0.0.1:9/']]) {
    const result = await cli([...args, '--database', dir])
    exits(t, result, 2, `${args[0]!}: a directory without the app's data is a usage error`)
    t.match(result.stderr, /the PGlite directory .*never-made holds no monitoring tables/)
  }
  t.notOk(existsSync(dir), 'no directory was made')
})

// the page is the same whichever database the report read
if (DIALECTS.includes('postgres')) {
  t.test('the HTML report opens in Chromium with its charts drawn, loading nothing', async (t) => {
    const { common } = await seededDatabase(t, 'postgres')

    const html = join(tmpDir(), 'report.html')
    exits(t, await cli(['report', ...common, '--baseline', 'version:v1', '--candidate', 'version:v2', '--html', html]), 1)
    const browser = await launchChromium()
    t.teardown(async () => { await browser.close() })
    const page = await browser.newPage()
    const requests: string[] = []
    page.on('request', (request) => { requests.push(request.url()) })
    await page.goto(`file://${html}`)
    const regressions = page.locator('tr.regression')
    t.equal(await regressions.count(), 2)
    const drawn = await page.$$eval('tr.regression svg', (svgs) => svgs.map((svg) => {
      const box = svg.getBoundingClientRect()
      return { width: box.width, shapes: svg.querySelectorAll('rect, polyline, line').length }
    }))
    t.equal(drawn.length, 4, 'a box plot and a CDF per flagged row')
    t.ok(drawn.every((d) => d.width > 100 && d.shapes >= 2), 'each chart drawn with its shapes')
    t.same(requests, [`file://${html}`], 'the page loads nothing else')
    t.match(readFileSync(html, 'utf8'), /<title>Performance report: version:v1 → version:v2<\/title>/)
  })
}

if (DIALECTS.includes('postgres')) {
  t.test('postgres: load records two runs; the report compares them from what the plugin recorded', async (t) => {
    const store = await backend('postgres')
    t.teardown(store.cleanup)
    let delayMs = 2
    const app = Fastify()
    await app.register(monitor, { ...store.options, flushIntervalMs: 50, dashboard: false, metrics: false })
    app.get('/work', async () => { await new Promise((resolve) => setTimeout(resolve, delayMs)); return 'done' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    await app.monitor.ready
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/work`
    const common = ['--database', POSTGRES_URL, '--table-prefix', store.prefix]

    const baseline = await cli(['load', ...common, '--url', url, '--duration', '3s', '--connections', '4', '--tag', 'baseline'])
    t.equal(baseline.code, 0, baseline.stderr)
    t.match(baseline.stderr, /compare with a later run: .* --baseline run:baseline --candidate run:<its tag>/, 'the first run is offered as the baseline')
    const figures = JSON.parse(baseline.stdout) as { tag: string, requests: number, latencyMs: { p50: number } }
    t.ok(figures.requests > 100, `${figures.requests} requests driven`)
    delayMs = 12
    const candidate = await cli(['load', ...common, '--url', url, '--duration', '3s', '--connections', '4', '--tag', 'candidate'])
    exits(t, candidate, 0)
    t.match(candidate.stderr, /compare with the run before: .* --baseline run:baseline --candidate run:candidate/)
    await app.monitor.flush()
    const runs = await app.monitor.db.selectFrom('load_run').select(['tag', 'started_at', 'ended_at']).orderBy('started_at').execute()
    t.same(runs.map((r) => r.tag), ['baseline', 'candidate'])

    const html = join(tmpDir(), 'runs.html')
    const report = await cli(['report', ...common, '--baseline', 'run:baseline', '--candidate', 'run:candidate', '--html', html])
    t.equal(report.code, 1, `the slower candidate run is a regression:\n${report.stdout}`)
    t.match(report.stdout, /GET \/work .*REGRESSION/)
    const page = readFileSync(html, 'utf8')
    t.match(page, /Load-test runs \(client side, autocannon\)/, 'the HTML report shows the runs\' own figures side by side')
    t.match(page, /baseline<br><small>baseline · http:\/\/127\.0\.0\.1/)
    exits(t, await cli(['report', ...common, '--baseline', 'run:baseline', '--candidate', 'run:nope']), 2, 'an unknown run tag')
    exits(t, await cli(['load', ...common, '--url', 'ftp://x']), 2)
    t.match((await cli(['load', ...common])).stderr, /--url is required/)
    // a run that reached nothing must not become a candidate that passes the gate
    const dead = await cli(['load', ...common, '--url', 'http://127.0.0.1:9/work', '--duration', '1s', '--connections', '1', '--tag', 'dead'])
    exits(t, dead, 3, 'no response at all: a failure')
    t.match(dead.stderr, /answered no request .*the run is not recorded/)
    t.equal((await app.monitor.db.selectFrom('load_run').select('tag').where('tag', '=', 'dead').execute()).length, 0, 'and it is not stored')
    exits(t, await cli(['load', ...common, '--url', url, '--duration', 'forever']), 2)
  })
}
