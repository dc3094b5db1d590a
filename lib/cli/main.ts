/**
 * `npx fastify-monitoring-dashboard <command>`: `report` (the CI gate: did performance change between
 * two versions, ranges or load-test runs?), `load` (drive a running app with autocannon and record
 * the run's window, so reports can compare runs from what the plugin recorded server-side) and `serve`
 * (the collector, serve.ts), with one set of exit codes and one answer to a bad command line.
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import stringWidth from 'string-width'
import { buildReport, type Report } from '../queries/reports.js'
import { DEFAULT_THRESHOLDS, THRESHOLD_BOUNDS, type ReportThresholds } from '../reports/compare.js'
import { parseSelector, type Selector } from '../reports/selector.js'
import { DATABASE_ENV, maskUrl } from '../options.js'
import { openCliDatabase } from './database.js'
import { EXIT, UsageError } from './exit.js'
import { reportHtml, shown, type LoadSummary, type RunFigures } from './html.js'
import { SERVE_USAGE, serve } from './serve.js'

export const REPORT_USAGE = `usage:
  fastify-monitoring-dashboard report --baseline <selector> --candidate <selector> [options]
      selectors: version:<v> | range:<ISO from>/<ISO to> | run:<tag> | today | yesterday | this-week | last-week
      --database <postgres://… | PGlite directory>   (default $FASTIFY_MONITOR_DATABASE_URL, else ./.fastify-monitor)
      --table-prefix <prefix>                          (default fmd_)
      --project <name>                                 one project's endpoints only (default: every project's)
      --alpha <p> --min-change-pct <%> --min-change-ms <ms>
      --fail-on regression|never                       (default regression: exit 1 when an endpoint regressed)
      --json                                           the report as JSON on stdout
      --html <file>                                    a self-contained HTML report
  fastify-monitoring-dashboard load --url <url> [--duration 30s] [--connections 50] [--tag <tag>] [--database …]
      drives the URL with autocannon and records the run's window under its tag (PostgreSQL only while the app runs)
exit codes: 0 no regression, 1 regression, 2 usage error, 3 failure`

function progress (message: string): void {
  // stderr, so --json on stdout stays parseable
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${message}`)
  else process.stderr.write(`${message}\n`)
}

function number (name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a non-negative number, got "${value}"`)
  return n
}

/** A report threshold's flag, within the bounds the API has for it. */
function threshold (name: string, key: keyof typeof THRESHOLD_BOUNDS, value: string | undefined): number {
  const n = number(name, value, DEFAULT_THRESHOLDS[key])
  const bounds: { exclusiveMinimum?: number, minimum?: number, maximum: number } = THRESHOLD_BOUNDS[key]
  const low = bounds.exclusiveMinimum ?? bounds.minimum ?? 0
  if ((bounds.exclusiveMinimum !== undefined ? n <= low : n < low) || n > bounds.maximum) {
    throw new UsageError(`--${name} must be ${bounds.exclusiveMinimum !== undefined ? 'above' : 'at least'} ${low} and at most ${bounds.maximum}, got "${value!}"`)
  }
  return n
}

function selector (name: string, value: string | undefined): Selector {
  if (value === undefined) throw new UsageError(`--${name} is required`)
  const parsed = parseSelector(value)
  if (parsed instanceof Error) throw new UsageError(`--${name} ${parsed.message}`)
  return parsed
}

// by the columns a terminal gives a string (a CJK character takes two, a combining mark none), not by its UTF-16 length
const pad = (text: string, width: number): string => text + ' '.repeat(Math.max(0, width - stringWidth(text)))

/** The report as a plain-text table, flagged rows first. */
export function reportText (report: Report): string {
  const header = ['endpoint', 'hits A', 'hits B', 'median A ms', 'median B ms', 'Δ median', 'p95 A ms', 'p95 B ms', '5xx A', '5xx B', 'MW p', 'KS p', 'verdict']
  const rows = report.endpoints.map((e) => [
    `${e.method} ${e.route}`, String(e.baseline.hits), String(e.candidate.hits), shown.ms(e.baseline.median), shown.ms(e.candidate.median),
    shown.change(e.medianChangePct), shown.ms(e.baseline.p95), shown.ms(e.candidate.p95), shown.errors(e.baseline), shown.errors(e.candidate),
    shown.p(e.mannWhitney?.p), shown.p(e.ks?.p), e.verdict === 'regression' ? 'REGRESSION' : e.verdict
  ])
  const widths = header.map((h, i) => Math.max(stringWidth(h), ...rows.map((r) => stringWidth(r[i]!))))
  const line = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd()
  return [
    `baseline:  ${report.baseline.label}`,
    `candidate: ${report.candidate.label}`,
    '',
    line(header),
    ...rows.map(line),
    ...report.endpoints.filter((e) => e.reasons.length > 0 && e.verdict !== 'no change' && e.verdict !== 'insufficient data')
      .map((e) => `  ${e.method} ${e.route}: ${e.reasons.join('; ')}`),
    '',
    shown.summary(report.summary)
  ].join('\n') + '\n'
}

