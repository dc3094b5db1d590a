import { cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import pg from 'pg'
import monitor, { type MonitorOptions } from '../lib/index.js'

export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Backends every storage test runs against; CI runs both. */
export const DIALECTS = (process.env.DIALECTS ?? 'pglite,postgres').split(',').map((d) => d.trim()).filter(Boolean) as Array<'pglite' | 'postgres'>

const TEMPLATE = join(tmpdir(), 'fmd-test-pglite-template-0.5.16')

/**
 * A fresh PGlite data directory. initdb takes ~5 s, so it runs once per machine into a template
 * that each test copies (~0.6 s to open).
 */
async function freshPgliteDir (): Promise<string> {
  if (!existsSync(TEMPLATE)) {
    const { PGlite } = await import('@electric-sql/pglite')
    const building = mkdtempSync(join(tmpdir(), 'fmd-template-'))
    const db = await PGlite.create(join(building, 'data'))
    await db.close()
    try { renameSync(join(building, 'data'), TEMPLATE) } catch { /* another test file built it first */ }
    rmSync(building, { recursive: true, force: true })
  }
  const dir = mkdtempSync(join(tmpdir(), 'fmd-test-'))
  cpSync(TEMPLATE, join(dir, 'data'), { recursive: true })
  return join(dir, 'data')
}

/** Storage options for one test: its own PGlite directory, or its own table prefix on the shared server. */
export interface Backend {
  dialect: 'pglite' | 'postgres'
  options: MonitorOptions
  prefix: string
  cleanup: () => Promise<void>
}

export async function backend (dialect: 'pglite' | 'postgres', overrides: { database?: string } = {}): Promise<Backend> {
  const prefix = `t${randomBytes(4).toString('hex')}_`
  if (dialect === 'pglite') {
    const dataDir = await freshPgliteDir()
    return {
      dialect,
      prefix,
      options: { dataDir, tablePrefix: prefix },
      cleanup: async () => { rmSync(join(dataDir, '..'), { recursive: true, force: true }) }
    }
  }
  return {
    dialect,
    prefix,
    options: { database: overrides.database ?? POSTGRES_URL, tablePrefix: prefix },
    cleanup: async () => { await dropPrefixedTables(prefix) }
  }
}

export async function dropPrefixedTables (prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL })
  await client.connect()
  try {
    const { rows } = await client.query<{ tablename: string }>(
      "select tablename from pg_tables where schemaname = 'public' and tablename like $1", [`${prefix.replace(/_/g, '\\_')}%`])
    for (const { tablename } of rows) await client.query(`drop table if exists "${tablename}" cascade`)
  } finally {
    await client.end()
  }
}

/** Direct SQL on the shared Postgres server, for checks that must not go through the plugin. */
export async function withPostgres<T> (fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL })
  await client.connect()
  try { return await fn(client) } finally { await client.end() }
}

/** A demo-like app with the plugin registered first, as the README tells users. */
export async function buildApp (options: MonitorOptions, fastifyOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: process.env.FMD_TEST_LOG === undefined ? false : { level: process.env.FMD_TEST_LOG }, ...fastifyOptions })
  await app.register(monitor, { flushIntervalMs: 20, retryMaxDelayMs: 200, levelPollIntervalMs: 100, ...options })
  app.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  app.post('/users', async (_request, reply) => reply.code(201).send({ ok: true }))
  app.get('/fail', async () => { throw new Error('boom') })
  app.get('/slow', async () => { await new Promise((resolve) => setTimeout(resolve, 30)); return 'done' })
  return app
}

/** Polls until `check` returns true or the time is up. */
export async function until (check: () => Promise<boolean> | boolean, timeoutMs = 20_000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return false
}

export function tmpDir (): string {
  const dir = join(tmpdir(), `fmd-${randomBytes(6).toString('hex')}`)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** A TCP port free on the loopback interface right now. */
export async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}
