import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { openCliDatabase } from '../cli/database.js'
import { DATABASE_ENV } from '../options.js'
import { PROJECT_NAME } from '../protocol.js'
import { storeTestResults } from '../queries/tests.js'
import { RESULTS_DIR_ENV, type BuildInfo, type TestRecord, type TestResultsSubmission } from './results.js'

export const TEST_USAGE = `Usage: fastify-monitoring-dashboard test [options] -- <test command…>

Runs the app's test suite with the test monitor preloaded and stores which endpoints each test
reached, and how fast, for the build.

  --repeat N          run the suite N times (default 1)
  --build ID          the build (default: GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT, CI_PIPELINE_ID, or local-<time>)
  --commit SHA        default: GITHUB_SHA, CI_COMMIT_SHA, or git rev-parse HEAD
  --branch NAME       default: GITHUB_HEAD_REF, GITHUB_REF_NAME, CI_COMMIT_REF_NAME, or the git branch
  --project NAME      the app's project (its project option), created if new (default: default)
  --database URL      store into this PostgreSQL database
  --data-dir DIR      store into this PGlite data directory (the app must not be running on it)
  --table-prefix P    default fmd_
  --url URL           or submit to a running dashboard, e.g. http://host:3000/dashboard
  --token T           its testResultsToken (default: FASTIFY_MONITOR_TEST_RESULTS_TOKEN)

Exits with the test command's exit code (the last failing run's), or 2 when results cannot be stored.`

/** Where this build comes from: flags first, then the CI's variables, then git. */
export function buildInfo (flags: { build?: string, commit?: string, branch?: string }, env: NodeJS.ProcessEnv, cwd: string): BuildInfo {
  const git = (args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null
    } catch {
      return null
    }
  }
  const githubBuild = env.GITHUB_RUN_ID !== undefined ? `${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}` : undefined
  return {
    build: flags.build ?? githubBuild ?? env.CI_PIPELINE_ID ?? `local-${new Date().toISOString()}`,
    commit: flags.commit ?? env.GITHUB_SHA ?? env.CI_COMMIT_SHA ?? git(['rev-parse', 'HEAD']),
    branch: flags.branch ?? nonEmpty(env.GITHUB_HEAD_REF) ?? env.GITHUB_REF_NAME ?? env.CI_COMMIT_REF_NAME ?? git(['rev-parse', '--abbrev-ref', 'HEAD'])
  }
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === '' ? undefined : value
}

/** The preload of the compiled package, beside this file. */
function preloadPath (): string {
  return fileURLToPath(new URL('./preload.js', import.meta.url))
}

async function runOnce (command: string[], resultsDir: string): Promise<number> {
  const nodeOptions = [process.env.NODE_OPTIONS, `--import="${preloadPath()}"`].filter(Boolean).join(' ')
  const child = spawn(command[0]!, command.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, NODE_OPTIONS: nodeOptions, [RESULTS_DIR_ENV]: resultsDir }
  })
  return await new Promise((resolve) => {
    child.on('error', (err) => { process.stderr.write(`cannot run ${command[0]!}: ${err.message}\n`); resolve(127) })
    child.on('close', (code, signal) => resolve(code ?? (signal !== null ? 128 : 1)))
  })
}

/** The tests every process of one run wrote. */
function gatherResults (resultsDir: string): TestRecord[] {
  let files: string[]
  try { files = readdirSync(resultsDir) } catch { return [] }
  return files.filter((name) => name.endsWith('.json'))
    .flatMap((name) => JSON.parse(readFileSync(join(resultsDir, name), 'utf8')) as TestRecord[])
}

type Store = (submission: TestResultsSubmission) => Promise<boolean>

async function submitter (url: string, token: string): Promise<Store> {
  const endpoint = `${url.replace(/\/+$/, '')}/api/test-results`
  return async (submission) => {
    // a network error or a 5xx is retried: the batch is stored once however often it arrives
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(submission)
        })
        if (response.ok) return ((await response.json()) as { stored: boolean }).stored
        const detail = await response.text()
        if (response.status < 500 || attempt >= 5) throw new Error(`${endpoint} answered ${response.status}: ${detail}`)
      } catch (err) {
        if (attempt >= 5 || (err instanceof Error && err.message.startsWith(endpoint))) throw err
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt))
    }
  }
}

