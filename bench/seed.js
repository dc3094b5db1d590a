// npm run seed -- [--endpoints 8] [--versions 4] [--users 1000] [--ips 200] [--days 30] [--rows 10000000] [--history 30]
//   [--database postgres://…] [--data-dir ./dir] [--prefix fmdbench_]
// fills the database `npm run bench:api` reads (same defaults: BENCH_DATABASE_URL, prefix fmdbench_).
import { seededApp, shapeFromArgs } from './seed-lib.js'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const app = await seededApp({
  database: arg('database', undefined),
  dataDir: arg('data-dir', undefined),
  prefix: arg('prefix', undefined),
  shape: shapeFromArgs(argv)
})
await app.close()
