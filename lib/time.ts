/** Milliseconds in an hour and in a day (UTC days: no daylight-saving change ever lengthens one). */
export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000

/** The earliest and latest of some times (ms), in one pass; a spread into `Math.min` overflows the stack past ~100k values. */
export function timeSpan (timesMs: Iterable<number>): { firstMs: number, lastMs: number } {
  let firstMs = Infinity
  let lastMs = -Infinity
  for (const timeMs of timesMs) {
    if (timeMs < firstMs) firstMs = timeMs
    if (timeMs > lastMs) lastMs = timeMs
  }
  return { firstMs, lastMs }
}
