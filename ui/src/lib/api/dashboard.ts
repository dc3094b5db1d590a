import { query, request } from './client.js'
import type { CustomGraph, IssuedProjectToken, Projects, Report, GroupedProfile, OutlierDetail, OutlierPage, Breakdown, DashboardConfig, EndpointDetail, LoadCell, Overview, Performance, RetentionResult, SessionInfo, UserRow, Versions, TestBuild, TestCoverage, EndpointTests } from '../types.js'

/** A view's range and zone, and the project it keeps to (absent: every project's endpoints). */
export interface Range { from: string, to: string, tz: string, project?: number }

export const session = {
  current: async () => await request<SessionInfo>('/session'),
  login: async (username: string, password: string) => await request<SessionInfo>('/login', { method: 'POST', body: { username, password } }),
  logout: async () => await request<{ ok: true }>('/logout', { method: 'POST' })
}

export const dashboard = {
  overview: async (tz: string, prefix?: string, project?: number) => await request<Overview[]>(`/overview${query({ tz, prefix, project })}`),
  projects: async () => await request<Projects>('/projects'),
  load: async (range: Range, endpoint?: number) => await request<LoadCell[]>(`/load${query({ ...range, endpoint })}`),
  versions: async (range: Range) => await request<Versions>(`/versions${query({ ...range })}`),
  performance: async (range: Range) => await request<Performance>(`/performance${query({ ...range })}`),
  endpoint: async (id: number, range: Range) => await request<EndpointDetail>(`/endpoints/${id}${query({ ...range })}`),
  breakdown: async (id: number, by: 'group_by' | 'ip', range: Range) => await request<Breakdown>(`/endpoints/${id}/breakdown${query({ ...range, by })}`),
  outliers: async (id: number, range: Range, page: number) => await request<OutlierPage>(`/endpoints/${id}/outliers${query({ ...range, page, pageSize: 25 })}`),
  outlier: async (id: string) => await request<OutlierDetail>(`/outliers/${id}`),
  profile: async (id: number, n: number, libraries: 'fold' | 'expand') => await request<GroupedProfile>(`/endpoints/${id}/profile${query({ n, libraries })}`),
  setLevel: async (id: number, level: number) => await request(`/endpoints/${id}/level`, { method: 'PUT', body: { level } }),
  graphs: async (range: Range) => await request<CustomGraph[]>(`/graphs${query({ ...range })}`),
  report: async (baseline: string, candidate: string, project?: number) => await request<Report>(`/reports${query({ baseline, candidate, project })}`)
}

/** The test monitor; `project`: that project's builds only (absent: every project's). */
export const tests = {
  builds: async (project?: number) => await request<{ builds: TestBuild[] }>(`/tests/builds${query({ project })}`),
  coverage: async (build?: string, project?: number) => await request<TestCoverage>(`/tests/coverage${query({ build, project })}`),
  endpoint: async (method: string, route: string, project?: number) => await request<EndpointTests>(`/tests/endpoint${query({ method, route, project })}`)
}

export const admin = {
  config: async () => await request<DashboardConfig>('/config'),
  deleteBefore: async (before: string) => await request<RetentionResult>('/retention/delete', { method: 'POST', body: { before } }),
  users: async () => await request<UserRow[]>('/users'),
  addUser: async (username: string, password: string, role: 'admin' | 'guest') => await request('/users', { method: 'POST', body: { username, password, role } }),
  deleteUser: async (username: string) => await request(`/users/${encodeURIComponent(username)}`, { method: 'DELETE' }),
  /** A new project and its first ingest token (the only time the token is seen). */
  createProject: async (name: string) => await request<IssuedProjectToken>('/projects', { method: 'POST', body: { name } }),
  /** Another token of a project, for a rotation. */
  newProjectToken: async (projectId: number) => await request<IssuedProjectToken>(`/projects/${projectId}/tokens`, { method: 'POST' }),
  revokeProjectToken: async (projectId: number, tokenId: number) => await request<{ ok: true }>(`/projects/${projectId}/tokens/${tokenId}`, { method: 'DELETE' }),
  /** `currentPassword` is required when users change their own. */
  setPassword: async (username: string, password: string, currentPassword?: string) => await request(`/users/${encodeURIComponent(username)}/password`, { method: 'PUT', body: { password, currentPassword } })
}
