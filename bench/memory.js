// Resident memory of the README's app on embedded PGlite: idle after 2,000 requests, on a first start (initdb
// and migrations) and on a restart of the same data directory. Each measurement is a fresh process; builds
// given as arguments (default dist/) are interleaved round by round, so they share the machine's load.
//   node bench/memory.js [--rounds 3] [distDir …]
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const args = process.argv.slice(2)
const roundsAt = args.indexOf('--rounds')
const rounds = roundsAt >= 0 ? Number(args.splice(roundsAt, 2)[1]) : 3
const builds = (args.length > 0 ? args : ['dist']).map((dir) => resolve(dir))

if (process.env.FMD_MEMORY_CHILD !== undefined) {
  const { default: Fastify } = await import('fastify')
  const { default: monitor } = await import(join(process.env.FMD_MEMORY_CHILD, 'index.js'))
  const app = Fastify({ logger: false })
  await app.register(monitor, { dataDir: process.env.FMD_DATA_DIR, appVersion: '1.4.2', dashboard: { users: [{ username: 'admin', password: 'admin-password', role: 'admin' }], sessionSecret: 's'.repeat(40) } })
  app.get('/users/:id', async (request) => ({ id: request.params.id }))
  await app.ready()
  await app.monitor.ready
  for (let i = 0; i < 2000; i++) await app.inject(`/users/${i}`)
  await app.monitor.flush()
  await new Promise((resolve) => setTimeout(resolve, 10_000))
  process.stdout.write(JSON.stringify({ rssMB: Math.round(process.memoryUsage().rss / 1048576) }))
  await app.close()
} else {
  const results = new Map(builds.map((b) => [b, { first: [], restart: [] }]))
  const measure = (build, dataDir) => JSON.parse(execFileSync(process.execPath, [new URL(import.meta.url).pathname], {
    env: { ...process.env, FMD_MEMORY_CHILD: build, FMD_DATA_DIR: dataDir }, encoding: 'utf8'
  })).rssMB
  for (let round = 0; round < rounds; round++) {
    for (const build of builds) {
      const dir = mkdtempSync(join(tmpdir(), 'fmd-memory-'))
      results.get(build).first.push(measure(build, join(dir, 'data')))
      results.get(build).restart.push(measure(build, join(dir, 'data')))
      rmSync(dir, { recursive: true, force: true })
    }
  }
  for (const [build, r] of results) console.log(`${build}: RSS MB, first start ${r.first.join(' / ')}; restart ${r.restart.join(' / ')}`)
}
