import { createHook, executionAsyncResource } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import diagnosticsChannel from 'node:diagnostics_channel'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { RESULTS_DIR_ENV, TEST_HEADER, TEST_RESULT_LIMITS, type EndpointHits, type TestOutcome, type TestRecord } from './results.js'

/**
 * Runs inside the app's test processes (preloaded by the `test` command). It knows which test is
 * running at any point without the user's tests naming it: both runners run each test's body in an
 * AsyncResource of their own (node:test's `Test`, tap's `TapWrap`), so an async hook that passes
 * "the test" from a resource to every resource created under it (what AsyncLocalStorage does)
 * names the test behind any request, also when tests of one file run concurrently.
 */

/** A runner's test object, as far as it is read here (node:test `Test`, tap `TestBase`). */
interface RunnerTest {
  name?: string
  parent?: RunnerTest | null
  // node:test
  passed?: boolean
  skipped?: boolean
  isTodo?: boolean
  startTime?: bigint | null
  endTime?: bigint | null
  loc?: { file?: string }
  // tap
  results?: { ok?: boolean } | null
  time?: number
  options?: { skip?: unknown, todo?: unknown }
}

export interface TrackedTest {
  readonly key: number
  readonly runnerTest: RunnerTest
  /** Hits by `method route status`. */
  readonly hits: Map<string, EndpointHits>
}

const kTest = Symbol('fastify-monitoring-dashboard.test')
const GLOBAL_KEY = Symbol.for('fastify-monitoring-dashboard.test-tracker')

export class TestTracker {
  /**
   * Every test resource seen, roots included. At creation a resource is not yet filled in (node:test's
   * Test has no parent yet, tap's TapWrap no test): both are read when asked.
   */
  readonly #seen = new Set<object>()
  readonly #tests: TrackedTest[] = []
  readonly #byRunnerTest = new Map<RunnerTest, TrackedTest>()
  /** Set when a Fastify app registered the plugin in this process: only such processes report. */
  active = false

  /** The test whose code is running now, if any. */
  current (): TrackedTest | undefined {
    const tag = (executionAsyncResource() as { [kTest]?: object })[kTest]
    const runnerTest = tag === undefined ? undefined : runnerTestOf(tag)
    return runnerTest !== undefined && isTest(runnerTest) ? this.#track(runnerTest) : undefined
  }

  byKey (key: number): TrackedTest | undefined {
    return this.#tests[key]
  }

  /** Called from the async hook with every new async resource. */
  onResource (type: string, resource: object): void {
    const own = type === 'Test' || type.startsWith('tap.')
    if (own) this.#seen.add(resource)
    const tag = own ? resource : (executionAsyncResource() as { [kTest]?: object })[kTest]
    if (tag !== undefined) (resource as { [kTest]?: object })[kTest] = tag
  }

  record (test: TrackedTest, method: string, route: string, statusCode: number, durationMs: number): void {
    const key = `${method} ${route} ${statusCode}`
    const hits = test.hits.get(key)
    if (hits !== undefined) {
      hits.requests++
      hits.totalMs += durationMs
      if (durationMs > hits.maxMs) hits.maxMs = durationMs
    } else if (test.hits.size < TEST_RESULT_LIMITS.hitsPerTest) {
      test.hits.set(key, { method, route, statusCode, requests: 1, totalMs: durationMs, maxMs: durationMs })
    }
  }

