// npm run bench:sampler: what the level-2/3 stack sampler costs the main thread. A CPU-bound loop runs
// for a few seconds with the sampler off, then on with a window asked for every 10 ms (as level 3
// does), its samples attributed to the turn's own function (as a request's are to its handler);
// the event loop's delay shows the stalls its once-a-second rotation adds, and the work done per
// second what sampling and attribution cost. Rounds alternate off and on (compare within one run).
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { StackSampler, nowUs } from '../dist/profiling/sampler.js'
// the modules a real app has loaded: V8's profiler logs their code when it starts
import '../dist/index.js'
import 'pg'
import 'kysely'
import 'prom-client'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const SECONDS = Number(arg('seconds', 5))
const ROUNDS = Number(arg('rounds', 2))

function fibonacci (n) {
  return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2)
}

/** One turn's work: what a request's handler would be. */
function turn () {
  let n = 0
  const until = performance.now() + 10
  while (performance.now() < until) { fibonacci(18); n++ }
  return n
}

async function run (withSampler) {
  const sampler = new StackSampler(1000, 1000)
  // starting once logs the heap's code (tens of ms); the rotations after it are what matters
  const started = performance.now()
  if (withSampler) sampler.start()
  const startMs = performance.now() - started
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  let answered = 0
  let spins = 0
  const code = { keys: new Set(withSampler ? [sampler.locate(turn)] : []), concurrent: 0 }
  const end = performance.now() + SECONDS * 1000
  await new Promise((resolve) => {
    const work = () => {
      // 10 ms of work per turn, a window per turn (a profiled request)
      const start = nowUs()
      spins += turn()
      if (withSampler) sampler.treeOf(start, nowUs(), code).then((tree) => { if (tree !== undefined && tree.samples > 0) answered++ }, () => {})
      if (performance.now() < end) setImmediate(work); else resolve()
    }
    work()
  })
  await new Promise((resolve) => setTimeout(resolve, 1_200)) // the last rotation
  sampler.stop()
  delay.disable()
  return { sampler: withSampler ? 'on' : 'off', 'work per s': Math.round(spins / SECONDS), 'start ms': startMs.toFixed(1), 'loop delay p50 ms': (delay.percentile(50) / 1e6).toFixed(1), 'p99 ms': (delay.percentile(99) / 1e6).toFixed(1), 'max ms': (delay.max / 1e6).toFixed(1), 'windows answered': answered }
}

const rows = []
for (let round = 0; round < ROUNDS; round++) rows.push(await run(false), await run(true))
console.table(rows)
