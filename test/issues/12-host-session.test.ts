import t from 'tap'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import secureSession from '@fastify/secure-session'
import monitor from '../../lib/index.js'
import { CookieJar, dashboardLogin } from '../cookie-jar.js'
import { DIALECTS, backend, type Backend } from '../helpers.js'

// Issue #12 A: the dashboard's session is its own. It used to register @fastify/secure-session as
// `request.session`: in a host app with its own session, the dashboard login wrote into the app's
// session (logging the app's user out), authenticated from the app's cookie (an app user with
// userId=1 was a dashboard admin), and could not log in at all when the app's cookie was Secure.
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const HOST_SECRET = 'a-host-app-secret-of-more-than-32-characters'
const dialect = DIALECTS.includes('postgres') ? 'postgres' : DIALECTS[0]!

type HostSession = 'fastify-session' | 'fastify-session-secure-cookie' | 'secure-session'

/** The host app's own session plugin, as the app's authors would register it. */
async function registerHostSession (app: FastifyInstance, kind: HostSession): Promise<void> {
  if (kind === 'secure-session') {
    await app.register(secureSession, { key: randomBytes(32), cookie: { path: '/' } })
    return
  }
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: HOST_SECRET, cookie: { secure: kind === 'fastify-session-secure-cookie' }, saveUninitialized: false })
}

/** Reads and writes the host's session the way each plugin wants. */
function hostSession (request: { session: unknown }, kind: HostSession): { get: (key: string) => unknown, set: (key: string, value: unknown) => void, keys: () => string[] } {
  const session = request.session as Record<string, unknown> & { get?: (k: string) => unknown, set?: (k: string, v: unknown) => void, data?: () => Record<string, unknown> }
  if (kind === 'secure-session') {
    return { get: (k) => session.get!(k), set: (k, v) => session.set!(k, v), keys: () => Object.keys(session.data!() ?? {}) }
  }
  return { get: (k) => session[k], set: (k, v) => { session[k] = v }, keys: () => Object.keys(session).filter((k) => k !== 'cookie') }
}

async function hostApp (store: Backend, kind: HostSession, order: 'before' | 'after'): Promise<FastifyInstance> {
  const app = Fastify()
  if (order === 'before') await registerHostSession(app, kind)
  await app.register(monitor, { ...store.options, flushIntervalMs: 20, metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40) } })
  if (order === 'after') await registerHostSession(app, kind)
  // the host app's own login: its user 1
  app.post('/app/login', async (request) => { hostSession(request, kind).set('userId', 1); return { ok: true } })
  app.get('/app/me', async (request) => ({ userId: hostSession(request, kind).get('userId') ?? null, keys: hostSession(request, kind).keys() }))
  await app.ready()
  await app.monitor.ready
  return app
}

for (const kind of ['fastify-session', 'fastify-session-secure-cookie', 'secure-session'] as const) {
  for (const order of ['before', 'after'] as const) {
    t.test(`${dialect}: a host app using ${kind}, registered ${order} the plugin`, async (t) => {
      const store = await backend(dialect)
      t.teardown(store.cleanup)
      const app = await hostApp(store, kind, order)
      t.teardown(() => app.close())
      const secureCookie = kind === 'fastify-session-secure-cookie'
      const jar = new CookieJar()

      t.equal((await jar.inject(app, { method: 'POST', url: '/app/login' })).statusCode, 200)
      if (!secureCookie) {
        t.same((await jar.inject(app, { url: '/app/me' })).json().userId, 1, 'the app\'s user is logged into the app')
        t.notOk(jar.cookies.has('fmd_session'), 'the app\'s login sets no dashboard cookie')
        for (const url of ['/dashboard/api/session', '/dashboard/api/users', '/dashboard/api/config']) {
          t.equal((await jar.inject(app, { url })).statusCode, 401, `an app session holding userId=1 is not a dashboard user (${url})`)
        }
        const hostCookies = new Map(jar.cookies)
        const csrf = await dashboardLogin(app, jar, ADMIN.username, ADMIN.password)
        for (const [name, value] of hostCookies) t.equal(jar.cookies.get(name), value, `the dashboard login leaves the app's cookie ${name} as it was`)
        const me = (await jar.inject(app, { url: '/app/me' })).json()
        t.equal(me.userId, 1, 'the app\'s user stays logged in after the dashboard login')
        t.same(me.keys, ['userId'], 'nothing of the dashboard is written into the app\'s session')
        t.equal((await jar.inject(app, { url: '/dashboard/api/users' })).statusCode, 200, 'the dashboard session works beside the app\'s')
        const logout = await jar.inject(app, { method: 'POST', url: '/dashboard/api/logout', headers: { 'x-csrf-token': csrf } })
        t.equal(logout.statusCode, 200)
        t.equal((await jar.inject(app, { url: '/app/me' })).json().userId, 1, 'and after the dashboard logout')
        t.equal((await jar.inject(app, { url: '/dashboard/api/session' })).statusCode, 401, 'the dashboard session has ended')
      } else {
        // the app's Secure cookie is not set on plain HTTP; the dashboard's own cookie is (secure: 'auto')
        const csrf = await dashboardLogin(app, jar, ADMIN.username, ADMIN.password)
        t.ok(jar.cookies.has('fmd_session'), 'the dashboard logs in on plain HTTP')
        t.equal((await jar.inject(app, { url: '/dashboard/api/session' })).statusCode, 200)
        t.equal((await jar.inject(app, { method: 'POST', url: '/dashboard/api/logout', headers: { 'x-csrf-token': csrf } })).statusCode, 200)
      }
    })
  }
}

t.test('a decorator the plugin adds that the host app already has fails register with a coded error', async (t) => {
  for (const [decorate, name] of [
    [(app: FastifyInstance) => app.decorate('monitor', {} as never), 'monitor'],
    [(app: FastifyInstance) => app.decorateRequest('fmdSession', null), 'fmdSession']
  ] as const) {
    const app = Fastify()
    decorate(app)
    const err = await app.register(monitor, { dataDir: 'memory://', metrics: false }).ready().then(() => undefined, (e: unknown) => e as Error & { code?: string })
    t.equal(err?.code, 'FST_MONITORING_DECORATOR_CONFLICT', `"${name}" already decorated`)
    t.match(err?.message, new RegExp(`"${name}"`), 'the message names it')
    await app.close()
  }
})
