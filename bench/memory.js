// Resident memory of an app in its own process, read from /proc/<pid>/status: right after it is ready, after
// --idle seconds, and its peak (VmHWM) and final RSS under --load seconds of autocannon at a fixed --rate (a
// fixed rate, so memory is compared at equal work whatever the machine's load). Targets:
//   bare           the README's app without the plugin
//   pglite         the README's app on PGlite: a first start (fresh data directory, initdb), then a restart of it
//   postgres       the README's app on the PostgreSQL server at $DATABASE_URL (default 127.0.0.1:5432/test),
//                  in a table prefix of its own, dropped afterwards
//   demo           example/server.js on PGlite (first start, seeded history), load spread over its routes; it
//                  imports ../dist, so it measures this checkout's build whatever --dist says
// Builds given with --dist (default dist/, repeatable) are interleaved round by round, so they share the load.
//   npm run build && node bench/memory.js [--rounds 1] [--idle 30] [--load 30] [--rate 2000] [--dist dir …] [target …]
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

if (process.env.FMD_MEMORY_CHILD !== undefined) {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: false })
  if (process.env.FMD_MEMORY_CHILD !== 'bare') {
    const { default: monitor } = await import(join(process.env.FMD_MEMORY_CHILD, 'index.js'))
    await app.register(monitor, {
      database: process.env.FMD_DATABASE,
      dataDir: process.env.FMD_DATA_DIR,
      tablePrefix: process.env.FMD_TABLE_PREFIX,
      appVersion: '1.4.2',
      dashboard: { users: [{ username: 'admin', password: 'admin-password', role: 'admin' }], sessionSecret: 's'.repeat(40) }
    })
  }
  app.get('/users/:id', async (request) => ({ id: request.params.id }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor?.ready
  process.stdout.write(`${app.server.address().port}\n`)
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
} else {
  const args = process.argv.slice(2)
  const option = (name, fallback) => { const at = args.indexOf(`--${name}`); return at < 0 ? fallback : Number(args.splice(at, 2)[1]) }
  const rounds = option('rounds', 1)
  const idleS = option('idle', 30)
  const loadS = option('load', 30)
  const rate = option('rate', 2000)
  const builds = []
  for (let at = args.indexOf('--dist'); at >= 0; at = args.indexOf('--dist')) builds.push(resolve(args.splice(at, 2)[1]))
  if (builds.length === 0) builds.push(resolve('dist'))
  const targets = args.length > 0 ? args : ['bare', 'pglite', 'postgres']
  const { default: autocannon } = await import('autocannon')
  const statusMB = (pid, field) => Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024)

  /** Starts one app, waits for its port, measures it, stops it. */
  async function measure ({ argv, env, paths }) {
    const child = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    const port = await new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => { out += chunk; const m = /(?:^|127\.0\.0\.1:)(\d{2,5})\b/m.exec(out); if (m) resolve(Number(m[1])) })
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)))
    })
    const started = statusMB(child.pid, 'VmRSS')
    await sleep(idleS * 1000)
    const idle = statusMB(child.pid, 'VmRSS')
    // resets VmHWM, so the peak is the load's, not the start's
    writeFileSync(`/proc/${child.pid}/clear_refs`, '5')
    const result = await autocannon({ url: `http://127.0.0.1:${port}`, connections: 10, overallRate: rate, duration: loadS, requests: paths.map((path) => ({ path })) })
    const peak = statusMB(child.pid, 'VmHWM')
    const loaded = statusMB(child.pid, 'VmRSS')
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    return `start ${started}, idle ${idle}, load peak ${peak} (${Math.round(result.requests.average)} req/s), after load ${loaded}`
  }

  const self = new URL(import.meta.url).pathname
  for (let round = 0; round < rounds; round++) {
    for (const build of builds) {
      for (const target of targets) {
        const dir = mkdtempSync(join(tmpdir(), 'fmd-memory-'))
        const readme = { argv: [self], paths: ['/users/1', '/users/2', '/nope'] }
        try {
          if (target === 'bare') console.log(`${target}: ${await measure({ ...readme, env: { FMD_MEMORY_CHILD: 'bare' } })}`)
          if (target === 'pglite') {
            const env = { FMD_MEMORY_CHILD: build, FMD_DATA_DIR: join(dir, 'data') }
            console.log(`${build} pglite first start: ${await measure({ ...readme, env })}`)
            console.log(`${build} pglite restart: ${await measure({ ...readme, env })}`)
          }
          if (target === 'postgres') {
            const prefix = `bm${process.pid}_`
            console.log(`${build} postgres: ${await measure({ ...readme, env: { FMD_MEMORY_CHILD: build, FMD_DATABASE: POSTGRES_URL, FMD_TABLE_PREFIX: prefix } })}`)
            const { default: pg } = await import('pg')
            const client = new pg.Client(POSTGRES_URL)
            await client.connect()
            const { rows } = await client.query("select tablename from pg_tables where schemaname = current_schema() and tablename like $1 || '%'", [prefix])
            if (rows.length > 0) await client.query(`drop table if exists ${rows.map((r) => `"${r.tablename}"`).join(', ')} cascade`)
            await client.end()
          }
          if (target === 'demo') {
            const env = { PORT: '0', FMD_DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'error' }
            console.log(`demo first start: ${await measure({ argv: [new URL('../example/server.js', import.meta.url).pathname], env, paths: ['/users', '/users/1', '/reports/2024', '/error', '/nope'] })}`)
          }
        } finally {
          rmSync(dir, { recursive: true, force: true })
        }
      }
    }
  }
}
