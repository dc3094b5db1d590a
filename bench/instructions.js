// npm run bench:instructions: what each server costs per request in CPU instructions, counted by valgrind's
// callgrind. A count of instructions does not depend on what else the machine is doing, so it resolves
// differences of a few per cent that `npm run bench` cannot on a shared 2-core VM (its CPU µs per request
// moved ±25% between rounds), and it gives #18's ratios a steady denominator: fastify-metrics' added cost.
//
// Each server (bench/server.js, as `npm run bench` runs it) starts under callgrind with counting off, with V8's
// `--single-threaded` (below); it gets --warm-up requests (so V8 has optimised the hot code), then counting is
// switched on for --requests requests and the counters are dumped, per thread. Requests go in batches of
// --batch, each flushed to the database, so the writer's batches have the size they have at full speed.
// Reported per request: instructions of the whole process (main thread and the writer's thread) and of the
// main thread alone, each over bare Fastify's, and #18's app ratio. PostgreSQL is another process, and its CPU
// per row depends on how fast rows arrive (under callgrind the writer sends 20–40 times slower, and the
// server's CPU per row read 7.2 µs against 3.4–5.8 at full speed), so its row of #18 comes from `npm run bench`.
// Instructions are not time: a cache miss costs more than an add, and some code counts more under callgrind
// than its native time suggests (the writer's COPY rows: 1,161 instructions per row counted, 57 ns natively).
// --calibrate (on by default) runs bare Fastify natively each round, to read the counts as µs at its rate.
import { execFileSync, fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { median } from './stats.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const SERVERS = arg('servers', 'bare,fastify-metrics,level1-postgres,level2-postgres-nooutliers,level1-postgres-otherlevel2').split(',')
const ROUNDS = Number(arg('rounds', 2))
// 50,000: after 20,000 (7 of the writer's batches) TurboFan was still compiling the writer's code while
// counted (about 800 instructions per request of it); warming up in smaller batches instead made it compile
// again when the batches grew
const WARM_UP = Number(arg('warm-up', 50_000))
const REQUESTS = Number(arg('requests', 12_000))
// rows per batch: at full speed the writer gets a batch every 250 ms (flushIntervalMs), about 3,000 rows at
// 12,000 requests/s; under callgrind the same interval would hold 50, and its per-batch costs would weigh 60×
const BATCH = Number(arg('batch', 3_000))
// V8's compilers and garbage collector on the thread they serve instead of helper threads: the count then
// does not depend on when a helper thread happened to run (the spread between rounds fell from up to 30% to 1%)
// No memory reducer: it runs a full GC in an isolate that has allocated little for 8 s. At full speed the
// writer gets a batch every 250 ms and never qualifies; under callgrind a batch of 3,000 requests takes 4–8 s,
// and one such GC in the writer (about 60M instructions) added up to 20,000 instructions per request to a count
// --functions N: where the instructions go, the N costliest functions of each thread (self cost per request). JIT code
// has no symbols for callgrind: node's --perf-basic-prof writes /tmp/perf-<pid>.map, which names each address range
const FUNCTIONS = Number(arg('functions', 0))
const V8_FLAGS = ['--single-threaded', '--no-memory-reducer', ...(FUNCTIONS > 0 ? ['--perf-basic-prof'] : [])]
const CONNECTIONS = Number(arg('connections', 10))
const CALIBRATE = arg('calibrate', 'yes') !== 'no'
const URL_PATH = '/users/42'
const SERVER = new URL('./server.js', import.meta.url).pathname

try { execFileSync('valgrind', ['--version'], { stdio: 'ignore' }) } catch { throw new Error('bench:instructions needs valgrind (Debian package valgrind)') }

const outDir = mkdtempSync(join(tmpdir(), 'fmd-callgrind-'))
if (process.env.BENCH_KEEP_CALLGRIND === undefined) process.on('exit', () => rmSync(outDir, { recursive: true, force: true }))
else console.error(`callgrind's files: ${outDir}`)

/** The `count` costliest functions (self instructions per request) of each thread callgrind dumped for one process. */
function topFunctions (pid, requests, count) {
  const mapFile = `/tmp/perf-${pid}.map`
  const ranges = readFileSync(mapFile, 'utf8').split('\n').filter(Boolean).map((line) => {
    const [start, size, ...name] = line.split(' ')
    return { start: parseInt(start, 16), end: parseInt(start, 16) + parseInt(size, 16), name: name.join(' ') }
  }).sort((a, b) => a.start - b.start)
  const jitName = (address) => {
    let lo = 0
    let hi = ranges.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (ranges[mid].end <= address) lo = mid + 1
      else if (ranges[mid].start > address) hi = mid - 1
      else return ranges[mid].name
    }
    return 'JIT code not named'
  }
  const lines = []
  for (const file of readdirSync(outDir).filter((name) => name.startsWith(`cg.${pid}.1-`)).sort()) {
    const text = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', join(outDir, file)], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
    const byName = new Map()
    for (const match of text.matchAll(/^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.+)$/gm)) {
      if (match[2] === 'PROGRAM TOTALS') continue
      const address = /^\?\?\?:0x([0-9a-f]+)/.exec(match[2])
      const name = address === null ? match[2].replace(/^\?\?\?:/, '').replace(/\((?:[^()]|\([^()]*\))*\)/g, '()') : jitName(parseInt(address[1], 16))
      byName.set(name, (byName.get(name) ?? 0) + Number(match[1].replaceAll(',', '')) / requests)
    }
    const top = [...byName].sort((a, b) => b[1] - a[1]).slice(0, count)
    if (top.length === 0 || top[0][1] < 1) continue
    lines.push(`  thread ${Number(file.slice(file.lastIndexOf('-') + 1))}:`, ...top.map(([name, value]) => `  ${value.toFixed(0).padStart(7)}  ${name.slice(0, 140)}`))
  }
  rmSync(mapFile, { force: true })
  return lines.join('\n')
}

