import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import monitor from '../lib/index.js'
import { resolveOptions, type MonitorOptions } from '../lib/options.js'
import { tmpDir } from './helpers.js'

async function registerError (options: unknown): Promise<Error & { code?: string }> {
  const app = Fastify()
  try {
    await app.register(monitor, options as MonitorOptions)
    await app.ready()
  } catch (err) {
    return err as Error & { code?: string }
  } finally {
    await app.close().catch(() => {})
  }
  throw new Error(`registering with ${JSON.stringify(options)} did not fail`)
}

t.test('invalid options fail at register with an error naming the option', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ tablePrefix: 'x; drop table users' }, /"tablePrefix" option must match/],
    [{ tablePrefix: 'Upper_' }, /"tablePrefix" option/],
    [{ defaultMonitorLevel: 4 }, /"defaultMonitorLevel" option must be an integer from 0 to 3, got number 4/],
    [{ defaultMonitorLevel: '1' }, /"defaultMonitorLevel" option must be an integer from 0 to 3, got "1"/],
    [{ database: 'mysql://localhost/x' }, /"database" option must be a postgres:\/\/ or postgresql:\/\/ URL/],
    [{ maxBufferedRecords: 0 }, /"maxBufferedRecords" option/],
    [{ flushIntervalMs: 1.5 }, /"flushIntervalMs" option/],
    [{ dashboard: { testResultsToken: 'short' } }, /"dashboard.testResultsToken" option must be a string of at least 16 characters/],
    [{ enabled: 'yes' }, /"enabled" option must be a boolean/],
    [{ ignoreMethods: 'HEAD' }, /"ignoreMethods" option must be an array of strings/],
    [{ appVersion: '' }, /"appVersion" option/],
    [{ git: '/nonexistent/.git' }, /"git" option must point at a readable git repository/],
    [{ groupBy: { user: 1 } }, /"groupBy" option/],
    [{ retention: 30 }, /"retention" option is not an option of fastify-monitoring-dashboard/]
  ]
  for (const [options, message] of cases) {
    const err = await registerError(options)
    t.match(err.message, message, JSON.stringify(options))
    t.equal(err.code, 'FST_MONITORING_INVALID_OPTION')
  }
})

t.test('a database URL in an error message has its password hidden', async (t) => {
  const err = await registerError({ database: 'mysql://user:secret@db/x' })
  t.notMatch(err.message, /secret/)
})

t.test('options come from a JSON config file, env vars override it, register options override both', async (t) => {
  const dir = tmpDir()
  const file = join(dir, 'monitor.json')
  writeFileSync(file, JSON.stringify({ appVersion: 'from-file', tablePrefix: 'file_', database: 'postgres://file@h/db', defaultMonitorLevel: 2 }))
  const fromFile = resolveOptions({}, { FASTIFY_MONITOR_CONFIG: file })
  if (fromFile instanceof Error) throw fromFile
  t.equal(fromFile.appVersion, 'from-file')
  t.equal(fromFile.tablePrefix, 'file_')
  t.equal(fromFile.defaultMonitorLevel, 2)
  t.same(fromFile.database, { kind: 'postgres', connectionString: 'postgres://file@h/db' })

  const withEnv = resolveOptions({}, { FASTIFY_MONITOR_CONFIG: file, FASTIFY_MONITOR_DATABASE_URL: 'postgres://env@h/db' })
  if (withEnv instanceof Error) throw withEnv
  t.same(withEnv.database, { kind: 'postgres', connectionString: 'postgres://env@h/db' }, 'env overrides the file')

  const explicit = resolveOptions({ configFile: file, appVersion: 'explicit' }, { FASTIFY_MONITOR_DATABASE_URL: 'postgres://env@h/db' })
  if (explicit instanceof Error) throw explicit
  t.equal(explicit.appVersion, 'explicit')

  // PGlite locally, PostgreSQL where the variable is set; both in one place contradict each other
  const envOverDir = resolveOptions({ dataDir: './local' }, { FASTIFY_MONITOR_DATABASE_URL: 'postgres://env@h/db' })
  if (envOverDir instanceof Error) throw envOverDir
  t.same(envOverDir.database, { kind: 'postgres', connectionString: 'postgres://env@h/db' }, 'the environment\'s URL wins over the code\'s dataDir')
  t.match(resolveOptions({ database: 'postgres://a@h/db', dataDir: './local' }, {}), { code: 'FST_MONITORING_INVALID_OPTION', message: /"dataDir" option cannot be combined with database in the options/ })
  writeFileSync(file, JSON.stringify({ database: 'postgres://file@h/db', dataDir: './local' }))
  t.match(resolveOptions({ configFile: file }, {}), { message: /"dataDir" option cannot be combined with database in the config file/ })

  writeFileSync(file, '{ not json')
  t.throws(() => resolveOptions({ configFile: file }, {}), { code: 'FST_MONITORING_CONFIG_FILE' })
  writeFileSync(file, '[1]')
  t.throws(() => resolveOptions({ configFile: file }, {}), /must hold a JSON object/)
})

t.test('defaults: embedded PGlite, level 1, fmd_ prefix, HEAD and OPTIONS ignored', async (t) => {
  const resolved = resolveOptions({}, {})
  if (resolved instanceof Error) throw resolved
  t.same(resolved.database, { kind: 'pglite', dataDir: './.fastify-monitor' })
  t.equal(resolved.defaultMonitorLevel, 1)
  t.equal(resolved.tablePrefix, 'fmd_')
  t.same([...resolved.ignoreMethods], ['HEAD', 'OPTIONS'])
  t.equal(resolved.appVersion, 'unknown')
  const clamped = resolveOptions({ maxBufferedRecords: 100, maxBatchSize: 1000 }, {})
  if (clamped instanceof Error) throw clamped
  t.equal(clamped.maxBatchSize, 100, 'a batch never exceeds what may be buffered')
})

t.test('enabled: false records nothing and opens no database', async (t) => {
  const dir = tmpDir()
  const app = Fastify()
  await app.register(monitor, { enabled: false, dataDir: join(dir, 'data') })
  app.get('/', async () => 'ok')
  await app.ready()
  t.equal((await app.inject('/')).statusCode, 200)
  t.equal(app.monitor.enabled, false)
  t.same(app.monitor.endpoints(), [])
  await t.rejects(app.monitor.setMonitorLevel('GET', '/', 0), { code: 'FST_MONITORING_STORAGE_UNAVAILABLE' })
  await app.close()
  const { existsSync } = await import('node:fs')
  t.notOk(existsSync(join(dir, 'data')), 'no database directory was created')
})
