import t from 'tap'
import { existsSync } from 'node:fs'
import { ONE_DIALECT, POSTGRES_URL, backend } from './helpers.js'
import { appWithDashboard, cli, covered, fixtures, root, runCli, TOKEN, type EndpointTests } from './test-monitor-helpers.js'
import type { EndpointCoverage, TestBuildSummary } from '../lib/queries/tests.js'

// The test monitor end to end: the example app's own suites (test/fixtures/test-monitor/, one for
// tap and one for node:test) run under the compiled CLI, and the dashboard's API shows exactly which
// endpoints each test reached.

t.test('the built CLI exists (npm test builds it)', async (t) => {
  t.ok(existsSync(cli), cli)
})

for (const dialect of ONE_DIALECT) {
  t.test(`${dialect}: tap and node:test suites, coverage per build`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const { app, base, api } = await appWithDashboard(store.options)
    t.teardown(() => app.close())
    // production traffic: the suites never call /health or DELETE, so those are the untested ones
    for (let i = 0; i < 5; i++) await app.inject('/health')
    for (let i = 0; i < 2; i++) await app.inject({ method: 'DELETE', url: '/users/1' })
    await app.inject('/users/9')
    await app.monitor.flush()

    const tapRun = await runCli(['--repeat', '2', '--build', 'tap-build', '--commit', 'abc123', '--branch', 'main', '--url', `${base}/dashboard`, '--token', TOKEN, '--', process.execPath, `${root}node_modules/tap/dist/esm/run.mjs`], `${fixtures}tap-suite`)
    t.equal(tapRun.code, 0, tapRun.output)
    t.match(tapRun.output, /build tap-build run-2: 5 tests, 3 endpoints/)
    // the node:test suite goes straight into the database on PostgreSQL (PGlite's data directory is the app's)
    const target = dialect === 'postgres'
      ? ['--database', POSTGRES_URL, '--table-prefix', store.prefix]
      : ['--url', `${base}/dashboard`, '--token', TOKEN]
    const nodeRun = await runCli(['--build', 'node-build', ...target, '--', process.execPath, '--test'], `${fixtures}node-suite`)
    t.equal(nodeRun.code, 0, nodeRun.output)

    const { builds } = await api('/tests/builds') as { builds: TestBuildSummary[] }
    t.same(builds.map((b) => [b.build, b.runs, b.tests, b.failed, b.endpointsCovered]).sort(),
      [['node-build', 1, 5, 0, 3], ['tap-build', 2, 5, 0, 3]], 'runs, tests (leaves and tests with requests) and endpoints per build')
    t.same(builds.find((b) => b.build === 'tap-build')?.commit, 'abc123')
    t.same(builds.find((b) => b.build === 'tap-build')?.branch, 'main')

    const tap = await api('/tests/coverage?build=tap-build') as { build: string, endpoints: EndpointCoverage[] }
    // reads a user (2 requests) and over HTTP (1), twice; the two concurrent tests one request each, twice
    t.same(covered(tap.endpoints), [['GET /slow', 1, 2], ['GET /users/:id', 2, 6], ['POST /users', 1, 2]])
    t.same(tap.endpoints.filter((e) => e.tests === 0).map((e) => [`${e.method} ${e.route}`, e.productionHits]),
      [['GET /health', 5], ['DELETE /users/:id', 2]], 'untested endpoints, the busiest first, with their production traffic')
    t.ok(tap.endpoints.find((e) => e.route === '/slow')!.meanMs! >= 140, 'request durations as measured in the tests')

    const node = await api('/tests/coverage?build=node-build') as { endpoints: EndpointCoverage[] }
    t.same(covered(node.endpoints), [['GET /slow', 1, 1], ['GET /users/:id', 2, 2], ['POST /users', 1, 1]])

    // the concurrent tests of one file are not mixed up
    for (const [method, route, build, name] of [
      ['POST', '/users', 'tap-build', 'at the same time > creates a user <script>alert(1)</script>'],
      ['GET', '/slow', 'tap-build', 'at the same time > waits for a slow answer'],
      ['POST', '/users', 'node-build', 'at the same time > creates a user'],
      ['GET', '/slow', 'node-build', 'at the same time > waits for a slow answer']
    ] as const) {
      const detail = await api(`/tests/endpoint?method=${method}&route=${encodeURIComponent(route)}`) as EndpointTests
      t.same(detail.tests.filter((test) => test.builds.some((b) => b.build === build)).map((test) => [test.file, test.name]), [['users.test.js', name]], `${method} ${route} in ${build}`)
    }
    const users = await api(`/tests/endpoint?method=GET&route=${encodeURIComponent('/users/:id')}`) as EndpointTests
    const reads = users.tests.find((test) => test.name === 'reads a user')!
    t.same(reads.builds.map((b) => [b.build, b.requests]).sort(), [['node-build', 1], ['tap-build', 4]], 'requests per test and build')
    t.ok(reads.builds.every((b) => b.testMs > 0 && b.outcome === 'pass'), 'the test\'s own duration and outcome')
  })
}

