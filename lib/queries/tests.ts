import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { TestResultsSubmission } from '../test-monitor/results.js'
import { UNMATCHED_ROUTE } from '../options.js'
import { DEFAULT_PROJECT } from '../protocol.js'
import { overview } from './overview.js'
import { ensureProject } from './projects.js'

/**
 * Stores one batch of a build's test results, once: a batch already stored (a retried upload) is
 * left as it is. One statement, so it is atomic also through the dashboard's database handle,
 * which runs each statement on the writer's pool (no transaction spans two); the project it names
 * (created if new) comes first, on its own. Answers whether this call stored the batch.
 */
export async function storeTestResults (db: Kysely<Database>, submission: TestResultsSubmission): Promise<boolean> {
  const { tests } = submission
  const projectId = await ensureProject(db, submission.project ?? DEFAULT_PROJECT)
  const hits = tests.flatMap((test, ordinal) => test.hits.map((hit) => ({ ordinal, ...hit })))
  const { rows } = await sql<{ stored: boolean }>`
    with build as (
      insert into ${sql.table('test_build')} (project_id, build, commit_sha, branch)
      values (${projectId}, ${submission.build}, ${submission.commit}, ${submission.branch})
      on conflict (project_id, build) do update set build = excluded.build
      returning id
    ), batch as (
      insert into ${sql.table('test_batch')} (build_id, batch, repeat)
      select id, ${submission.batch}, ${submission.repeat} from build
      on conflict (build_id, batch) do nothing
      returning build_id
    ), runs as (
      insert into ${sql.table('test_run')} (build_id, batch, repeat, ordinal, file, name, duration_ms, outcome)
      select batch.build_id, ${submission.batch}, ${submission.repeat}, t.ordinal::integer - 1, t.file, t.name, t.duration_ms, t.outcome
      from batch, unnest(${tests.map((test) => test.file)}::text[], ${tests.map((test) => test.name)}::text[],
        ${tests.map((test) => test.durationMs)}::float8[], ${tests.map((test) => test.outcome)}::text[])
        with ordinality as t(file, name, duration_ms, outcome, ordinal)
      returning id, ordinal
    ), hits as (
      insert into ${sql.table('test_hit')} (test_run_id, method, route, status_code, requests, total_ms, max_ms)
      select runs.id, h.method, h.route, h.status_code, h.requests, h.total_ms, h.max_ms
      from unnest(${hits.map((hit) => hit.ordinal)}::integer[], ${hits.map((hit) => hit.method)}::text[], ${hits.map((hit) => hit.route)}::text[],
        ${hits.map((hit) => hit.statusCode)}::smallint[], ${hits.map((hit) => hit.requests)}::integer[],
        ${hits.map((hit) => hit.totalMs)}::float8[], ${hits.map((hit) => hit.maxMs)}::float8[])
        as h(ordinal, method, route, status_code, requests, total_ms, max_ms)
      join runs on runs.ordinal = h.ordinal
      returning 1
    )
    select exists (select 1 from batch) as stored, (select count(*) from runs) as runs, (select count(*) from hits) as hits`.execute(db)
  return rows[0]?.stored === true
}

/** One build in the Tests view. */
export interface TestBuildSummary {
  build: string
  /** The project whose tests these are: a build id is unique per project. */
  project: string
  commit: string | null
  branch: string | null
  createdAt: Date
  /** Runs of the suite stored (`--repeat`). */
  runs: number
  /** Distinct tests (file and name). */
  tests: number
  failed: number
  /** Distinct endpoints (method and route) some test reached. */
  endpointsCovered: number
  /** Sum of the tests' own durations over all runs. */
  totalMs: number
}

/** The latest builds (of one project, or of every one), newest first. */
export async function testBuilds (db: Kysely<Database>, limit: number, projectId?: number): Promise<TestBuildSummary[]> {
  const { rows } = await sql<{ build: string, project: string, commit_sha: string | null, branch: string | null, created_at: Date, runs: string, tests: string, failed: string, endpoints: string, total_ms: number | null }>`
    select b.build, p.name as project, b.commit_sha, b.branch, b.created_at,
      (select count(*) from ${sql.table('test_batch')} tb where tb.build_id = b.id) as runs,
      (select count(distinct (r.file, r.name)) from ${sql.table('test_run')} r where r.build_id = b.id) as tests,
      (select count(distinct (r.file, r.name)) from ${sql.table('test_run')} r where r.build_id = b.id and r.outcome = 'fail') as failed,
      (select count(distinct (h.method, h.route)) from ${sql.table('test_run')} r join ${sql.table('test_hit')} h on h.test_run_id = r.id where r.build_id = b.id) as endpoints,
      (select sum(r.duration_ms) from ${sql.table('test_run')} r where r.build_id = b.id) as total_ms
    from ${sql.table('test_build')} b join ${sql.table('project')} p on p.id = b.project_id
    ${projectId === undefined ? sql`` : sql`where b.project_id = ${projectId}`}
    order by b.created_at desc, b.id desc
    limit ${limit}`.execute(db)
  return rows.map((row) => ({
    build: row.build,
    project: row.project,
    commit: row.commit_sha,
    branch: row.branch,
    createdAt: row.created_at,
    runs: Number(row.runs),
    tests: Number(row.tests),
    failed: Number(row.failed),
    endpointsCovered: Number(row.endpoints),
    totalMs: Number(row.total_ms ?? 0)
  }))
}

