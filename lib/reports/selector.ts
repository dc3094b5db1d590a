/**
 * What a report compares: a version, a time range, a load-test run, or a named window. One syntax
 * for the API (`?baseline=version:1.4.2`) and the CLI (`--baseline version:1.4.2`).
 */
import { DAY_MS } from '../time.js'

export type Selector =
  | { kind: 'version', version: string }
  | { kind: 'range', from: Date, to: Date }
  | { kind: 'run', tag: string }

/** Named windows, in UTC: today so far, the whole of yesterday, this week so far (from Monday), the whole of last week. */
export const NAMED_WINDOWS = ['today', 'yesterday', 'this-week', 'last-week'] as const

function namedWindow (name: (typeof NAMED_WINDOWS)[number], now: Date): { from: Date, to: Date } {
  const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS
  // getUTCDay: 0 is Sunday; weeks start on Monday (ISO 8601)
  const monday = today - ((new Date(today).getUTCDay() + 6) % 7) * DAY_MS
  switch (name) {
    case 'today': return { from: new Date(today), to: now }
    case 'yesterday': return { from: new Date(today - DAY_MS), to: new Date(today) }
    case 'this-week': return { from: new Date(monday), to: now }
    case 'last-week': return { from: new Date(monday - 7 * DAY_MS), to: new Date(monday) }
  }
}

/**
 * Parses `version:<v>`, `range:<ISO from>/<ISO to>`, `run:<tag>` or a named window
 * (`today`, `yesterday`, `this-week`, `last-week`); returns an Error that says what is wrong.
 *
 * ### Examples
 * ```ts
 * parseSelector('version:1.5.0') // { kind: 'version', version: '1.5.0' }
 * parseSelector('range:2026-11-01T00:00:00Z/2026-11-02T00:00:00Z')
 * ```
 */
export function parseSelector (text: string, now = new Date()): Selector | Error {
  if ((NAMED_WINDOWS as readonly string[]).includes(text)) return { kind: 'range', ...namedWindow(text as (typeof NAMED_WINDOWS)[number], now) }
  const colon = text.indexOf(':')
  const kind = colon < 0 ? '' : text.slice(0, colon)
  const rest = text.slice(colon + 1)
  if (kind === 'version' && rest.length > 0) return { kind, version: rest }
  if (kind === 'run' && rest.length > 0) return { kind, tag: rest }
  if (kind === 'range') {
    const [from, to, extra] = rest.split('/').map((part) => new Date(part))
    if (from === undefined || to === undefined || extra !== undefined || Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
      return new Error(`"${text}": a range is range:<from>/<to> with ISO 8601 times`)
    }
    if (!(from < to)) return new Error(`"${text}": from must be before to`)
    return { kind, from, to }
  }
  return new Error(`"${text}" must be version:<version>, range:<from>/<to>, run:<tag> or one of ${NAMED_WINDOWS.join(', ')}`)
}

/** The selector as text again (what the report's header shows). */
export function formatSelector (selector: Selector): string {
  switch (selector.kind) {
    case 'version': return `version:${selector.version}`
    case 'run': return `run:${selector.tag}`
    case 'range': return `range:${selector.from.toISOString()}/${selector.to.toISOString()}`
  }
}
