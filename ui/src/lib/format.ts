// Every number and version the dashboard shows goes through these, so a figure reads the same in
// every view (a table cell, a chart tooltip, an axis tick).

/** What a missing value shows. */
export const NONE = '–'

/** Three significant digits, the way durations and sizes are shown: 1.23, 12.3, 123. */
function threeDigits (value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)
}

/**
 * A duration in milliseconds: `0.05 ms`, `12.3 ms`, `250 ms`, `1.50 s`. Below 0.01 ms two significant
 * digits (`0.0042 ms`), so sub-millisecond routes never read `0.00 ms`. `trimZeros` drops trailing
 * zeros, for round values such as an axis's ticks (`2 ms`, `0.5 ms`, `1 s`).
 *
 * ### Examples
 * ```ts
 * ms(12.34) // '12.3 ms'
 * ms(1500) // '1.50 s'
 * ms(2000, { trimZeros: true }) // '2 s'
 * ```
 */
export function ms (value: number | null | undefined, { trimZeros = false }: { trimZeros?: boolean } = {}): string {
  if (value === null || value === undefined || Number.isNaN(value)) return NONE
  const [digits, unit] = value >= 1000 ? [threeDigits(value / 1000), 's'] : value > 0 && value < 0.01 ? [String(Number(value.toPrecision(2))), 'ms'] : [threeDigits(value), 'ms']
  return `${trimZeros ? String(Number(digits)) : digits} ${unit}`
}

/** A count with thousands separators: `12,345`. */
export function count (value: number | null | undefined): string {
  if (value === null || value === undefined) return NONE
  return value.toLocaleString('en-US')
}

const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB'] as const

/**
 * A size in bytes, in SI units with three significant digits: `512 B`, `48.0 kB`, `12.3 MB`, `1.50 GB`.
 *
 * ### Examples
 * ```ts
 * bytes(12_345_678) // '12.3 MB'
 * ```
 */
export function bytes (value: number | null | undefined): string {
  if (value === null || value === undefined) return NONE
  let unit = 0
  let scaled = value
  // 999.6 kB would round to "1000 kB": step up first
  while (unit < BYTE_UNITS.length - 1 && Math.abs(scaled) >= 999.5) {
    scaled /= 1000
    unit++
  }
  return unit === 0 ? `${Math.round(scaled)} B` : `${threeDigits(scaled)} ${BYTE_UNITS[unit]}`
}

/**
 * A percentage, given in percent (not as a fraction), with one decimal: `12.5%`; `signed` adds `+`
 * to a rise (`+3.2%`, `-1.0%`), as a change is shown. A value that rounds to zero is `0.0%`.
 *
 * ### Examples
 * ```ts
 * percent(0.034 * 100) // '3.4%'
 * percent(12, { signed: true }) // '+12.0%'
 * ```
 */
export function percent (value: number | null | undefined, { signed = false }: { signed?: boolean } = {}): string {
  if (value === null || value === undefined || Number.isNaN(value)) return NONE
  const rounded = Math.round(value * 10) / 10
  if (rounded === 0) return '0.0%'
  return `${signed && rounded > 0 ? '+' : ''}${rounded.toFixed(1)}%`
}

/** A probability (a test's p-value): two significant digits, exponent below 0.0001 (`3.2e-7`). */
export function pValue (value: number | null | undefined): string {
  if (value === null || value === undefined) return NONE
  return value < 1e-4 ? value.toExponential(1) : value.toPrecision(2)
}

/** A unitless value (a custom graph's): whole numbers as counts, others with four significant digits. */
export function number (value: number | null | undefined): string {
  if (value === null || value === undefined) return NONE
  return Number.isInteger(value) ? count(value) : value.toPrecision(4)
}

// A git object id: 40 hex digits (SHA-1) or 64 (SHA-256), not part of a longer run of hex digits.
const COMMIT_ID = /(?<![0-9a-f])([0-9a-f]{7})(?:[0-9a-f]{33}|[0-9a-f]{57})(?![0-9a-f])/gi

/**
 * A version as it is shown: a full git commit id (40 or 64 hex digits) becomes its first 7, also
 * inside a longer label (`version:<id>`); anything else (`1.4.2`, `v-ui`) is unchanged. Show the full
 * value on hover (`title`), as the `Version` component does.
 *
 * ### Examples
 * ```ts
 * shortVersion('c3a1f0e9b7d24f6a8e1c5b9d0a7f3e2c1b4d6f8a') // 'c3a1f0e'
 * shortVersion('1.4.2') // '1.4.2'
 * ```
 */
export function shortVersion (version: string | null | undefined): string {
  if (version === null || version === undefined) return NONE
  return version.replace(COMMIT_ID, '$1')
}

/** A date and time in the chosen zone: `30 Nov 2026, 14:05`. */
export function dateTime (iso: string | null, tz: string): string {
  if (iso === null) return 'never'
  return new Intl.DateTimeFormat('en-GB', { timeZone: tz, dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso))
}

export const LEVELS = ['0 · last seen', '1 · requests', '2 · outliers', '3 · profiler']
