/**
 * What the test monitor records: written by each test process (tracker.ts) into the run's results
 * directory, gathered by the `test` command (cli.ts), and stored through `POST <prefix>/api/test-results`
 * or straight into the database (queries/tests.ts). One shape for all three.
 */

/** Test outcomes as the runners report them. */
export type TestOutcome = 'pass' | 'fail' | 'skip' | 'todo'

/** Requests one test made to one endpoint with one status code. */
export interface EndpointHits {
  method: string
  route: string
  statusCode: number
  requests: number
  totalMs: number
  maxMs: number
}

/** One test of one run of the suite. */
export interface TestRecord {
  /** The test file, relative to the directory the suite ran in. */
  file: string
  /** The test's name, with its parents' names before it: `suite > test`. */
  name: string
  /** The test's own duration. */
  durationMs: number
  outcome: TestOutcome
  hits: EndpointHits[]
}

/** A CI build: where it came from. */
export interface BuildInfo {
  build: string
  commit: string | null
  branch: string | null
}

/**
 * One submission: the tests of one run (`batch`, e.g. `run-1` of `--repeat 3`) of a build. Storing a
 * batch twice stores it once, so a retried upload is harmless.
 */
export interface TestResultsSubmission extends BuildInfo {
  /**
   * The project whose tests these are (`PROJECT_NAME` of protocol.ts), created if new; default `default`. The
   * Tests view of a project shows its builds and compares them with its endpoints.
   */
  project?: string
  batch: string
  /** Which of the `--repeat` runs this is, from 1. */
  repeat: number
  tests: TestRecord[]
}

/** Limits of a submission, checked by the API's schema and by the tracker when it writes. */
export const TEST_RESULT_LIMITS = {
  text: 1_000,
  testsPerBatch: 20_000,
  hitsPerTest: 500
} as const

/** Header by which a test's outgoing `fetch` names the test to a server in the same process. */
export const TEST_HEADER = 'x-fmd-test'

/** Environment variable naming the directory test processes write their results into. */
export const RESULTS_DIR_ENV = 'FMD_TEST_RESULTS_DIR'
