import { route } from './route.svelte.js'
import type { Range } from '../api/dashboard.js'

const DAY_MS = 86_400_000
export const browserTimeZone = Intl.DateTimeFormat().resolvedOptions().timeZone

export type RangeName = 'today' | '7d' | '30d' | 'custom'

/** The time range and zone from the URL: `range=today|7d|30d|custom` (with `from`/`to`), `tz`. */
export function currentRange (now = Date.now()): Range & { name: RangeName } {
  const tz = route.params.tz ?? browserTimeZone
  const name = (route.params.range ?? '7d') as RangeName
  const to = new Date(now + 60_000)
  if (name === 'custom' && route.params.from !== undefined && route.params.to !== undefined) {
    return { name, tz, from: new Date(route.params.from).toISOString(), to: new Date(route.params.to).toISOString() }
  }
  const days = name === 'today' ? 0 : name === '30d' ? 29 : 6
  return { name, tz, from: new Date(startOfLocalDay(now, tz) - days * DAY_MS).toISOString(), to: to.toISOString() }
}

/** Midnight of today in `tz`, in ms (found by asking Intl what the local time is now). */
function startOfLocalDay (now: number, tz: string): number {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', hour: 'numeric', minute: 'numeric', second: 'numeric' })
    .formatToParts(new Date(now)).map((p) => [p.type, p.value]))
  const sinceMidnight = (Number(parts.hour) * 3600 + Number(parts.minute) * 60 + Number(parts.second)) * 1000
  return now - sinceMidnight - (now % 1000)
}