/** The counters callgrind dumped for one process: instructions per thread (thread 1 is the main thread). */
function readDump (pid) {
  const threads = new Map()
  for (const file of readdirSync(outDir).filter((name) => name.startsWith(`cg.${pid}.1-`))) {
    const totals = readFileSync(join(outDir, file), 'utf8').match(/^totals: (\d+)/m)
    threads.set(Number(file.slice(file.lastIndexOf('-') + 1)), totals === null ? 0 : Number(totals[1]))
  }
  if (threads.size === 0) throw new Error(`callgrind wrote no dump for ${pid} in ${outDir}`)
  return threads
}

async function measure (kind) {
  // the writer's timed work (reading the levels, every 5 s by default) costs per second, not per request: under
  // callgrind the requests come 30 times slower, so that work would weigh 30 times its share; it is left out
  const options = { ...JSON.parse(process.env.BENCH_OPTIONS ?? '{}'), flushIntervalMs: 60_000, levelPollIntervalMs: 3_600_000 }
  const child = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes',
    `--callgrind-out-file=${outDir}/cg.%p`, process.execPath, ...V8_FLAGS, SERVER, kind], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], env: { ...process.env, BENCH_OPTIONS: JSON.stringify(options) } })
  let log = ''
  child.stderr.on('data', (chunk) => { log += chunk })
  const [ready] = await Promise.race([once(child, 'message'), once(child, 'exit').then(() => { throw new Error(`${kind} did not start under valgrind:\n${log}`) })])
  const url = `http://127.0.0.1:${ready.port}${URL_PATH}`
  // requests in batches of BATCH, each flushed to the database, as at full speed
  const send = async (amount) => {
    const totals = { errors: 0, seconds: 0 }
    for (let sent = 0; sent < amount; sent += BATCH) {
      const result = await autocannon({ url, connections: CONNECTIONS, amount: Math.min(BATCH, amount - sent) })
      child.send('flush')
      await once(child, 'message')
      totals.errors += result.errors + result.non2xx
      totals.seconds += result.duration
    }
    return totals
  }
  // requests (not a pause, after which V8 recompiled code the counted requests then paid for) until the
  // writer's flush tick, armed by the first rows, has run at least once (flushIntervalMs later): as at full
  // speed within the first seconds. Its first run among the counted requests added ~18,000 instructions per
  // request of TurboFan compiling the paths it took.
  const warmUpStarted = Date.now()
  await send(WARM_UP)
  while (Date.now() - warmUpStarted < options.flushIntervalMs + 10_000) await send(BATCH)
  execFileSync('callgrind_control', ['--instr=on', String(child.pid)], { stdio: 'ignore' })
  const result = await send(REQUESTS)
  execFileSync('callgrind_control', ['--dump', String(child.pid)], { stdio: 'ignore' })
  execFileSync('callgrind_control', ['--instr=off', String(child.pid)], { stdio: 'ignore' })
  child.send('stop')
  const [stopped] = await once(child, 'message')
  await once(child, 'exit')
  const threads = readDump(child.pid)
  if (FUNCTIONS > 0) console.error(`${kind}: the costliest functions, instructions per request (self)\n${topFunctions(child.pid, REQUESTS, FUNCTIONS)}`)
  const all = [...threads.values()].reduce((a, b) => a + b, 0)
  if (result.errors > 0) throw new Error(`${kind}: ${result.errors} failed requests`)
  const dropped = stopped.stats?.dropped ?? 0
  if (dropped > 0) console.error(`${kind}: ${dropped} records dropped`)
  return { perRequest: all / REQUESTS, mainPerRequest: (threads.get(1) ?? 0) / REQUESTS, rps: REQUESTS / result.seconds }
}

