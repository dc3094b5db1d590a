import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import monitor from '../lib/index.js'
import { CookieJar, dashboardLogin } from './cookie-jar.js'
import type { EndpointCoverage, EndpointTest } from '../lib/queries/tests.js'

/** What the test monitor's tests share: the fixtures, the CLI and an app with its dashboard. */

export type EndpointTests = { builds: string[], tests: EndpointTest[] }

export const root = fileURLToPath(new URL('..', import.meta.url))
export const fixtures = fileURLToPath(new URL('fixtures/test-monitor/', import.meta.url))
export const cli = `${root}dist/cli.js`
export const TOKEN = 'test-results-token-0123456789'
export const ADMIN = { username: 'admin', password: 'admin-password-1' }
const { routes } = await import(`${fixtures}app.js`) as { routes: (app: FastifyInstance) => void }

/** Runs the CLI; the child gets no trace of this tap run (its env would make a nested tap a child). */
export async function runCli (args: string[], cwd: string): Promise<{ code: number, output: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(TAP|_TAP|NODE_OPTIONS$|NODE_TEST)/.test(name)))
  const child = spawn(process.execPath, [cli, 'test', ...args], { cwd, env })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)))
  return { code, output }
}

export async function appWithDashboard (options: object): Promise<{ app: FastifyInstance, base: string, api: (path: string) => Promise<unknown> }> {
  const app = Fastify()
  await app.register(monitor, { ...options, flushIntervalMs: 20, dashboard: { users: [{ ...ADMIN, role: 'admin' }], testResultsToken: TOKEN } })
  routes(app)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const jar = new CookieJar()
  try {
    await app.monitor.ready
    await dashboardLogin(app, jar, ADMIN.username, ADMIN.password)
  } catch (err) {
    await app.close()
    throw err
  }
  const api = async (path: string): Promise<unknown> => {
    const res = await jar.inject(app, { url: `/dashboard/api${path}` })
    if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${res.body}`)
    return res.json()
  }
  return { app, base, api }
}

export const covered = (endpoints: EndpointCoverage[]): Array<[string, number, number]> =>
  endpoints.filter((e) => e.tests > 0).map((e): [string, number, number] => [`${e.method} ${e.route}`, e.tests, e.testRequests]).sort()

