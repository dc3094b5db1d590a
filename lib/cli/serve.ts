/**
 * `serve`: the collector. A Fastify server of its own with the dashboard, its API, `/metrics` and the
 * ingest route, over the database that services write to directly (the plugin with `dashboard: false`)
 * or send to over HTTP (the ingest route). The dashboard then lives off the services' ports.
 */
import { parseArgs } from 'node:util'
import Fastify, * as fastifyExports from 'fastify'
import monitor from '../index.js'
import { DATABASE_ENV, EXPORT_TOKEN_ENV, INGEST_TOKEN_ENV, POSTGRES_URL, SESSION_SECRET_ENV, TEST_RESULTS_TOKEN_ENV } from '../options.js'
import { EXIT, UsageError } from './exit.js'

/** Where `--admin`'s password comes from: never the command line, which `ps` shows to everyone. */
export const ADMIN_PASSWORD_ENV = 'FASTIFY_MONITOR_ADMIN_PASSWORD'

export const SERVE_USAGE = `usage:
  fastify-monitoring-dashboard serve [--database <postgres://… | PGlite directory>] [--table-prefix fmd_]
      [--host 127.0.0.1] [--port 3300] [--admin <username>]
      --database       default $${DATABASE_ENV}, else ./.fastify-monitor
      --admin          an admin account, its password from $${ADMIN_PASSWORD_ENV} (at least 8 characters)
      the ingest route is on when $${INGEST_TOKEN_ENV} is set; the session key comes from
      $${SESSION_SECRET_ENV} (set it when several collectors serve one database); the export API is on
      with $${EXPORT_TOKEN_ENV}, test-result uploads with $${TEST_RESULTS_TOKEN_ENV}
      stops on SIGINT or SIGTERM after writing what it holds (send it to this process: npx does not pass it on)`

/**
 * Starts the collector; resolves with exit code 0 once a signal has closed it. A bad option throws
 * (main() answers it with the usage, as for the other commands).
 */
export async function serve (args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      database: { type: 'string' },
      'table-prefix': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '3300' },
      admin: { type: 'string' }
    },
    strict: true
  })
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--port must be a port number, got "${values.port}"`)
  const database = values.database ?? process.env[DATABASE_ENV]
  // services post to it several times a second: a log line per request would drown the rest
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, ...withoutRequestLogs() })
  await app.register(monitor, {
    ...(database !== undefined && POSTGRES_URL.test(database) ? { database } : { dataDir: database }),
    tablePrefix: values['table-prefix'],
    appVersion: 'collector',
    // its own traffic (scanners' 404s, the dashboard is not monitored) apart from the services'
    project: 'collector',
    dashboard: { users: values.admin === undefined ? [] : [{ username: values.admin, passwordEnv: ADMIN_PASSWORD_ENV, role: 'admin' }] }
  })
  const address = await app.listen({ host: values.host, port })
  await app.monitor.ready
  const ingest = `${address}/dashboard/api/ingest${process.env[INGEST_TOKEN_ENV] === undefined ? ' (with projects\' tokens; FASTIFY_MONITOR_INGEST_TOKEN unset)' : ''}`
  process.stdout.write(`dashboard ${address}/dashboard\nmetrics   ${address}/metrics\ningest    ${ingest}\n`)
  const signal = await new Promise<string>((resolve) => {
    for (const name of ['SIGINT', 'SIGTERM'] as const) process.once(name, () => resolve(name))
  })
  app.log.info(`${signal}: closing`)
  await app.close()
  return EXIT.ok
}

/**
 * Fastify's option that turns request logs off: `logController` since 5.12 (the top-level
 * `disableRequestLogging` then warns FSTDEP023 at every start), the old option before (the peer range is ^5.0).
 */
function withoutRequestLogs (): { logController: fastifyExports.LogController } | { disableRequestLogging: true } {
  const { LogController } = fastifyExports as { LogController?: typeof fastifyExports.LogController }
  return LogController === undefined ? { disableRequestLogging: true } : { logController: new LogController({ disableRequestLogging: true }) }
}
