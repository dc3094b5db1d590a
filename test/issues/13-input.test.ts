import t from 'tap'
import Fastify from 'fastify'
import monitor from '../../lib/index.js'
import { resolveOptions } from '../../lib/options.js'
import { CookieJar, dashboardLogin } from '../cookie-jar.js'
import { DIALECTS, backend } from '../helpers.js'

// Issue #13.8: inputs the schemas let through answered 500.
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const EXPORT_TOKEN = 'export-token-0123456789'

for (const dialect of DIALECTS) {
  t.test(`${dialect}: non-finite ids and offsets and zones PostgreSQL does not know are 400`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify()
    await app.register(monitor, { ...store.options, metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40), exportToken: EXPORT_TOKEN } })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    const jar = new CookieJar()
    await dashboardLogin(app, jar, ADMIN.username, ADMIN.password)
    for (const url of ['/endpoints/Infinity', '/endpoints/1e400', '/endpoints/-1', '/endpoints/1/outliers?page=Infinity', '/outliers/Infinity', '/overview?tz=US/Pacific-New', '/load?tz=US/Pacific-New']) {
      const res = await jar.inject(app, { url: `/dashboard/api${url}` })
      t.equal(res.statusCode, 400, `${url} → 400 (${res.body})`)
    }
    t.equal((await jar.inject(app, { url: '/dashboard/api/overview?tz=Europe/Paris' })).statusCode, 200, 'a zone both know is fine')
    for (const query of ['offset=99999999999999999999', 'offset=Infinity', 'limit=1e400']) {
      const res = await app.inject({ url: `/dashboard/api/export/rollups?${query}`, headers: { authorization: `Bearer ${EXPORT_TOKEN}` } })
      t.equal(res.statusCode, 400, `export ${query} → 400`)
    }
  })
}

t.test('the invalid-URL option error masks credentials in the query string too', async (t) => {
  const err = resolveOptions({ database: 'mysql://user:pw@db.example/app?password=hunter22&sslkey=k' }) as Error
  t.match(err.message, /"database" option/)
  t.notMatch(err.message, /hunter22|:pw@/, err.message)
})
