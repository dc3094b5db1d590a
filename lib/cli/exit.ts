/** Exit codes: what a CI script can tell apart. */
export const EXIT = { ok: 0, regression: 1, usage: 2, failure: 3 } as const

/** A command line the command cannot run: answered with the command's usage and exit code 2. */
export class UsageError extends Error {}
