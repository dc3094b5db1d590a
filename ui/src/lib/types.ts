// The API's types, taken from the server code; dates arrive as ISO strings.
import type { EndpointOverview, WindowCounts } from '../../../lib/queries/overview.js'
import type { LoadCell } from '../../../lib/queries/load.js'
import type { VersionUsage } from '../../../lib/queries/versions.js'
import type { Distribution } from '../../../lib/queries/distribution.js'
import type { MatrixCell } from '../../../lib/queries/performance.js'
import type { TableSize } from '../../../lib/queries/admin.js'
import type { RetentionResult } from '../../../lib/db/retention.js'

/** What JSON makes of a server type: dates become strings. */
export type Json<T> = T extends Date ? string : T extends Array<infer U> ? Array<Json<U>> : T extends object ? { [K in keyof T]: Json<T[K]> } : T

export type Overview = Json<EndpointOverview>
export type { WindowCounts, LoadCell, Distribution, MatrixCell, TableSize, RetentionResult }
export type Versions = { versions: Array<Json<VersionUsage>>, daily: Array<{ day: string, version: string, hits: number }> }
export type Performance = Array<{ endpointId: number } & Distribution>
export interface EndpointDetail {
  endpoint: { id: number, method: string, route: string, level: number }
  load: LoadCell[]
  byVersion: Array<{ version: string } & Distribution>
  statusCodes: Array<{ day: string, statusCode: number, hits: number }>
}
export type { Breakdown } from '../../../lib/queries/performance.js'
export interface SessionInfo { username: string, role: 'admin' | 'guest', csrfToken: string }
export interface DashboardConfig {
  version: string
  database: string
  tablePrefix: string
  retentionDays: number
  rollupRetentionDays: number
  exportEnabled: boolean
  tables: TableSize[]
}
export interface UserRow { username: string, role: 'admin' | 'guest', createdAt: string }

import type { OutlierResources, OutlierSummary, OutlierDetail as StoredOutlier } from '../../../lib/queries/outliers.js'
import type { HiddenRequestEvidence, PhaseEvidence, ProcessEvidence, RequestEvidence } from '../../../lib/collection/evidence.js'
import type { StackEvidence } from '../../../lib/profiling/sampler.js'
/** `requestValues`: false when the reader is a guest and request values are for admins only. */
export interface OutlierPage { page: number, pageSize: number, found: number, stored: number, rows: Array<Json<OutlierSummary>>, resources: OutlierResources, requestValues: boolean }
export type OutlierDetail = Omit<Json<StoredOutlier>, 'request' | 'phases' | 'process' | 'stacks'> & {
  request: RequestEvidence | HiddenRequestEvidence
  phases: PhaseEvidence
  process: ProcessEvidence
  stacks: StackEvidence | null
}
import type { GroupedNode, GroupedProfile as MergedProfile, ProfileSummary } from '../../../lib/queries/profiles.js'
export type GroupedProfile = MergedProfile & { latest: Array<Json<ProfileSummary>> }
export type { GroupedNode }

import type { EndpointCoverage, EndpointTest, TestBuildSummary } from '../../../lib/queries/tests.js'
export type TestBuild = Json<TestBuildSummary>
export interface TestCoverage { build: string | null, endpoints: EndpointCoverage[] }
export interface EndpointTests { builds: string[], tests: EndpointTest[] }
