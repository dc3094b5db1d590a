import { route } from './route.svelte.js'
import type { Range } from '../api/dashboard.js'
import { localDayRange, startOfToday } from '../time.js'

const DAY_MS = 86_400_000
export const browserTimeZone = Intl.DateTimeFormat().resolvedOptions().timeZone

export type RangeName = 'today' | '7d' | '30d' | 'custom'

/** The project picked in the header (`project=<id>` in the URL); undefined: every project. */
export function currentProject (): number | undefined {
  const id = Number(route.params.project)
  return Number.isInteger(id) && id > 0 ? id : undefined
}

/** The time range and zone from the URL: `range=today|7d|30d|custom` (with `from`/`to`), `tz`; and the project. */
export function currentRange (now = Date.now()): Range & { name: RangeName } {
  const tz = route.params.tz ?? browserTimeZone
  const project = currentProject()
  const name = (route.params.range ?? '7d') as RangeName
  const to = new Date(now + 60_000)
  if (name === 'custom' && route.params.from !== undefined && route.params.to !== undefined) {
    // whole local days (YYYY-MM-DD, the "To" day included) in the chosen zone; older links carry instants
    if (!route.params.from.includes('T')) return { name, tz, project, ...localDayRange(route.params.from, route.params.to, tz) }
    return { name, tz, project, from: new Date(route.params.from).toISOString(), to: new Date(route.params.to).toISOString() }
  }
  const days = name === 'today' ? 0 : name === '30d' ? 29 : 6
  return { name, tz, project, from: new Date(startOfToday(now, tz) - days * DAY_MS).toISOString(), to: to.toISOString() }
}