async function report (args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      database: { type: 'string' },
      'table-prefix': { type: 'string' },
      baseline: { type: 'string' },
      candidate: { type: 'string' },
      alpha: { type: 'string' },
      'min-change-pct': { type: 'string' },
      'min-change-ms': { type: 'string' },
      'fail-on': { type: 'string' },
      json: { type: 'boolean' },
      html: { type: 'string' },
      project: { type: 'string' }
    },
    strict: true
  })
  const baseline = selector('baseline', values.baseline)
  const candidate = selector('candidate', values.candidate)
  const failOn = values['fail-on'] ?? 'regression'
  if (failOn !== 'regression' && failOn !== 'never') throw new UsageError(`--fail-on must be regression or never, got "${failOn}"`)
  const thresholds: ReportThresholds = {
    ...DEFAULT_THRESHOLDS,
    alpha: threshold('alpha', 'alpha', values.alpha),
    minChangePct: threshold('min-change-pct', 'minChangePct', values['min-change-pct']),
    minChangeMs: threshold('min-change-ms', 'minChangeMs', values['min-change-ms'])
  }
  const database = values.database ?? process.env[DATABASE_ENV]
  progress(`opening ${database === undefined ? 'the PGlite directory ./.fastify-monitor' : maskUrl(database)}…`)
  const { db, close } = await openCliDatabase({ database, tablePrefix: values['table-prefix'] })
  try {
    const project = values.project === undefined ? undefined : await db.selectFrom('project').select('id').where('name', '=', values.project).executeTakeFirst()
    if (project === undefined && values.project !== undefined) throw new UsageError(`--project ${values.project}: no such project in this database`)
    progress('reading both sides and testing every endpoint…')
    const result = await buildReport(db, baseline, candidate, thresholds, project?.id)
    progress(`compared ${result.endpoints.length} endpoints\n`)
    if (values.json === true) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
    else process.stdout.write(reportText(result))
    if (values.html !== undefined) {
      const run = async (s: Selector): Promise<RunFigures | undefined> => {
        if (s.kind !== 'run') return undefined
        const row = await db.selectFrom('load_run').select(['tag', 'url', 'started_at', 'connections', 'summary']).where('tag', '=', s.tag).orderBy('started_at', 'desc').limit(1).executeTakeFirst()
        return row === undefined ? undefined : { tag: row.tag, url: row.url, startedAt: row.started_at.toISOString(), connections: row.connections, summary: row.summary as LoadSummary }
      }
      writeFileSync(values.html, reportHtml(result, { baseline: await run(baseline), candidate: await run(candidate) }))
      progress(`wrote ${values.html}\n`)
    }
    if (failOn === 'never') return EXIT.ok
    if (result.summary.regressions > 0) return EXIT.regression
    // a gate that compared nothing did not pass: a mistyped selector or an app that did not run must not look green
    const { improvements, unchanged, insufficient } = result.summary
    if (improvements + unchanged === 0) {
      process.stderr.write(`fastify-monitoring-dashboard: nothing to compare: ${insufficient === 0
        ? 'no endpoint has requests on either side'
        : `none of the ${insufficient} endpoints has ${thresholds.minSamples} requests on both sides`} (check the selectors, --database and --table-prefix; --fail-on never accepts this)\n`)
      return EXIT.usage
    }
    return EXIT.ok
  } finally {
    await close()
  }
}

/** `30s`, `2m`, `1h` or plain seconds. */
function durationS (text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text)
  if (match === null) throw new UsageError(`--duration must be like 30s, 2m or 1h, got "${text}"`)
  return Number(match[1]) * (match[2] === 'h' ? 3600 : match[2] === 'm' ? 60 : 1)
}

/** The part of autocannon's API used here (it ships no types). */
type Autocannon = (options: { url: string, connections: number, duration: number }) => Promise<{
  requests: { total: number, average: number }
  latency: { p50: number, p90: number, p99: number, max: number, average: number }
  errors: number
  timeouts: number
  non2xx: number
  duration: number
}>

