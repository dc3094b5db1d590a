import t from 'tap'
import { backend, buildApp } from './helpers.js'

// The dashboard's files as a browser gets them (issue #15.6): precompressed, hashed assets cached for good,
// the page revalidated, and a favicon that costs no request.
t.test('assets are served precompressed and immutable, the page revalidated, with an inline favicon', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const app = await buildApp({ ...store.options, dashboard: { users: [{ username: 'admin', password: 'admin-password', role: 'admin' }], sessionSecret: 's'.repeat(40) } })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready

  const compressedPage = await app.inject({ url: '/dashboard/', headers: { 'accept-encoding': 'br, gzip' } })
  t.equal(compressedPage.statusCode, 200)
  t.equal(compressedPage.headers['content-encoding'], 'br', 'the page too is sent precompressed')
  t.equal(compressedPage.headers['cache-control'], 'no-cache', 'index.html is revalidated, so a new build is picked up')
  const page = await app.inject({ url: '/dashboard/' })
  t.equal(page.headers['cache-control'], 'no-cache')
  t.match(page.body, /<link rel="icon" href="data:image\/svg\+xml,/, 'an inline favicon: no /favicon.ico request, no 404 in the host app')
  const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(page.body)?.[1]
  t.ok(script, 'the page names its hashed script')

  for (const [accept, encoding] of [['br, gzip', 'br'], ['gzip', 'gzip']] as const) {
    const asset = await app.inject({ url: `/dashboard/${script}`, headers: { 'accept-encoding': accept } })
    t.equal(asset.statusCode, 200)
    t.equal(asset.headers['content-encoding'], encoding, `${encoding} when accepted`)
    t.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable', 'hashed: cached for good')
  }
  const plain = await app.inject({ url: `/dashboard/${script}` })
  t.equal(plain.headers['content-encoding'], undefined, 'plain for a client that accepts neither')
  t.match(plain.body, /\S/)
})
