// npm run seed -- --requests 10000000 [--database postgres://…] [--data-dir ./.fastify-monitor] [--prefix fmd_] [--days 30]
import { seededApp } from './seed-lib.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const app = await seededApp({
  database: arg('database', process.env.FASTIFY_MONITOR_DATABASE_URL),
  dataDir: arg('data-dir', undefined),
  prefix: arg('prefix', 'fmd_'),
  requests: Number(arg('requests', 100_000)),
  days: Number(arg('days', 30))
})
await app.close()
