export function ms (value: number | null | undefined): string {
  if (value === null || value === undefined) return '–'
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ms`
}

export function count (value: number): string {
  return value.toLocaleString('en-US')
}

export function dateTime (iso: string | null, tz: string): string {
  if (iso === null) return 'never'
  return new Intl.DateTimeFormat('en-GB', { timeZone: tz, dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso))
}

export const LEVELS = ['0 · last seen', '1 · requests', '2 · outliers', '3 · profiler']