async function loadAutocannon (): Promise<Autocannon> {
  // an optional peer dependency: production apps that use the plugin never install a load generator
  const name = 'autocannon'
  try {
    return ((await import(name)) as { default: Autocannon }).default
  } catch {
    throw new UsageError('the load command needs autocannon: npm install --save-dev autocannon')
  }
}

async function load (args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      tag: { type: 'string' },
      database: { type: 'string' },
      'table-prefix': { type: 'string' }
    },
    strict: true
  })
  if (values.url === undefined) throw new UsageError('--url is required: the running app to drive, e.g. http://127.0.0.1:3000/users/1')
  if (!/^https?:\/\//.test(values.url)) throw new UsageError(`--url must be an http:// or https:// URL, got "${values.url}"`)
  const seconds = durationS(values.duration ?? '30s')
  const connections = number('connections', values.connections, 50)
  if (!Number.isInteger(connections) || connections < 1) throw new UsageError('--connections must be a positive integer')
  const tag = values.tag ?? new Date().toISOString()
  const autocannon = await loadAutocannon()
  const database = values.database ?? process.env[DATABASE_ENV]
  // open first: a database that cannot take the run should fail before the load, not after it
  const { db, close } = await openCliDatabase({ database, tablePrefix: values['table-prefix'] })
  try {
    progress(`driving ${values.url} for ${seconds} s with ${connections} connections…`)
    const startedAt = new Date()
    const result = await autocannon({ url: values.url, connections, duration: seconds })
    const endedAt = new Date()
    const summary: LoadSummary = {
      durationS: result.duration,
      requests: result.requests.total,
      requestsPerSecond: result.requests.average,
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx
    }
    process.stdout.write(`${JSON.stringify({ tag, startedAt, endedAt, ...summary })}\n`)
    if (summary.requests === 0) {
      // a run that reached nothing (the app not up, a wrong port) is no baseline, and no candidate to pass a gate
      process.stderr.write(`fastify-monitoring-dashboard: ${values.url} answered no request (${summary.errors} errors, ${summary.timeouts} timeouts): the run is not recorded\n`)
      return EXIT.failure
    }
    const previous = await db.selectFrom('load_run').select('tag').where('tag', '!=', tag).orderBy('started_at', 'desc').limit(1).executeTakeFirst()
    await db.insertInto('load_run').values({ tag, url: values.url, started_at: startedAt, ended_at: endedAt, connections, summary: JSON.stringify(summary) }).execute()
    progress(`run "${tag}": ${summary.requests} requests, ${summary.requestsPerSecond.toFixed(0)} req/s, p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms` +
      `${summary.errors + summary.non2xx > 0 ? ` (${summary.errors} errors, ${summary.non2xx} non-2xx)` : ''}\n`)
    process.stderr.write(previous === undefined
      ? `compare with a later run: fastify-monitoring-dashboard report --baseline run:${tag} --candidate run:<its tag>\n`
      : `compare with the run before: fastify-monitoring-dashboard report --baseline run:${previous.tag} --candidate run:${tag}\n`)
    return EXIT.ok
  } finally {
    await close()
  }
}

/** Runs the CLI; resolves with the exit code. */
export async function main (argv: string[]): Promise<number> {
  const [command, ...args] = argv
  try {
    if ((command === 'report' || command === 'load' || command === 'serve') && (args.includes('--help') || args.includes('-h'))) {
      process.stdout.write(`${command === 'serve' ? SERVE_USAGE : REPORT_USAGE}\n`)
      return EXIT.ok
    }
    if (command === 'report') return await report(args)
    if (command === 'load') return await load(args)
    if (command === 'serve') return await serve(args)
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(`${REPORT_USAGE}\n`)
      return command === undefined ? EXIT.usage : EXIT.ok
    }
    throw new UsageError(`unknown command "${command}"`)
  } catch (err) {
    const code = (err as { code?: string }).code
    const usage = err instanceof UsageError || code?.startsWith('ERR_PARSE_ARGS') === true || code === 'FST_MONITORING_UNKNOWN_SELECTION' || code === 'FST_MONITORING_INVALID_OPTION'
    process.stderr.write(`fastify-monitoring-dashboard: ${(err as Error).message}\n${usage ? `${command === 'serve' ? SERVE_USAGE : REPORT_USAGE}\n` : ''}`)
    return usage ? EXIT.usage : EXIT.failure
  }
}