/** Bare Fastify without valgrind, the same requests: its user CPU per request, to read instructions as µs. */
async function calibrate () {
  const child = fork(SERVER, ['bare'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [ready] = await once(child, 'message')
  const url = `http://127.0.0.1:${ready.port}${URL_PATH}`
  const sample = async () => { child.send('sample'); return (await once(child, 'message'))[0].cpu.user }
  await autocannon({ url, connections: CONNECTIONS, amount: WARM_UP * 10 })
  const before = await sample()
  await autocannon({ url, connections: CONNECTIONS, amount: REQUESTS * 10 })
  const userUs = (await sample()) - before
  child.send('stop')
  await once(child, 'exit')
  return userUs / (REQUESTS * 10)
}

const results = Object.fromEntries(SERVERS.map((kind) => [kind, []]))
// bare Fastify's native user CPU per request, read each round (the machine's speed drifts), to read counts as µs
const nativeUs = []
for (let round = 0; round < ROUNDS; round++) {
  if (CALIBRATE) nativeUs.push(await calibrate())
  const order = SERVERS.slice(round % SERVERS.length).concat(SERVERS.slice(0, round % SERVERS.length))
  for (const kind of order) {
    const r = await measure(kind)
    results[kind].push(r)
    console.error(`round ${round + 1} ${kind.padEnd(28)} ${Math.round(r.perRequest)} instructions/request (main thread ${Math.round(r.mainPerRequest)}), ${Math.round(r.rps)} req/s under callgrind`)
  }
}

const med = (kind, key) => median(results[kind].map((r) => r[key]))
const has = (kind) => results[kind] !== undefined
const bare = has('bare') ? med('bare', 'perRequest') : undefined
const bareMain = has('bare') ? med('bare', 'mainPerRequest') : undefined
const spread = (kind) => { const values = results[kind].map((r) => r.perRequest); return (Math.max(...values) - Math.min(...values)) / median(values) }
console.table(SERVERS.map((kind) => ({
  server: kind,
  'instructions/request': Math.round(med(kind, 'perRequest')),
  'over bare': bare === undefined ? '-' : Math.round(med(kind, 'perRequest') - bare),
  'main thread': Math.round(med(kind, 'mainPerRequest')),
  'main thread over bare': bareMain === undefined ? '-' : Math.round(med(kind, 'mainPerRequest') - bareMain),
  'spread between rounds': `${(spread(kind) * 100).toFixed(2)}%`
})))
for (const [kind, base] of [['level2-postgres-nooutliers', 'level1-postgres'], ['level1-postgres-otherlevel2', 'level1-postgres']]) {
  if (!has(kind) || !has(base)) continue
  console.log(`${kind} over ${base}: ${Math.round(med(kind, 'perRequest') - med(base, 'perRequest'))} instructions per request (main thread ${Math.round(med(kind, 'mainPerRequest') - med(base, 'mainPerRequest'))})`)
}
const rates = bare === undefined ? [] : nativeUs.map((us) => bare / us)
const perUs = rates.length > 0 ? median(rates) : undefined
if (perUs !== undefined) console.log(`bare Fastify natively: ${nativeUs.map((us) => us.toFixed(2)).join(', ')} µs of user CPU per request by round, so ${rates.map(Math.round).join(', ')} instructions per µs`)
if (bare !== undefined && has('fastify-metrics')) {
  // issue #18's ratios, with fastify-metrics' added instructions as the denominator
  const fmAdded = med('fastify-metrics', 'perRequest') - bare
  console.table(SERVERS.filter((kind) => kind.startsWith('level')).map((kind) => {
    const app = med(kind, 'perRequest') - bare
    return {
      server: kind,
      'app added / fm added (≤ 0.2)': (app / fmAdded).toFixed(3),
      'over level 1, µs': perUs === undefined || !has('level1-postgres') ? '-' : ((med(kind, 'perRequest') - med('level1-postgres', 'perRequest')) / perUs).toFixed(2)
    }
  }))
  console.log(`fastify-metrics adds ${Math.round(fmAdded)} instructions per request${perUs === undefined ? '' : ` (${(fmAdded / perUs).toFixed(1)} µs)`}; PostgreSQL's CPU per row is not counted here (see npm run bench)`)
}
console.log(`${ROUNDS} rounds of ${REQUESTS} requests after ${WARM_UP} to warm up, ${CONNECTIONS} connections, hello route (${URL_PATH})`)