/** An endpoint in a build's coverage: the tests that reached it, and its production traffic. */
export interface EndpointCoverage {
  method: string
  route: string
  /** The endpoint's id in the dashboard, when the app has served it. */
  endpointId: number | null
  /** Distinct tests that reached it in the build. */
  tests: number
  /** Requests the tests made to it in the build (all runs). */
  testRequests: number
  /** Mean duration of those requests. */
  meanMs: number | null
  /** Production requests of the last 7 days. */
  productionHits: number
}

/** The projects that have a build of this id (a build id is unique per project only), by name. */
export async function projectsOfBuild (db: Kysely<Database>, build: string): Promise<string[]> {
  const rows = await db.selectFrom('test_build').innerJoin('project', 'project.id', 'test_build.project_id')
    .select('project.name').where('test_build.build', '=', build).orderBy('project.name').execute()
  return rows.map((row) => row.name)
}

/**
 * A build's coverage (the latest one by default, of one project or of every one): every endpoint of
 * the build's project that the app has served or a test reached, covered or not, with its production
 * traffic; uncovered busy endpoints first.
 */
export async function testCoverage (db: Kysely<Database>, build?: string, projectId?: number): Promise<{ build: string | null, endpoints: EndpointCoverage[] }> {
  const chosen = await db.selectFrom('test_build').select(['id', 'build', 'project_id'])
    .$if(build !== undefined, (qb) => qb.where('build', '=', build!))
    .$if(projectId !== undefined, (qb) => qb.where('project_id', '=', projectId!))
    .orderBy('created_at', 'desc').orderBy('id', 'desc')
    .executeTakeFirst()
  const hits = chosen === undefined
    ? []
    : (await sql<{ method: string, route: string, tests: string, requests: string, total_ms: number }>`
        select h.method, h.route, count(distinct (r.file, r.name)) as tests, sum(h.requests) as requests, sum(h.total_ms) as total_ms
        from ${sql.table('test_run')} r join ${sql.table('test_hit')} h on h.test_run_id = r.id
        where r.build_id = ${chosen.id}
        group by h.method, h.route`.execute(db)).rows
  // the build's own project: another project's endpoints are not this suite's to reach
  const production = await overview(db, 'UTC', '', chosen?.project_id ?? projectId)
  const byKey = new Map<string, EndpointCoverage>()
  for (const endpoint of production) {
    // requests that matched no route are not an endpoint a test could cover
    if (endpoint.route === UNMATCHED_ROUTE) continue
    byKey.set(`${endpoint.method} ${endpoint.route}`, {
      method: endpoint.method,
      route: endpoint.route,
      endpointId: endpoint.id,
      tests: 0,
      testRequests: 0,
      meanMs: null,
      productionHits: endpoint.week.hits
    })
  }
  for (const hit of hits) {
    const key = `${hit.method} ${hit.route}`
    const entry = byKey.get(key) ?? { method: hit.method, route: hit.route, endpointId: null, tests: 0, testRequests: 0, meanMs: null, productionHits: 0 }
    entry.tests = Number(hit.tests)
    entry.testRequests = Number(hit.requests)
    entry.meanMs = entry.testRequests > 0 ? Number(hit.total_ms) / entry.testRequests : null
    byKey.set(key, entry)
  }
  const endpoints = [...byKey.values()].sort((a, b) =>
    (a.tests === 0 ? 0 : 1) - (b.tests === 0 ? 0 : 1) || b.productionHits - a.productionHits ||
    a.route.localeCompare(b.route) || a.method.localeCompare(b.method))
  return { build: chosen?.build ?? null, endpoints }
}

/** A test that reached an endpoint, with its timings in each of the latest builds. */
export interface EndpointTest {
  file: string
  name: string
  builds: Array<{ build: string, requests: number, meanMs: number, testMs: number, outcome: string }>
}

/** The tests that reached `method route` in the latest `builds` builds (of one project, or of every one), and their timings per build. */
export async function endpointTests (db: Kysely<Database>, method: string, route: string, builds: number, projectId?: number): Promise<{ builds: string[], tests: EndpointTest[] }> {
  const latest = await db.selectFrom('test_build').select(['id', 'build'])
    .$if(projectId !== undefined, (qb) => qb.where('project_id', '=', projectId!))
    .orderBy('created_at', 'desc').orderBy('id', 'desc').limit(builds).execute()
  const ids = latest.map((row) => row.id)
  if (ids.length === 0) return { builds: [], tests: [] }
  const { rows } = await sql<{ file: string, name: string, build: string, requests: string, total_ms: number, test_ms: number, failed: boolean }>`
    select r.file, r.name, b.build, sum(h.requests) as requests, sum(h.total_ms) as total_ms,
      avg(r.duration_ms) as test_ms, bool_or(r.outcome = 'fail') as failed
    from ${sql.table('test_hit')} h
      join ${sql.table('test_run')} r on r.id = h.test_run_id
      join ${sql.table('test_build')} b on b.id = r.build_id
    where h.method = ${method} and h.route = ${route} and r.build_id in (${sql.join(ids)})
    group by r.file, r.name, b.build
    order by r.file, r.name`.execute(db)
  const tests = new Map<string, EndpointTest>()
  for (const row of rows) {
    const key = JSON.stringify([row.file, row.name])
    const test = tests.get(key) ?? { file: row.file, name: row.name, builds: [] }
    const requests = Number(row.requests)
    test.builds.push({ build: row.build, requests, meanMs: Number(row.total_ms) / requests, testMs: Number(row.test_ms), outcome: row.failed ? 'fail' : 'pass' })
    tests.set(key, test)
  }
  // oldest build first, as a chart reads
  return { builds: latest.map((row) => row.build).reverse(), tests: [...tests.values()] }
}
