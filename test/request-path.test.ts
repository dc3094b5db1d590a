// Issue #18: the request path without an onResponse hook still sees every kind of request, over real
// sockets (Node's response-finish channel, the socket's close) as well as through inject().
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import monitor, { UNMATCHED_ROUTE, type MonitorOptions } from '../lib/index.js'
import { DIALECTS, backend, until } from './helpers.js'

interface Row { method: string, route: string, status_code: number, group_by: string | null, ip: string | null, duration_ms: number, time_requested: Date }

async function storedRows (app: FastifyInstance): Promise<Row[]> {
  await app.monitor.flush()
  return await app.monitor.db.selectFrom('request as r').innerJoin('endpoint as e', 'e.id', 'r.endpoint_id')
    .select(['e.method', 'e.route', 'r.status_code', 'r.group_by', 'r.ip', 'r.duration_ms', 'r.time_requested']).execute()
}

/** `http_request_duration_seconds_count` per `route status` from /metrics. */
async function scrapedCounts (app: FastifyInstance): Promise<Map<string, number>> {
  const text = (await app.inject('/metrics')).body
  const counts = new Map<string, number>()
  for (const match of text.matchAll(/^http_request_duration_seconds_count\{method="([^"]*)",route="([^"]*)",status_code="(\d+)"\} (\d+)$/gm)) {
    counts.set(`${match[1]} ${match[2]} ${match[3]}`, Number(match[4]))
  }
  return counts
}

async function build (options: MonitorOptions): Promise<FastifyInstance> {
  const app = Fastify({ trustProxy: true })
  await app.register(monitor, { flushIntervalMs: 20, ...options, groupBy: (request) => request.headers['x-user'] as string | undefined })
  // the app's own guards, added after the plugin as usual: a global onRequest hook, a route preHandler, a rate limit
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers['x-deny'] === 'yes') await reply.code(401).send({ error: 'who are you' })
  })
  await app.register(rateLimit, { global: false })
  app.get('/hello/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  app.get('/admin', { preHandler: async (request, reply) => { await reply.code(403).send({ error: 'forbidden' }) } }, async () => 'secret')
  app.get('/limited', { config: { rateLimit: { max: 2, timeWindow: 60_000 } } }, async () => 'ok')
  app.get('/typed', { schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } } }, async () => 'typed')
  app.get('/boom', async () => { throw new Error('boom') })
  let hang: (() => void) | undefined
  app.get('/hang', async () => { await new Promise<void>((resolve) => { hang = resolve }); return 'late' })
  app.get('/quiet', { config: { monitor: false } }, async () => 'quiet')
  app.addHook('onClose', async () => { hang?.() })
  app.decorate('releaseHang', () => { hang?.() })
  return app
}

/** The app of {@link build} on `dialect`'s backend, listening on a port of its own; closed and cleaned up with `t`. */
async function listening (t: Test, dialect: 'pglite' | 'postgres'): Promise<{ app: FastifyInstance, port: number }> {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const app = await build(store.options)
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  return { app, port: (app.server.address() as { port: number }).port }
}

/** A request whose client goes away while the handler still runs. */
async function abortedRequest (port: number, path: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path })
    req.on('error', () => resolve())
    req.end()
    setTimeout(() => { req.destroy(); resolve() }, 100)
  })
}

