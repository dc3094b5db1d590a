import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import { Registry, collectDefaultMetrics } from 'prom-client'
import monitor from '../../lib/index.js'
import { compilePlugin } from '../compiled.js'
import { backend } from '../helpers.js'

// Issue #12 B: after app.close() nothing of the app stays reachable. prom-client's default metrics
// start a process-wide GC observer that held each app's registry (→ collect callbacks → logger →
// the Fastify instance), and the storage client left a 5 s timer: ≈ 0.5 MB per app measured here.
t.setTimeout(900_000)
const APPS = 50
const FIXTURE = fileURLToPath(new URL('../fixtures/build-close-apps.mjs', import.meta.url))
const run = promisify(execFile)

t.test('postgres: building and closing 50 apps in one process keeps the heap flat', async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  const entry = compilePlugin()
  const { stdout } = await run(process.execPath, ['--expose-gc', FIXTURE], {
    env: {
      ...process.env,
      FMD_ENTRY: entry,
      FMD_APPS: String(APPS),
      FMD_OPTIONS: JSON.stringify({ ...store.options, dashboard: { sessionSecret: 's'.repeat(40) } })
    },
    maxBuffer: 1 << 20
  })
  const { heap } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { heap: number[] }
  t.equal(heap.length, APPS)
  // the first apps warm up caches (compiled code, Fastify's and ajv's): measured over 70 apps, the heap
  // grew 32 KB per app over apps 15–35 and 5 KB over apps 35–70. So the growth is the slope over apps
  // 30–50, where a closed app kept reachable still shows as ≈ 500 KB and the response schema that leaked an
  // ajv validator per app (#16) as ≈ 60 KB. The median of the slopes between every two of them (Theil–Sen),
  // not least squares: one app measured while a loaded machine had not yet let go of it moves it little
  const later = heap.slice(29)
  const slopes: number[] = []
  for (let i = 0; i < later.length; i++) for (let j = i + 1; j < later.length; j++) slopes.push((later[j]! - later[i]!) / (j - i))
  slopes.sort((a, b) => a - b)
  const slope = slopes[slopes.length >> 1]!
  const perAppKb = slope / 1024
  t.ok(perAppKb < 48, `the heap grows ${perAppKb.toFixed(1)} KB per app over apps 30–${APPS} (≈ 500 KB when each closed app stayed reachable)`)
})

/** The metric families of a scrape, with how often each is declared. */
function families (text: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const match of text.matchAll(/^# TYPE (\S+) /gm)) counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1)
  return counts
}

t.test('several apps in one process each serve the runtime metrics, once', async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  const own = new Registry()
  collectDefaultMetrics({ register: own })
  const apps = []
  for (const metrics of [true, true, { registry: own }, { defaultMetrics: false }]) {
    const app = Fastify()
    await app.register(monitor, { ...store.options, dashboard: false, metrics })
    t.teardown(() => app.close())
    await app.ready()
    apps.push(app)
  }
  for (const [i, app] of apps.entries()) {
    for (const accept of ['text/plain', 'application/openmetrics-text; version=1.0.0']) {
      const res = await app.inject({ url: '/metrics', headers: { accept } })
      t.equal(res.statusCode, 200)
      const declared = families(res.body)
      const runtime = ['process_cpu_user_seconds_total', 'process_cpu_user_seconds', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds', 'nodejs_heap_size_used_bytes']
        .filter((name) => declared.has(name))
      if (i === 3) {
        t.same(runtime, [], `app ${i} (${accept}): defaultMetrics: false serves none`)
        continue
      }
      t.equal(runtime.length, 4, `app ${i} (${accept}): CPU, event-loop lag, GC and heap are served`)
      t.ok([...declared.values()].every((n) => n === 1), `app ${i} (${accept}): each family once (a registry that has its own default set is not doubled)`)
      t.ok(declared.has('http_request_duration_seconds') && declared.has('fastify_monitor_app_info'), 'beside the app\'s own metrics')
      if (accept.startsWith('application/openmetrics')) t.match(res.body, /# EOF\n$/, 'one # EOF, at the end')
    }
  }
  const cpu = (body: string): number => Number(/^process_cpu_user_seconds_total (\S+)$/m.exec(body)?.[1])
  const first = cpu((await apps[0]!.inject('/metrics')).body)
  const second = cpu((await apps[1]!.inject('/metrics')).body)
  t.ok(first > 0 && second >= first, 'the process CPU is read live for every app')
})
