import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { freePort, tmpDir, until } from './helpers.js'

// `npm run demo` as a new user meets it: what it prints, what the printed URLs open, and a first view with history.
const root = new URL('..', import.meta.url).pathname

t.test('the demo prints working URLs, logs quietly and starts with days of varied history', async (t) => {
  const port = await freePort()
  let output = ''
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), FMD_DATA_DIR: join(tmpDir(), 'data'), APP_VERSION: '2.0.0' }
  for (const name of ['DATABASE_URL', 'LOG_LEVEL', 'DEMO_SEED', 'DEMO_TRAFFIC', 'DEMO_PASSWORD', 'HOST']) delete env[name]
  const demo = spawn(process.execPath, [join(root, 'example/server.js')], { cwd: tmpDir(), env })
  demo.stdout.on('data', (chunk) => { output += chunk })
  demo.stderr.on('data', (chunk) => { output += chunk })
  const exited = new Promise((resolve) => demo.once('exit', resolve))
  t.teardown(async () => { demo.kill('SIGTERM'); await exited })
  t.ok(await until(async () => /metrics\s+http/.test(output), 120_000, 200), 'the demo starts', { output })

  const url = (label: string): string => new RegExp(`^\\s*${label}\\s+(http\\S+)`, 'm').exec(output)?.[1] ?? ''
  const dashboard = url('dashboard')
  t.equal(dashboard, `http://127.0.0.1:${port}/dashboard/`, 'the dashboard URL is printed')
  t.match(output, /log in as demo \/ demo-password/)
  t.notMatch(output, /dashboard\/api/, 'no API path that answers 404')
  const page = await fetch(dashboard)
  t.equal(page.status, 200)
  t.match(await page.text(), /<div id="app">|<script/, 'it opens the dashboard')
  const metrics = await fetch(url('metrics'))
  t.equal(metrics.status, 200)
  t.match(await metrics.text(), /# TYPE http_request_duration_seconds histogram/, 'and /metrics')

  // every view has something to show
  const api = `http://127.0.0.1:${port}/dashboard/api`
  const login = await fetch(`${api}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }, body: JSON.stringify({ username: 'demo', password: 'demo-password' }) })
  t.equal(login.status, 200)
  const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!
  const get = async <T>(path: string): Promise<T> => await (await fetch(`${api}${path}`, { headers: { cookie, 'sec-fetch-site': 'same-origin' } })).json() as T
  const from = new Date(Date.now() - 5 * 86_400_000).toISOString()
  const to = new Date(Date.now() + 3_600_000).toISOString()
  const versions = await get<{ versions: Array<{ version: string }>, daily: Array<{ day: string }> }>(`/versions?from=${from}&to=${to}`)
  t.ok(versions.versions.length >= 4, `several versions (${versions.versions.map((v) => v.version).join(', ')})`)
  t.ok(new Set(versions.daily.map((d) => d.day)).size >= 4, 'over several days')
  const overview = await get<Array<{ id: number, method: string, route: string, level: number, allTime: { hits: number, '4xx'?: number } }>>('/overview?tz=UTC')
  const reports = overview.find((e) => e.route === '/reports/:year')!
  t.equal(reports.level, 3, 'the slow endpoint is profiled, so outliers and call trees come with the live traffic')
  const users = overview.find((e) => e.method === 'GET' && e.route === '/users/:id')!
  const endpoint = await get<{ statusCodes?: unknown }>(`/endpoints/${users.id}?from=${from}&to=${to}`)
  t.match(JSON.stringify(endpoint), /404/, 'status codes other than 200')
  const byUser = await get<{ distributions: unknown[] }>(`/endpoints/${users.id}/breakdown?by=group_by&from=${from}&to=${to}`)
  const byIp = await get<{ distributions: unknown[] }>(`/endpoints/${users.id}/breakdown?by=ip&from=${from}&to=${to}`)
  t.ok(byUser.distributions.length >= 5 && byIp.distributions.length >= 3, `users (${byUser.distributions.length}) and IPs (${byIp.distributions.length})`)

  // a few seconds of the demo's own traffic (/error included) add nothing to its output
  const before = output.length
  await new Promise((resolve) => setTimeout(resolve, 5_000))
  t.equal(output.slice(before), '', 'no line per request, no stack per /error')
})
