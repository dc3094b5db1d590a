/**
 * The view lives in the URL's hash (`#/endpoint/3?tab=versions&range=7d&tz=Europe/Paris`), so links
 * can be shared, the back button works, and the server needs no route per view.
 */
export interface Route { path: string[], params: Record<string, string> }

function parse (): Route {
  const hash = decodeURIComponent(location.hash.replace(/^#/, '')) || '/overview'
  const [path = '', search = ''] = hash.split('?')
  return { path: path.split('/').filter(Boolean), params: Object.fromEntries(new URLSearchParams(search)) }
}

export const route = $state<Route>(parse())

addEventListener('hashchange', () => {
  const next = parse()
  route.path = next.path
  route.params = next.params
})

/** Goes to a view; params not given are kept (the time range follows you around). */
export function navigate (path: string, params: Record<string, string | undefined> = {}, keep = true): void {
  const merged: Record<string, string> = keep ? { ...route.params } : {}
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) delete merged[key]; else merged[key] = value
  }
  const search = new URLSearchParams(merged).toString()
  location.hash = `#${path}${search === '' ? '' : `?${search}`}`
}

export function setParams (params: Record<string, string | undefined>): void {
  navigate(`/${route.path.join('/')}`, params)
}

export function href (path: string, params: Record<string, string> = {}): string {
  const search = new URLSearchParams({ ...keptParams(), ...params }).toString()
  return `#${path}${search === '' ? '' : `?${search}`}`
}

function keptParams (): Record<string, string> {
  const { range, from, to, tz, project } = route.params
  return Object.fromEntries(Object.entries({ range, from, to, tz, project }).filter(([, v]) => v !== undefined)) as Record<string, string>
}