  /** The finished tests: leaves (a test with subtests is their group) and any test that made requests. */
  results (cwd: string, mainFile: string | undefined): TestRecord[] {
    const all = [...this.#seen].map(runnerTestOf).filter(isTest)
    const parents = new Set(all.map((test) => test.parent))
    return all
      .filter((test) => (this.#byRunnerTest.get(test)?.hits.size ?? 0) > 0 || !parents.has(test))
      .slice(0, TEST_RESULT_LIMITS.testsPerBatch)
      .map((runnerTest) => {
        const file = runnerTest.loc?.file ?? mainFile ?? ''
        return {
          file: clip(file === '' ? '' : relative(cwd, file.startsWith('file://') ? new URL(file).pathname : file)),
          name: clip(fullName(runnerTest)),
          durationMs: durationOf(runnerTest),
          outcome: outcomeOf(runnerTest),
          hits: [...(this.#byRunnerTest.get(runnerTest)?.hits.values() ?? [])]
        }
      })
  }

  #track (runnerTest: RunnerTest): TrackedTest {
    let tracked = this.#byRunnerTest.get(runnerTest)
    if (tracked === undefined) {
      tracked = { key: this.#tests.length, runnerTest, hits: new Map() }
      this.#tests.push(tracked)
      this.#byRunnerTest.set(runnerTest, tracked)
    }
    return tracked
  }
}

/** The test behind a resource: node:test's Test is its own resource, tap's TapWrap holds its test. */
function runnerTestOf (resource: object): RunnerTest {
  return (resource as { test?: RunnerTest }).test ?? resource as RunnerTest
}

/** A test, not a runner's root (node:test `<root>`, tap's `TAP`). */
function isTest (test: RunnerTest): boolean {
  return test.parent !== undefined && test.parent !== null
}

function fullName (test: RunnerTest): string {
  const names: string[] = []
  for (let at: RunnerTest | null | undefined = test; at !== undefined && at !== null && isTest(at); at = at.parent) names.unshift(at.name ?? '')
  return names.join(' > ')
}

function durationOf (test: RunnerTest): number {
  if (typeof test.time === 'number') return test.time
  if (typeof test.startTime === 'bigint' && typeof test.endTime === 'bigint') return Number(test.endTime - test.startTime) / 1e6
  return 0
}

function outcomeOf (test: RunnerTest): TestOutcome {
  if (test.results !== undefined) {
    if (test.options?.todo !== undefined && test.options.todo !== false) return 'todo'
    if (test.options?.skip !== undefined && test.options.skip !== false) return 'skip'
    return test.results?.ok === true ? 'pass' : 'fail'
  }
  if (test.isTodo === true) return 'todo'
  if (test.skipped === true) return 'skip'
  return test.passed === true ? 'pass' : 'fail'
}

function clip (text: string): string {
  return text.length > TEST_RESULT_LIMITS.text ? text.slice(0, TEST_RESULT_LIMITS.text) : text
}

/** The tracker of this process, when the test monitor is preloaded. */
export function testTracker (): TestTracker | undefined {
  return (globalThis as { [GLOBAL_KEY]?: TestTracker })[GLOBAL_KEY]
}

/**
 * Starts tracking tests in this process: the async hook, the header on outgoing `fetch` requests
 * (a server in this process then knows the test even though its sockets were opened elsewhere), and
 * the results file written at exit into the directory the `test` command names.
 */
export function installTracker (): TestTracker {
  const existing = testTracker()
  if (existing !== undefined) return existing
  const tracker = new TestTracker()
  ;(globalThis as { [GLOBAL_KEY]?: TestTracker })[GLOBAL_KEY] = tracker
  createHook({ init (_id, type, _trigger, resource) { tracker.onResource(type, resource) } }).enable()
  diagnosticsChannel.subscribe('undici:request:create', (message) => {
    const test = tracker.current()
    if (test !== undefined) (message as { request: { addHeader: (name: string, value: string) => void } }).request.addHeader(TEST_HEADER, String(test.key))
  })
  const dir = process.env[RESULTS_DIR_ENV]
  if (dir !== undefined && dir !== '') {
    process.on('exit', () => {
      if (!tracker.active) return
      mkdirSync(dir, { recursive: true })
      const tests = tracker.results(process.cwd(), process.argv[1])
      writeFileSync(join(dir, `${process.pid}-${randomUUID()}.json`), JSON.stringify(tests))
    })
  }
  return tracker
}
