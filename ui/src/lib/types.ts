// The API's types, derived from the routes' response schemas (lib/routes/schemas.ts), the one definition of
// each reply's JSON: Fastify serialises with them, so a property they do not declare never reaches the UI.
import type { FromSchema } from 'json-schema-to-ts'
import type {
  BREAKDOWN_REPLY, CONFIG_REPLY, DISTRIBUTION, ENDPOINT_REPLY, ENDPOINT_TESTS_REPLY, GRAPHS_REPLY, GROUPED_PROFILE_REPLY,
  LOAD_REPLY, OUTLIER_PAGE_REPLY, OUTLIER_REPLY, OVERVIEW_REPLY, PERFORMANCE_REPLY, PROJECTS_REPLY, PROJECT_TOKEN_REPLY, REPORT_REPLY, RETENTION_REPLY,
  SESSION_REPLY, TEST_BUILDS_REPLY, TEST_COVERAGE_REPLY, USERS_REPLY, VERSIONS_REPLY, WINDOW_COUNTS
} from '../../../lib/routes/schemas.js'

export type Overview = FromSchema<typeof OVERVIEW_REPLY>[number]
export type WindowCounts = FromSchema<typeof WINDOW_COUNTS>
export type Distribution = FromSchema<typeof DISTRIBUTION>
export type LoadCell = FromSchema<typeof LOAD_REPLY>[number]
export type Performance = FromSchema<typeof PERFORMANCE_REPLY>
export type Versions = FromSchema<typeof VERSIONS_REPLY>
export type EndpointDetail = FromSchema<typeof ENDPOINT_REPLY>
export type Breakdown = FromSchema<typeof BREAKDOWN_REPLY>
export type MatrixCell = Breakdown['matrix'][number]
export type SessionInfo = FromSchema<typeof SESSION_REPLY>
export type DashboardConfig = FromSchema<typeof CONFIG_REPLY>
export type TableSize = DashboardConfig['tables'][number]
export type RetentionResult = FromSchema<typeof RETENTION_REPLY>
export type UserRow = FromSchema<typeof USERS_REPLY>[number]
/** `requestValues`: false when the reader is a guest and request values are for admins only. */
export type OutlierPage = FromSchema<typeof OUTLIER_PAGE_REPLY>
export type OutlierDetail = FromSchema<typeof OUTLIER_REPLY>
export type GroupedProfile = FromSchema<typeof GROUPED_PROFILE_REPLY>
export type GroupedNode = GroupedProfile['nodes'][number]
export type TestBuild = FromSchema<typeof TEST_BUILDS_REPLY>['builds'][number]
export type TestCoverage = FromSchema<typeof TEST_COVERAGE_REPLY>
export type EndpointTests = FromSchema<typeof ENDPOINT_TESTS_REPLY>
export type Report = FromSchema<typeof REPORT_REPLY>
export type ReportRow = Report['endpoints'][number]
export type CustomGraph = FromSchema<typeof GRAPHS_REPLY>[number]
/** Every project, and for admins every token's hint and state. */
export type Projects = FromSchema<typeof PROJECTS_REPLY>
/** A token just made: the only time the UI sees it. */
export type IssuedProjectToken = FromSchema<typeof PROJECT_TOKEN_REPLY>
