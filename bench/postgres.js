// PostgreSQL helpers shared by the benches.
import { readdirSync, readFileSync } from 'node:fs'
import pg from 'pg'

export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Rows in `<prefix>request`, then every `<prefix>*` table dropped: a bench leaves nothing behind. */
export async function countRowsAndDropTables (prefix, url = BENCH_DATABASE_URL) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query(`select count(*)::int as n from "${prefix}request"`).catch(() => ({ rows: [{ n: 0 }] }))
    const tables = await client.query('select tablename from pg_tables where tablename like $1', [`${prefix.replaceAll('_', '\\_')}%`])
    for (const { tablename } of tables.rows) await client.query(`drop table if exists "${tablename}" cascade`)
    return rows[0].n
  } finally {
    await client.end()
  }
}

/** CPU in µs (schedstat) of each PostgreSQL backend of this process's writer whose last statement named `prefix`'s tables. */
export async function writerBackendCpuUs (prefix, url = BENCH_DATABASE_URL) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query(`select pid from pg_stat_activity where application_name = 'fastify-monitoring-dashboard'
      and position($1 in query) > 0`, [`"${prefix}`])
    const cpu = new Map()
    for (const { pid } of rows) {
      const us = processCpuUs(pid)
      if (us !== undefined) cpu.set(pid, us)
    }
    return cpu
  } finally {
    await client.end()
  }
}

/**
 * CPU of every postgres server process, in µs by process id: the database's whole share, whichever backend
 * did the work. From /proc/<pid>/schedstat (the scheduler's ns on CPU), not /proc/<pid>/stat, whose 10 ms
 * ticks are too coarse for a few thousand rows. Compare two readings with {@link postgresCpuSinceUs}: a
 * backend that exits between them takes its time with it, which a plain sum would count as negative.
 */
export function postgresCpuByProcessUs () {
  const byPid = new Map()
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (!readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(postgres)')) continue
    } catch { continue /* the process ended */ }
    const us = processCpuUs(pid)
    if (us !== undefined) byPid.set(pid, us)
  }
  return byPid
}

/** A single-threaded process's CPU time in µs (the scheduler's ns on CPU, /proc/<pid>/schedstat); undefined once it ended. */
function processCpuUs (pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000
  } catch {
    return undefined
  }
}

/** PostgreSQL's CPU in µs since `before` (a {@link postgresCpuByProcessUs} reading): processes started since count whole. */
export function postgresCpuSinceUs (before) {
  let total = 0
  for (const [pid, us] of postgresCpuByProcessUs()) total += us - (before.get(pid) ?? 0)
  return total
}
