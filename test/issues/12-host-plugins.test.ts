import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyCors from '@fastify/cors'
import fastifyHelmet from '@fastify/helmet'
import fastifyRateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import monitor from '../../lib/index.js'
import { CookieJar, dashboardLogin } from '../cookie-jar.js'
import { DIALECTS, backend, type Backend } from '../helpers.js'

// Issue #12 A and #13.7: a guest among the host app's usual plugins, registered before and after it.
// A host's @fastify/cors { origin: true, credentials: true } used to let any page read the dashboard
// API with the user's cookie (the session, its CSRF token) and create an admin.
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const dialect = DIALECTS.includes('postgres') ? 'postgres' : DIALECTS[0]!
const EVIL = 'http://evil.example'

async function registerHostPlugins (app: FastifyInstance): Promise<void> {
  await app.register(fastifyCookie, { secret: 'host-cookie-secret' })
  await app.register(fastifyHelmet)
  await app.register(fastifyCors, { origin: true, credentials: true })
  await app.register(fastifyRateLimit, { max: 10_000, timeWindow: 60_000 })
  // generous limits: the point is that it keeps answering, not this machine's load
  await app.register(underPressure, { maxHeapUsedBytes: 4e9, maxRssBytes: 8e9 })
}

async function hostApp (store: Backend, order: 'before' | 'after'): Promise<FastifyInstance> {
  const app = Fastify()
  if (order === 'before') await registerHostPlugins(app)
  await app.register(monitor, { ...store.options, flushIntervalMs: 20, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
  if (order === 'after') await registerHostPlugins(app)
  app.get('/app/hello', async (_request, reply) => { reply.setCookie('app', 'x'); return { hello: 'world' } })
  await app.ready()
  await app.monitor.ready
  return app
}

const corsHeaders = (headers: Record<string, unknown>): string[] => Object.keys(headers).filter((name) => name.startsWith('access-control-'))

for (const order of ['before', 'after'] as const) {
  t.test(`${dialect}: with the host's cookie, helmet, cors, rate-limit and under-pressure registered ${order} the plugin`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = await hostApp(store, order)
    t.teardown(() => app.close())

    const hello = await app.inject({ url: '/app/hello', headers: { origin: EVIL } })
    t.equal(hello.statusCode, 200, 'the host app answers')
    t.equal(hello.headers['access-control-allow-origin'], EVIL, 'with its own CORS policy on its own routes')
    t.match(String(hello.headers['set-cookie']), /app=x/, 'and its own cookies')
    t.equal((await app.inject('/metrics')).statusCode, 200, 'metrics are served')
    const page = await app.inject('/dashboard/')
    t.equal(page.statusCode, 200, 'the dashboard page is served')
    t.match(String(page.headers['content-security-policy']), /script-src 'self'/)

    const jar = new CookieJar()
    const csrf = await dashboardLogin(app, jar, ADMIN.username, ADMIN.password)
    t.equal((await jar.inject(app, { url: '/dashboard/api/session' })).statusCode, 200, 'the dashboard logs in among them')
    const sameOrigin = await jar.inject(app, { url: '/dashboard/api/session', headers: { origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' } })
    t.equal(sameOrigin.statusCode, 200, 'its own page\'s requests pass')

    for (const headers of [{ origin: EVIL }, { origin: EVIL, 'sec-fetch-site': 'cross-site' }, { origin: 'http://other.localhost', 'sec-fetch-site': 'same-site' }]) {
      const read = await jar.inject(app, { url: '/dashboard/api/session', headers })
      t.equal(read.statusCode, 403, `a read from ${headers.origin} (${headers['sec-fetch-site'] ?? 'no Sec-Fetch-Site'}) is refused`)
      t.same(corsHeaders(read.headers), [], 'with no CORS header')
      t.notMatch(read.body, /csrf/i, 'and no CSRF token in it')
      const write = await jar.inject(app, { method: 'POST', url: '/dashboard/api/users', headers: { ...headers, 'x-csrf-token': csrf }, payload: { username: 'intruder', password: 'intruder-password', role: 'admin' } })
      t.equal(write.statusCode, 403, 'and so is creating an admin')
      t.same(corsHeaders(write.headers), [])
    }
    const preflight = await app.inject({ method: 'OPTIONS', url: '/dashboard/api/users', headers: { origin: EVIL, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-csrf-token' } })
    t.same(corsHeaders(preflight.headers), [], `the preflight allows nothing (${preflight.statusCode})`)
    const users = (await jar.inject(app, { url: '/dashboard/api/users' })).json() as Array<{ username: string }>
    t.same(users.map((u) => u.username), ['root'], 'no admin was created')
  })
}
