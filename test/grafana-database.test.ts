import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { DIALECTS, POSTGRES_URL, backend, buildApp, freePort, ingestBatch, until, withPostgres } from './helpers.js'
import { startPrometheus, type InstantSample } from './prometheus-server.js'

// Real parts: Debian's prometheus-postgres-exporter (0.11; .ci/run installs it) against the local PostgreSQL,
// Debian's prometheus scraping it and an app with the plugin, and the board and rules shipped in the repository.
const root = new URL('..', import.meta.url).pathname
const QUERIES = join(root, 'postgres-exporter/queries.yaml')

const INGEST_TOKEN = 'ingest-token-0123456789'
interface Target { refId: string, expr: string, instant?: boolean }
interface Panel { id: number, type: string, title: string, targets: Target[] }
interface Variable { name: string, type: string, query: { query: string } | string }
const board = JSON.parse(readFileSync(join(root, 'grafana/dashboards/database.json'), 'utf8')) as { uid: string, panels: Panel[], templating: { list: Variable[] }, links: Array<{ url: string }> }

/** Replaces `$name` and `${name}` as Grafana does; unknown names (label_replace's `$1`) stay. */
const expand = (text: string, values: Record<string, string>): string =>
  text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => values[braced ?? bare!] ?? whole)

const finite = (samples: InstantSample[]): boolean => samples.some((s) => Number.isFinite(Number(s.value[1])))

