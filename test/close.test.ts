import t from 'tap'
import { DIALECTS, backend, buildApp } from './helpers.js'

for (const dialect of DIALECTS) {
  t.test(`${dialect}: app.close() writes everything before it resolves`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    // a long flush interval: nothing would be written by the timer during the test; close waits as
    // long as it takes the database to open (seconds on a loaded machine), as a deploy would configure it
    const app = await buildApp({ ...store.options, flushIntervalMs: 60_000, closeTimeoutMs: 120_000 })
    await app.ready()
    for (let i = 0; i < 123; i++) await app.inject({ url: `/users/${i}` })
    await app.close()

    const again = await buildApp(store.options)
    t.teardown(() => again.close())
    await again.ready()
    await again.monitor.ready
    const { n } = await again.monitor.db.selectFrom('request').select(({ fn }) => fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
    t.equal(Number(n), 123, 'all records written by close are there after a restart')
  })
}