for (const dialect of DIALECTS) {
  for (const transport of ['http', 'inject'] as const) {
    t.test(`${dialect}, ${transport}: 404, 401, 403, 429, 400, thrown errors, trustProxy IP and groupBy are stored and counted`, async (t) => {
      const store = await backend(dialect)
      t.teardown(store.cleanup)
      const app = await build(store.options)
      t.teardown(() => app.close())
      const base = transport === 'http' ? await app.listen({ port: 0, host: '127.0.0.1' }) : undefined
      await app.ready()
      await app.monitor.ready
      const send = async (url: string, headers: Record<string, string> = {}): Promise<number> => {
        if (base === undefined) return (await app.inject({ url, headers })).statusCode
        return (await fetch(base + url, { headers })).status
      }

      const sentFrom = Date.now()
      const sent: Array<[string, number]> = [
        ['/hello/1', await send('/hello/1', { 'x-forwarded-for': '203.0.113.7', 'x-user': 'ada' })],
        ['/no/such/page', await send('/no/such/page')],
        ['/hello/2', await send('/hello/2', { 'x-deny': 'yes' })],
        ['/admin', await send('/admin')],
        ['/limited', await send('/limited')],
        ['/limited', await send('/limited')],
        ['/limited', await send('/limited')],
        ['/typed', await send('/typed?n=abc')],
        ['/boom', await send('/boom')],
        ['/quiet', await send('/quiet')]
      ]
      t.same(sent.map(([, status]) => status), [200, 404, 401, 403, 200, 200, 429, 400, 500, 200], 'the app answered as written')

      let rows: Row[] = []
      t.ok(await until(async () => { rows = await storedRows(app); return rows.length >= 9 }), 'every monitored request is stored')
      const seen = rows.map((r) => `${r.route} ${r.status_code}`).sort()
      t.same(seen, [
        `${UNMATCHED_ROUTE} 404`, '/admin 403', '/boom 500', '/hello/:id 200', '/hello/:id 401',
        '/limited 200', '/limited 200', '/limited 429', '/typed 400'
      ].sort(), 'one row per request with its own status; the route opted out is not stored')
      const hello = rows.find((r) => r.route === '/hello/:id' && r.status_code === 200)!
      t.equal(hello.ip, '203.0.113.7', 'request.ip with trustProxy')
      t.equal(hello.group_by, 'ada', 'groupBy')
      t.ok(rows.filter((r) => r !== hello).every((r) => r.ip === '127.0.0.1'), 'without X-Forwarded-For, the client\'s own address (the same connection as the request with it, over HTTP)')
      t.ok(rows.every((r) => r.time_requested.getTime() >= sentFrom - 1 && r.time_requested.getTime() <= Date.now()), 'stored at the wall-clock time the request started')
      t.ok(rows.every((r) => r.duration_ms > 0 && r.duration_ms < 5_000), 'durations are measured from the request\'s start')

      const counts = await scrapedCounts(app)
      for (const key of ['GET /hello/:id 200', `GET ${UNMATCHED_ROUTE} 404`, 'GET /hello/:id 401', 'GET /admin 403', 'GET /limited 429', 'GET /typed 400', 'GET /boom 500']) {
        t.equal(counts.get(key), 1, `counted in /metrics: ${key}`)
      }
      t.equal(counts.get('GET /limited 200'), 2)
      t.notOk([...counts.keys()].some((key) => key.includes('/quiet') || key.includes('/metrics')), 'ignored routes and /metrics are not counted')
    })
  }

  t.test(`${dialect}: a request whose client went away is stored as 499 and counted`, async (t) => {
    const { app, port } = await listening(t, dialect)
    await abortedRequest(port, '/hang')
    let rows: Row[] = []
    t.ok(await until(async () => { rows = await storedRows(app); return rows.length >= 1 }), 'the aborted request is stored')
    t.same(rows.map((r) => `${r.route} ${r.status_code}`), ['/hang 499'])
    // from the server's start stamp to the socket's close; under load the request may reach the server late
    t.ok(rows[0]!.duration_ms > 0 && rows[0]!.duration_ms < 5_000, `its duration runs until the client left: ${rows[0]!.duration_ms} ms`)
    t.equal((await scrapedCounts(app)).get('GET /hang 499'), 1, 'counted in /metrics')
    // the handler ending later must not count the request a second time
    ;(app as unknown as { releaseHang: () => void }).releaseHang()
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.equal((await storedRows(app)).length, 1, 'stored once')
    t.equal((await scrapedCounts(app)).get('GET /hang 200'), undefined, 'and counted once')
  })

  t.test(`${dialect}: pipelined requests on one connection are each stored once, with their own status and duration`, async (t) => {
    const { app, port } = await listening(t, dialect)
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
    await once(socket, 'connect')
    // three requests in one write: Node runs the later two while the first still waits in its handler, and
    // sends their responses after the first one's
    socket.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /no/such HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    await new Promise((resolve) => setTimeout(resolve, 150))
    ;(app as unknown as { releaseHang: () => void }).releaseHang()
    await once(socket, 'close')
    t.same(received.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 404'], 'answered in order')
    let rows: Row[] = []
    t.ok(await until(async () => { rows = await storedRows(app); return rows.length >= 3 }), 'every request is stored')
    await new Promise((resolve) => setTimeout(resolve, 50))
    rows = await storedRows(app)
    t.same(rows.map((r) => `${r.route} ${r.status_code}`).sort(), ['/hang 200', '/hello/:id 200', `${UNMATCHED_ROUTE} 404`].sort(), 'once each, none as 499 when the connection closes')
    const hang = rows.find((r) => r.route === '/hang')!
    t.ok(hang.duration_ms >= 140, `the first one's duration covers its wait: ${hang.duration_ms} ms`)
    const counts = await scrapedCounts(app)
    t.same([counts.get('GET /hang 200'), counts.get('GET /hello/:id 200'), counts.get(`GET ${UNMATCHED_ROUTE} 404`), counts.get('GET /hang 499')], [1, 1, 1, undefined], 'counted once each in /metrics')
  })

  t.test(`${dialect}: pipelined requests whose client went away are each stored as 499, none lost`, async (t) => {
    const { app, port } = await listening(t, dialect)
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    // the later two are answered by the app but wait behind the first, which never gets to send: the client
    // leaves with none of the three answers
    socket.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /no/such HTTP/1.1\r\nHost: x\r\n\r\n')
    let received = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
    await new Promise((resolve) => setTimeout(resolve, 150))
    socket.destroy()
    let rows: Row[] = []
    t.ok(await until(async () => { rows = await storedRows(app); return rows.length >= 3 }), 'every request is stored')
    t.equal(received, '', 'the client received no answer')
    t.same(rows.map((r) => `${r.route} ${r.status_code}`).sort(), ['/hang 499', '/hello/:id 499', `${UNMATCHED_ROUTE} 499`].sort(), 'each as 499')
    const counts = await scrapedCounts(app)
    t.same([counts.get('GET /hang 499'), counts.get('GET /hello/:id 499'), counts.get(`GET ${UNMATCHED_ROUTE} 499`)], [1, 1, 1], 'counted in /metrics')
    // the first handler ending later counts nothing again
    ;(app as unknown as { releaseHang: () => void }).releaseHang()
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.equal((await storedRows(app)).length, 3, 'stored once each')
    t.equal((await scrapedCounts(app)).get('GET /hang 200'), undefined, 'and counted once')
  })
}

t.test('/metrics counts every request answered so far, at any moment, before any flush', async (t) => {
  const app = await build({ dataDir: 'memory://', dashboard: false, flushIntervalMs: 60_000 })
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  const sent = new Map<string, number>()
  for (let round = 1; round <= 5; round++) {
    // concurrent requests of several statuses, then a scrape: no flush in between
    const urls = Array.from({ length: 20 * round }, (_, i) => i % 4 === 0 ? `/missing/${i}` : i % 4 === 1 ? '/boom' : `/hello/${i}`)
    const statuses = await Promise.all(urls.map(async (url) => (await fetch(base + url)).status))
    urls.forEach((url, i) => {
      const key = url.startsWith('/missing') ? `GET ${UNMATCHED_ROUTE} ${statuses[i]!}` : url === '/boom' ? `GET /boom ${statuses[i]!}` : `GET /hello/:id ${statuses[i]!}`
      sent.set(key, (sent.get(key) ?? 0) + 1)
    })
    const counts = await scrapedCounts(app)
    t.same(Object.fromEntries(counts), Object.fromEntries(sent), `round ${round}: /metrics equals the requests sent`)
  }
  t.equal(app.monitor.stats().written, 0, 'none of them had reached the database yet: the scrape does not wait for a flush')
})
