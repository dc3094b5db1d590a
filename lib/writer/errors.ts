/** Classes of SQLSTATE that retrying the same statement cannot fix. */
const PERMANENT_SQLSTATE_CLASSES = new Set(['22', '23', '42'])
/** "no partition of relation … found for row": the partition must be made, then the batch retried. */
export const MISSING_PARTITION_SQLSTATE = '23514'

/**
 * True when an error says the statement itself is bad (data or schema), or a collector refused the batch
 * itself (`permanent`, a 400 or 413), so retrying cannot help;
 * false for everything that may pass: refused or broken connections, shutdowns, deadlocks, timeouts.
 */
export function isPermanentError (err: unknown): boolean {
  if ((err as { permanent?: unknown } | null)?.permanent === true) return true
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string' || code.length !== 5 || code === MISSING_PARTITION_SQLSTATE) return false
  return PERMANENT_SQLSTATE_CLASSES.has(code.slice(0, 2))
}
