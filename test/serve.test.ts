// #19: `fastify-monitoring-dashboard serve`, the collector as its own process (the compiled bin, as a
// user runs it): it prints its URLs, stores what a service sends to its ingest route, lets the admin
// named on the command line in (password from the environment), serves /metrics, and on SIGTERM
// closes and exits 0, leaving its PGlite directory to the next process.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { compilePlugin } from './compiled.js'
import { freePort, tmpDir } from './helpers.js'

t.setTimeout(180_000)
const bin = join(compilePlugin(), '..', 'cli.js')
const TOKEN = 'serve-ingest-token-012345'
const PASSWORD = 'root-password-1'

function start (args: string[]): { child: ReturnType<typeof spawn>, output: () => string } {
  // the machine's own database setting must not reach the collector: it is told its database here
  const { FASTIFY_MONITOR_DATABASE_URL: _ignored, ...env } = process.env
  const child = spawn(process.execPath, [bin, 'serve', ...args], {
    env: { ...env, FASTIFY_MONITOR_INGEST_TOKEN: TOKEN, FASTIFY_MONITOR_ADMIN_PASSWORD: PASSWORD, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  return { child, output: () => output }
}

async function printed (output: () => string, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const match = output().match(pattern)
    if (match !== null) return match
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`not printed: ${pattern}; output:\n${output()}`)
}

t.test('serve: the collector stores what a service sends, serves the dashboard and /metrics, and stops on SIGTERM', async (t) => {
  const dataDir = join(tmpDir(), 'collector')
  const port = await freePort()
  const { child, output } = start(['--database', dataDir, '--port', String(port), '--admin', 'root'])
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const [, base] = await printed(output, /dashboard (http:\/\/\S+)\/dashboard\n/)
  t.match(output(), `ingest    ${base}/dashboard/api/ingest`, 'prints the ingest URL')
  t.notMatch(output(), /FSTDEP|DeprecationWarning/, 'no deprecation warning from the Fastify it runs on')

  const now = Date.now()
  const sent = await fetch(`${base}/dashboard/api/ingest`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      batch: 'serve-1', version: 'svc-2', instance: { host: 'svc', pid: 1, token: 'svc-boot-1' },
      endpoints: [{ method: 'GET', route: '/svc/orders/:id' }],
      requests: { endpoint: [0, 0], time: [now - 2000, now - 1000], durationMs: [4, 6], statusCode: [200, 503] }
    })
  })
  t.same(await sent.json(), { stored: true, levels: [{ method: 'GET', route: '/svc/orders/:id', level: 1 }] })

  const login = await fetch(`${base}/dashboard/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'root', password: PASSWORD }) })
  t.equal(login.status, 200, 'the admin named by --admin logs in with the password from the environment')
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!
  const overview = await (await fetch(`${base}/dashboard/api/overview?tz=UTC`, { headers: { cookie } })).json() as Array<{ route: string, allTime: { hits: number, serverErrors: number } }>
  const row = overview.find((e) => e.route === '/svc/orders/:id')
  t.same([row?.allTime.hits, row?.allTime.serverErrors], [2, 1], 'the dashboard shows the service\'s requests')
  const metrics = await fetch(`${base}/metrics`)
  t.equal(metrics.status, 200, '/metrics answers')

  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'SIGTERM closes it and it exits 0')

  // the directory is free again: a second collector opens it and still sees the requests
  const again = start(['--database', dataDir, '--port', String(await freePort())])
  t.teardown(() => { if (again.child.exitCode === null) again.child.kill('SIGKILL') })
  const [, base2] = await printed(again.output, /dashboard (http:\/\/\S+)\/dashboard\n/)
  const replay = await fetch(`${base2}/dashboard/api/ingest`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch: 'serve-1', version: 'svc-2', instance: { host: 'svc', pid: 1, token: 'svc-boot-1' }, endpoints: [{ method: 'GET', route: '/svc/orders/:id' }], requests: { endpoint: [0], time: [now], durationMs: [1], statusCode: [200] } })
  })
  t.equal((await replay.json()).stored, false, 'a batch stored before the restart is not stored again')
  again.child.kill('SIGTERM')
  t.equal((await once(again.child, 'exit'))[0], 0)
})

t.test('serve: a bad option exits 2 with the usage', async (t) => {
  const { child, output } = start(['--port', 'eighty'])
  const [code] = await once(child, 'exit')
  t.equal(code, 2)
  t.match(output(), /--port must be a port number, got "eighty"/)
  t.match(output(), /usage:\n {2}fastify-monitoring-dashboard serve/)
})

t.test('serve --help: its usage, with the environment it reads, and exit 0', async (t) => {
  const { child, output } = start(['--help'])
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.match(output(), /usage:\n {2}fastify-monitoring-dashboard serve/)
  t.match(output(), /FASTIFY_MONITOR_EXPORT_TOKEN[\s\S]*FASTIFY_MONITOR_TEST_RESULTS_TOKEN/, 'names the export and test-result tokens it honours')
  t.notMatch(output(), /Unknown option/)
})
