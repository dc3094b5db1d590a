import t from 'tap'
import Fastify from 'fastify'
import monitor from '../lib/index.js'
import { ONE_DIALECT, backend } from './helpers.js'

// Level 2 under a burst: memory stays bounded and only the hourly cap of outliers is stored (its own
// file: the longest of the outlier tests, run beside the others).
for (const dialect of ONE_DIALECT) {
  t.test(`${dialect}: a burst of 10,000 outliers keeps memory bounded and stores only the cap`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    const app = Fastify({ logger: false, bodyLimit: 1 << 20 })
    const cap = 25
    await app.register(monitor, {
      ...store.options,
      // nothing leaves the process until the explicit flush below: what the burst leaves in memory is what is measured
      flushIntervalMs: 60_000,
      defaultMonitorLevel: 2,
      dashboard: false,
      // every other request waits 20 ms, the rest answer at once: with this constant each slow one is an outlier
      outliers: { constant: 1.2, minSamples: 50, window: 2_000, maxPerEndpointHour: cap, bodyLimitBytes: 4_096 }
    })
    app.post<{ Querystring: { slow?: string } }>('/burst', async (request) => {
      if (request.query.slow === '1') await new Promise((resolve) => setTimeout(resolve, 20))
      return 'ok'
    })
    t.teardown(() => app.close())
    await app.ready()
    await app.monitor.ready
    const body = 'b'.repeat(4_096)
    const send = async (slow: boolean): Promise<void> => { await app.inject({ method: 'POST', url: slow ? '/burst?slow=1' : '/burst', payload: body, headers: { 'content-type': 'text/plain' } }) }
    for (let i = 0; i < 100; i++) await send(false)

    const { setFlagsFromString } = await import('node:v8')
    const { runInNewContext } = await import('node:vm')
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const heapAfterGc = (): number => { gc(); gc(); return process.memoryUsage().heapUsed }
    const before = heapAfterGc()
    const outliersFound = async (): Promise<number> => {
      const match = /fastify_monitor_outliers_total\{method="POST",route="\/burst"\} (\d+)/.exec((await app.inject('/metrics')).body)
      return Number(match?.[1] ?? 0)
    }
    // 200 at a time, half of them slow, until 10,000 outliers were found
    let rounds = 0
    while (await outliersFound() < 10_000 && rounds++ < 200) {
      await Promise.all(Array.from({ length: 200 }, async (_, i) => { await send(i % 2 === 0) }))
    }
    const found = await outliersFound()
    t.ok(found >= 10_000, `${found} outliers found in ${rounds} rounds of 200 requests`)
    // the kept ones wait for their stacks (the sampler's next rotation)
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const grownMb = (heapAfterGc() - before) / 1e6
    // a recorder holding every outlier's evidence (a 4 KB body each) would keep over 40 MB
    t.ok(grownMb < 10, `the heap grew ${grownMb.toFixed(1)} MB with ${found} outliers pending`)

    await app.monitor.flush()
    const db = app.monitor.db
    const id = (await db.selectFrom('endpoint').select('id').where('route', '=', '/burst').executeTakeFirstOrThrow()).id
    const hours = await db.selectFrom('outlier_hour').select(['found', 'stored']).where('endpoint_id', '=', id).execute()
    const total = hours.reduce((sum, h) => ({ found: sum.found + Number(h.found), stored: sum.stored + Number(h.stored) }), { found: 0, stored: 0 })
    // the burst may cross an hour: the cap holds per hour
    t.ok(total.stored >= 1 && total.stored <= cap * hours.length, `stored ${total.stored}, at most ${cap} per hour over ${hours.length} hour(s)`)
    t.equal(total.found, found, 'every outlier found is counted in the database')
    t.equal((await db.selectFrom('outlier').select('id').where('endpoint_id', '=', id).execute()).length, total.stored, 'and only the kept ones have rows')
    t.equal(app.monitor.stats().dropped, 0, 'no request record was dropped')
  })
}