async function databaseStore (database: string | undefined, tablePrefix: string | undefined): Promise<{ store: Store, close: () => Promise<void> }> {
  const { db, close } = await openCliDatabase({ database, tablePrefix, create: true })
  return { store: async (submission) => await storeTestResults(db, submission), close }
}

function parseTestArgs (args: string[]) {
  return parseArgs({
    args,
    options: {
      repeat: { type: 'string' },
      build: { type: 'string' },
      commit: { type: 'string' },
      branch: { type: 'string' },
      project: { type: 'string' },
      database: { type: 'string' },
      'data-dir': { type: 'string' },
      'table-prefix': { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean' }
    }
  }).values
}

/** `fastify-monitoring-dashboard test …`: answers the exit code. */
export async function testCommand (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const split = args.indexOf('--')
  const command = split === -1 ? [] : args.slice(split + 1)
  const usage = (message: string): number => { process.stderr.write(`${message}\n\n${TEST_USAGE}\n`); return 2 }
  let values: ReturnType<typeof parseTestArgs>
  try {
    values = parseTestArgs(split === -1 ? args : args.slice(0, split))
  } catch (err) {
    // an unknown option, or the test command given without -- before it
    return usage(`${(err as Error).message}${split === -1 ? ' (the test command goes after --)' : ''}`)
  }
  if (values.help === true) { process.stdout.write(`${TEST_USAGE}\n`); return 0 }
  const repeat = values.repeat === undefined ? 1 : Number(values.repeat)
  if (command.length === 0) return usage('the test command is missing after --')
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 1000) return usage('--repeat must be an integer from 1 to 1000')
  if (values.project !== undefined && !PROJECT_NAME.test(values.project)) {
    return usage('--project must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit')
  }
  const targets = (['url', 'database', 'data-dir'] as const).filter((name) => values[name] !== undefined)
  if (targets.length > 1) return usage(`give one of --url, --database and --data-dir, not ${targets.map((name) => `--${name}`).join(' and ')}`)
  const token = values.token ?? env.FASTIFY_MONITOR_TEST_RESULTS_TOKEN
  if (values.url !== undefined && token === undefined) return usage('--url needs --token (or FASTIFY_MONITOR_TEST_RESULTS_TOKEN)')
  const info = buildInfo(values, env, process.cwd())
  let exitCode = 0
  const submissions: TestResultsSubmission[] = []
  const root = mkdtempSync(join(tmpdir(), 'fmd-test-monitor-'))
  try {
    for (let run = 1; run <= repeat; run++) {
      const dir = join(root, `run-${run}`)
      const code = await runOnce(command, dir)
      if (code !== 0) exitCode = code
      submissions.push({ ...info, ...(values.project === undefined ? {} : { project: values.project }), batch: `run-${run}`, repeat: run, tests: gatherResults(dir) })
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }

  try {
    const target = values.url !== undefined
      ? { store: await submitter(values.url, token!), close: async () => {} }
      : await databaseStore(values.database ?? values['data-dir'] ?? env[DATABASE_ENV], values['table-prefix'])
    try {
      for (const submission of submissions) {
        const stored = await target.store(submission)
        const reached = new Set(submission.tests.flatMap((test) => test.hits.map((hit) => `${hit.method} ${hit.route}`)))
        process.stdout.write(`${values.project === undefined ? '' : `project ${values.project} `}build ${info.build} ${submission.batch}: ${submission.tests.length} tests, ${reached.size} endpoints${stored ? '' : ' (already stored)'}\n`)
      }
    } finally {
      await target.close()
    }
  } catch (err) {
    process.stderr.write(`fastify-monitoring-dashboard test: results not stored: ${(err as Error).message}\n`)
    return 2
  }
  return exitCode
}
