// outliers.stackSampling: when level 2 runs V8's stack sampler, which costs every request of the
// process while it runs. 'after-outlier' (the default) starts it at an outlier (that one has no stacks,
// later ones do); 'off' never samples at level 2; 'always' is covered by outliers.test.ts.
import t from 'tap'
import Fastify from 'fastify'
import { sql } from 'kysely'
import monitor from '../lib/index.js'
import { nowUs, performanceToUs } from '../lib/profiling/sampler.js'
import { ONE_DIALECT, backend, buildApp, until } from './helpers.js'

function burnCpuForSamplingTest (ms: number): number {
  const end = performance.now() + ms
  let spins = 0
  while (performance.now() < end) spins++
  return spins
}

interface Stacks { samples: number, hot: Array<{ frame: { functionName: string } }> }

for (const dialect of ONE_DIALECT) {
  for (const mode of [undefined, 'off'] as const) {
    t.test(`${dialect}: stackSampling '${mode ?? 'after-outlier'}'${mode === undefined ? ' (the default)' : ''}`, async (t) => {
      const store = await backend(dialect)
      t.teardown(store.cleanup)
      const app = await buildApp({
        ...store.options,
        defaultMonitorLevel: 2,
        outliers: { minSamples: 20, window: 100, ...(mode === undefined ? {} : { stackSampling: mode }) }
      })
      app.get<{ Querystring: { ms?: string } }>('/burn', async (request) => ({ spins: burnCpuForSamplingTest(Number(request.query.ms ?? 0)) }))
      t.teardown(() => app.close())
      await app.ready()
      await app.monitor.ready
      for (let i = 0; i < 30; i++) await app.inject('/burn?ms=0.2')
      await app.inject('/burn?ms=150')
      // the second slow request comes after the sampler's first rotation (1 s), which answers its window
      await new Promise((resolve) => setTimeout(resolve, 1_200))
      await app.inject('/burn?ms=150')

      const db = app.monitor.db
      const outliers = async () => (await sql<{ duration_ms: number, stacks: Stacks | null }>`
        select duration_ms, stacks from ${sql.table('outlier')} order by time_requested`.execute(db)).rows
      const found = await until(async () => { await app.monitor.flush(); return (await outliers()).filter((o) => o.duration_ms >= 140).length === 2 }, 20_000)
      t.ok(found,
        'both slow requests are outliers')
      const all = await outliers()
      t.equal(all[0]!.stacks, null, 'the first outlier has no stacks: the sampler was not running during it')
      const last = all.at(-1)!
      if (mode === 'off') {
        t.ok(all.every((o) => o.stacks === null), 'no outlier has stacks')
      } else {
        t.ok(last.stacks !== null && last.stacks.samples > 0, 'an outlier after the first has stacks: the first started the sampler')
        t.equal(last.stacks?.hot[0]?.frame.functionName, 'burnCpuForSamplingTest', 'naming the function that burnt the time')
      }
    })
  }
}

t.test('a request\'s times, read by performance.now(), are placed on the profiler\'s clock without reading it again', async (t) => {
  const earlier = performance.now()
  // the thread busy for a while after the reading, as a loaded machine may leave it
  const until = performance.now() + 30
  while (performance.now() < until);
  const placed = performanceToUs(earlier)
  const now = nowUs()
  t.ok(now - placed >= 30_000 && now - placed < 1_000_000, `placed where it was read, at least 30 ms before now (${((now - placed) / 1000).toFixed(2)} ms)`)
  t.ok(Math.abs(performanceToUs(performance.now()) - nowUs()) < 100_000, 'and now is now (a loaded machine may deschedule the thread between the two readings)')
})

t.test('a stackSampling that is not one of the modes fails at register, naming the option', async (t) => {
  await t.rejects(async () => {
    const bad = Fastify()
    await bad.register(monitor, { dataDir: 'memory://', outliers: { stackSampling: 'sometimes' as never } })
    await bad.ready()
  }, /"outliers.stackSampling" option.*'after-outlier', 'always', 'off'/)
})
