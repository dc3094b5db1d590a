/** Time-zone arithmetic for the range picker, with nothing but Intl (no rune state: unit-testable in Node). */

const DAY_MS = 86_400_000

/** How far `tz`'s wall clock is ahead of UTC at the instant `ms`, in ms (DST included). */
export function zoneOffsetMs (ms: number, tz: string): number {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric'
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]))
  const wall = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second))
  return wall - (ms - (ms % 1000))
}

/**
 * The instant a local calendar day (`YYYY-MM-DD`) starts in `tz`. The offset is asked twice: once at the
 * day's UTC midnight, once at the first guess, so a day whose offset differs from UTC midnight's (DST) is right.
 */
export function startOfDayIn (day: string, tz: string): number {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number]
  const wall = Date.UTC(y, m - 1, d)
  const guess = wall - zoneOffsetMs(wall, tz)
  return wall - zoneOffsetMs(guess, tz)
}

/**
 * A custom range of whole local days: from the start of `fromDay` to the end of `toDay` (the start of the
 * day after it), both in `tz`. "From 11/29 to 11/30" is two days, the 30th included.
 */
export function localDayRange (fromDay: string, toDay: string, tz: string): { from: string, to: string } {
  const next = new Date(Date.parse(`${toDay}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10)
  return { from: new Date(startOfDayIn(fromDay, tz)).toISOString(), to: new Date(startOfDayIn(next, tz)).toISOString() }
}

/** Midnight of today in `tz`, in ms. */
export function startOfToday (now: number, tz: string): number {
  const local = new Date(now + zoneOffsetMs(now, tz)).toISOString().slice(0, 10)
  return startOfDayIn(local, tz)
}

/** The zone list for a select: the usual ones plus `current` whatever its spelling (Chromium lists Asia/Calcutta, not its alias Asia/Kolkata). */
export function zoneChoices (current: string, browser: string, supported: string[]): string[] {
  return [...new Set(['UTC', browser, current, ...supported])]
}