t.test('the Database board links to the other two boards, and they link back', async (t) => {
  t.same(board.links.map((l) => /\/d\/([a-z0-9-]+)\//.exec(l.url)![1]).sort(), ['fmd-endpoints', 'fmd-http'])
  for (const file of ['http-overview.json', 'endpoints.json']) {
    const other = JSON.parse(readFileSync(join(root, 'grafana/dashboards', file), 'utf8')) as { links: Array<{ url: string }> }
    t.ok(other.links.some((l) => l.url.startsWith(`/d/${board.uid}/`)), `${file} links to the Database board`)
  }
})

t.test('every PromQL of the Database board returns data from the real postgres-exporter and Prometheus, and the table sizes are pg_total_relation_size',
  { skip: !DIALECTS.includes('postgres') && 'needs the PostgreSQL backend' }, async (t) => {
    const store = await backend('postgres')
    t.teardown(store.cleanup)
    // the board reads only /metrics; the ingest route (the collector's panel) comes with the built-in dashboard
    const app = await buildApp({ ...store.options, dashboard: { ingestToken: INGEST_TOKEN } })
    t.teardown(() => app.close())
    await app.listen({ port: 0, host: '127.0.0.1' })
    await app.monitor.ready
    const appTarget = `127.0.0.1:${(app.server.address() as { port: number }).port}`

    // a table prefix the exporter must not report: an endpoint table without a partitioned request table
    const hostPrefix = `host_${store.prefix}`
    await withPostgres(async (client) => { await client.query(`create table "${hostPrefix}endpoint" (id int)`) })
    t.teardown(() => withPostgres(async (client) => { await client.query(`drop table if exists "${hostPrefix}endpoint"`) }))

    const dsn = new URL(POSTGRES_URL)
    dsn.searchParams.set('sslmode', 'disable')
    const exporterTarget = `127.0.0.1:${await freePort()}`
    let exporterLog = ''
    const exporter = spawn('prometheus-postgres-exporter', [`--web.listen-address=${exporterTarget}`, `--extend.query-path=${QUERIES}`, '--log.level=warn'],
      { env: { ...process.env, DATA_SOURCE_NAME: dsn.href }, stdio: ['ignore', 'ignore', 'pipe'] })
    exporter.stderr.on('data', (chunk: Buffer) => { exporterLog += chunk.toString() })
    // a missing binary emits 'error' and maybe no 'close'
    const exporterExited = new Promise((resolve) => {
      exporter.once('close', resolve)
      exporter.once('error', (err) => { exporterLog += String(err); resolve(undefined) })
    })
    t.teardown(async () => { exporter.kill('SIGTERM'); await exporterExited })
    // listening before Prometheus takes a port of its own (freePort's could otherwise be the same one)
    t.ok(await until(async () => (await fetch(`http://${exporterTarget}/`).catch(() => undefined))?.ok === true, 30_000, 100), `the exporter listens ${exporterLog}`)

    const prometheus = await startPrometheus({ jobs: { app: appTarget, postgres: exporterTarget }, ruleFiles: [join(root, 'prometheus/rules/database.yml')] })
    t.teardown(prometheus.stop)
    t.ok(await until(async () => (await prometheus.query('up == 1')).length === 2, 30_000), `Prometheus scrapes the app and the exporter ${exporterLog}`)
    t.same((await prometheus.query('pg_up')).map((s) => s.value[1]), ['1'], 'the exporter reaches PostgreSQL')
    t.same((await prometheus.query('pg_exporter_user_queries_load_error')).map((s) => [s.metric.filename, s.value[1]]), [[QUERIES, '0']],
      'the exporter loaded postgres-exporter/queries.yaml')

    // steady traffic for the rates, until the sizes are compared
    let sending = true
    const traffic = (async () => {
      for (let i = 0; sending; i++) {
        await (await fetch(`http://${appTarget}/users/${i}`)).arrayBuffer()
        // and a sender's batch now and then, for the collector's panel
        if (i % 10 === 0) {
          await (await fetch(`http://${appTarget}/dashboard/api/ingest`, {
            method: 'POST',
            headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify(ingestBatch(`board-${i}`, '/svc/board'))
          })).arrayBuffer()
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()
    t.teardown(async () => { sending = false; await traffic })

    const database = dsn.pathname.slice(1)
    const values: Record<string, string> = {
      job: 'app', instance: '.*', pg_instance: exporterTarget, datname: database, prefix: store.prefix,
      __rate_interval: '10s', __range: '1m'
    }
    const expected: Record<string, string> = { job: 'app', instance: appTarget, pg_instance: exporterTarget, datname: database, prefix: store.prefix }
    for (const variable of board.templating.list.filter((v) => v.type === 'query')) {
      const match = /^label_values\((.+), (\w+)\)$/.exec(typeof variable.query === 'string' ? variable.query : variable.query.query)!
      t.ok(await until(async () => (await prometheus.labelValues(match[2]!, expand(match[1]!, values))).includes(expected[variable.name]!), 30_000),
        `variable ${variable.name} offers ${expected[variable.name]}`)
    }
    t.notOk((await prometheus.labelValues('prefix', 'pg_monitoring_table_size_bytes')).includes(hostPrefix), 'a prefix without the plugin\'s request table is not reported')

    for (const panel of board.panels) {
      for (const target of panel.targets) {
        const expr = expand(target.expr, values)
        t.notMatch(expr.replaceAll('"$1"', ''), /\$/, `"${panel.title}" ${target.refId}: every variable expanded`)
        t.ok(await until(async () => finite(await prometheus.query(expr)), 30_000, 250), `"${panel.title}" ${target.refId} returns a number: ${expr}`)
      }
    }

    // the rules load against these metric names: each recording rule has data, no rule fails to evaluate
    const rules = await prometheus.rules()
    t.same(rules.filter((r) => r.health !== 'ok' && r.health !== 'unknown').map((r) => `${r.name}: ${r.lastError}`), [], 'every database rule evaluates')
    for (const rule of rules.filter((r) => r.type === 'recording')) {
      t.ok(await until(async () => finite(await prometheus.query(rule.name)), 30_000, 250), `${rule.name} returns a number`)
    }
    const ratio = Number((await prometheus.query(`instance:pg_connections:usage_ratio{instance="${exporterTarget}"}`))[0]!.value[1])
    t.ok(ratio > 0 && ratio < 1, `connections in use over the limit: ${ratio}`)
    // the plugin makes yesterday's partition (UTC) at start: the oldest is between one and two days old
    const [oldest] = await prometheus.query(`table:pg_monitoring_oldest_partition:age_seconds{table_name="${store.prefix}request"}`)
    const age = Number(oldest!.value[1])
    t.ok(age >= 86_400 && age < 2 * 86_400, `the oldest partition is ${(age / 3600).toFixed(1)} h old`)

    sending = false
    await traffic
    await app.monitor.flush()

    const client = new pg.Client({ connectionString: POSTGRES_URL })
    await client.connect()
    t.teardown(() => client.end())
    // the size of each table of the prefix, a partitioned one as the sum over its partition tree
    const sqlSizes = async (): Promise<Record<string, number>> => Object.fromEntries((await client.query<{ relname: string, bytes: string }>(`
      select c.relname, case when c.relkind = 'p' then (select sum(pg_total_relation_size(tree.relid)) from pg_partition_tree(c.oid) tree)
        else pg_total_relation_size(c.oid) end as bytes
      from pg_class c
      where c.relkind in ('r', 'p') and not c.relispartition and c.relnamespace = 'public'::regnamespace and starts_with(c.relname, $1)`,
    [store.prefix])).rows.map((r) => [r.relname.slice(store.prefix.length), Number(r.bytes)]))
    const sizePanel = board.panels.find((p) => p.title === 'Monitoring tables: size by table')!
    const panelSizes = async (): Promise<Record<string, number>> => Object.fromEntries((await prometheus.query(expand(sizePanel.targets[0]!.expr, values)))
      .map((s) => [s.metric.table!, Number(s.value[1])]))
    let last: [Record<string, number>, Record<string, number>] = [{}, {}]
    const agree = await until(async () => {
      last = [await panelSizes(), await sqlSizes()]
      return JSON.stringify(Object.entries(last[0]).sort()) === JSON.stringify(Object.entries(last[1]).sort())
    }, 30_000, 250)
    t.ok(agree, 'within a scrape, the panel shows each table\'s pg_total_relation_size')
    t.same(last[0], last[1])
    t.ok(Object.keys(last[1]).length >= 10 && last[1].request! > 0, `every table of the prefix is there, the request table not empty: ${Object.keys(last[1]).join(', ')}`)

    // the partitions panel lists exactly the request table's partitions, each with the day its name says
    const partitionPanel = board.panels.find((p) => p.title === 'Raw request partitions')!
    const days = Object.fromEntries((await prometheus.query(expand(partitionPanel.targets.find((x) => x.refId === 'A')!.expr, values)))
      .map((s) => [s.metric.relname!, Number(s.value[1])]))
    const partitions = (await client.query<{ relname: string }>(`select c.relname from pg_partition_tree($1::regclass) tree join pg_class c on c.oid = tree.relid where tree.isleaf`,
      [`"${store.prefix}request"`])).rows.map((r) => r.relname)
    t.same(Object.keys(days).sort(), partitions.sort(), 'one row per partition')
    for (const [relname, ms] of Object.entries(days)) {
      const [, y, m, d] = /_p(\d{4})(\d{2})(\d{2})$/.exec(relname)!
      t.equal(ms, Date.UTC(Number(y), Number(m) - 1, Number(d)), `${relname} starts on its day`)
    }
  })
