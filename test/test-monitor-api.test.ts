import t from 'tap'
import { backend, DIALECTS } from './helpers.js'
import { launchChromium, logIn } from './browser.js'
import { ADMIN, appWithDashboard, covered, root, runCli, TOKEN } from './test-monitor-helpers.js'
import type { TestResultsSubmission } from '../lib/test-monitor/results.js'
import type { EndpointCoverage, TestBuildSummary } from '../lib/queries/tests.js'

// The test monitor's submission API and its Tests view in Chromium.

t.test('submitting to a running dashboard: idempotent per build and batch, 401 with a wrong token', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const { app, api } = await appWithDashboard(store.options)
  t.teardown(() => app.close())
  const submission: TestResultsSubmission = {
    build: 'b-1',
    commit: null,
    branch: null,
    batch: 'run-1',
    repeat: 1,
    tests: [{ file: 'a.test.js', name: 'reads', durationMs: 12, outcome: 'pass', hits: [{ method: 'GET', route: '/users/:id', statusCode: 200, requests: 3, totalMs: 6, maxMs: 3 }] }]
  }
  const post = async (token: string, body: unknown = submission) => await app.inject({ method: 'POST', url: '/dashboard/api/test-results', headers: { authorization: `Bearer ${token}` }, payload: body as object })

  const wrong = await post('not-the-token-at-all-000')
  t.equal(wrong.statusCode, 401)
  t.same((await api('/tests/builds') as { builds: unknown[] }).builds, [], 'nothing stored with a wrong token')
  t.equal((await app.inject({ method: 'POST', url: '/dashboard/api/test-results', payload: submission })).statusCode, 401, 'no token')

  const first = await post(TOKEN)
  t.equal(first.statusCode, 201)
  t.same(first.json(), { stored: true })
  const retry = await post(TOKEN)
  t.equal(retry.statusCode, 200)
  t.same(retry.json(), { stored: false }, 'a retried batch is stored once')
  const { builds } = await api('/tests/builds') as { builds: TestBuildSummary[] }
  t.same(builds.map((b) => [b.build, b.runs, b.tests]), [['b-1', 1, 1]])
  const coverage = await api('/tests/coverage') as { endpoints: EndpointCoverage[] }
  t.same(covered(coverage.endpoints), [['GET /users/:id', 1, 3]], 'the retry did not double the requests')

  t.equal((await post(TOKEN, { ...submission, batch: 'run-2', tests: [{ ...submission.tests[0], outcome: 'exploded' }] })).statusCode, 400, 'a bad outcome is refused')
  t.equal((await post(TOKEN, { ...submission, batch: 'run-2', tests: [{ ...submission.tests[0], name: 'x'.repeat(5_000) }] })).statusCode, 400, 'an overlong name is refused')
})

t.test('the test command\'s --project: the build is that project\'s (made if new); a bad name exits 2 before the suite runs', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const { app, base, api } = await appWithDashboard(store.options)
  t.teardown(() => app.close())
  const target = ['--url', `${base}/dashboard`, '--token', TOKEN]
  const bad = await runCli(['--project', 'not a name', ...target, '--', process.execPath, '-e', 'console.log("suite ran")'], root)
  t.equal(bad.code, 2)
  t.match(bad.output, /--project must be 1 to 64 letters/)
  t.notMatch(bad.output, /suite ran/)
  // a bad command line is a usage error with the usage, never a stack trace (exit 1 would read as a failing suite)
  for (const [args, message] of [
    [['--bogus', '--', process.execPath, '-e', ''], /Unknown option '--bogus'/],
    [['--build', 'b4', process.execPath, '-e', ''], /Unexpected argument .*\(the test command goes after --\)/],
    [[...target, '--database', 'postgres://127.0.0.1/x', '--', process.execPath, '-e', ''], /give one of --url, --database and --data-dir, not --url and --database/]
  ] as const) {
    const wrong = await runCli([...args], root)
    t.equal(wrong.code, 2, args.join(' '))
    t.match(wrong.output, message)
    t.match(wrong.output, /Usage: fastify-monitoring-dashboard test/)
    t.notMatch(wrong.output, /\n\s+at /, 'no stack trace')
  }
  const run = await runCli(['--project', 'billing', '--build', 'p-1', ...target, '--', process.execPath, '-e', ''], root)
  t.equal(run.code, 0, run.output)
  t.match(run.output, /project billing build p-1 run-1: 0 tests/)
  const { projects } = await api('/projects') as { projects: Array<{ id: number, name: string }> }
  const billing = projects.find((p) => p.name === 'billing')
  t.ok(billing, 'the project was made')
  t.same((await api(`/tests/builds?project=${billing!.id}`) as { builds: TestBuildSummary[] }).builds.map((b) => [b.build, b.project]), [['p-1', 'billing']])
  t.same((await api('/tests/builds?project=1') as { builds: TestBuildSummary[] }).builds, [], 'not the default project\'s')
})

t.test('the Tests view shows what the API says, hostile test names inert', async (t) => {
  const store = await backend(DIALECTS[0]!)
  t.teardown(store.cleanup)
  const { app, base, api } = await appWithDashboard(store.options)
  t.teardown(() => app.close())
  await app.inject('/health')
  await app.monitor.flush()
  const hostile = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
  for (const [build, tests] of [['b-old', ['reads']], ['b-new', ['reads', hostile]]] as const) {
    const res = await app.inject({
      method: 'POST',
      url: '/dashboard/api/test-results',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { build, commit: 'f00d', branch: 'main', batch: 'run-1', repeat: 1, tests: tests.map((name) => ({ file: 'a.test.js', name, durationMs: 5, outcome: 'pass', hits: [{ method: 'POST', route: '/users', statusCode: 201, requests: 2, totalMs: 4, maxMs: 3 }] })) }
    })
    t.equal(res.statusCode, 201)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const { builds } = await api('/tests/builds') as { builds: TestBuildSummary[] }

  const browser = await launchChromium()
  t.teardown(async () => { await browser.close() })
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  let dialogs = 0
  page.on('dialog', (dialog) => { dialogs++; void dialog.dismiss() })
  await logIn(page, base, ADMIN)
  await page.goto(`${base}/dashboard/#/tests`)
  await page.getByTestId('test-builds').waitFor()
  t.same(await page.getByTestId('build-tests').allTextContents(), builds.map((b) => String(b.tests)), 'tests per build as the API says, newest first')
  t.same(await page.getByTestId('build-covered').allTextContents(), builds.map((b) => String(b.endpointsCovered)))
  const coverage = await api('/tests/coverage') as { endpoints: EndpointCoverage[] }
  const untested = coverage.endpoints.filter((e) => e.tests === 0)
  t.same(untested.map((e) => [`${e.method} ${e.route}`, e.productionHits])[0], ['GET /health', 1], 'the busy untested endpoint first')
  t.same(await page.getByTestId('uncovered').locator('code').allTextContents(), untested.map((e) => `${e.method} ${e.route}`), 'untested endpoints as the API says')
  t.same(await page.getByTestId('uncovered-hits').allTextContents(), untested.map((e) => String(e.productionHits)))
  t.same(await page.getByTestId('covered-tests').allTextContents(), ['2'])
  await page.getByRole('button', { name: 'POST /users' }).click()
  await page.getByTestId('endpoint-tests').waitFor()
  t.same((await page.getByTestId('test-name').allTextContents()).sort(), [hostile, 'reads'].sort(), 'the hostile name is shown as text')
  t.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined, 'and never runs')
  t.equal(dialogs, 0)
})
