// How long an app on a throw-away database (`dataDir: 'memory://'`) takes to start, app after app in one
// process, as a test suite that builds an app per test does: register + ready + monitor.ready, then close.
// `--distinct` gives each app its own table prefix, so nothing of an earlier one is reused: what every
// start cost before (plus the one-off dump of the snapshot, which only the first app pays otherwise).
//   npm run build && node bench/memory-start.js [--distinct] [apps=5]
import Fastify from 'fastify'

const distinct = process.argv.includes('--distinct')
const apps = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 5)
const entry = new URL('../dist/index.js', import.meta.url)
const { default: monitor } = await import(entry)
const times = []
for (let i = 0; i < apps; i++) {
  const started = performance.now()
  const app = Fastify()
  await app.register(monitor, { dataDir: 'memory://', metrics: false, dashboard: false, tablePrefix: distinct ? `b${i}_` : 'fmd_' })
  await app.ready()
  await app.monitor.ready
  times.push(Math.round(performance.now() - started))
  await app.close()
}
console.log(JSON.stringify({ reuse: !distinct, startMs: times }))
