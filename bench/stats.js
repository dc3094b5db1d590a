// What the benches report of repeated rounds.

/** The middle value; for an even count the mean of the two middle ones (the upper one alone reads 2 rounds as their maximum). */
export function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
