import { createHash, randomBytes } from 'node:crypto'

/** What a project's ingest token starts with, so a leaked one is recognisable (secret scanners, logs). */
export const PROJECT_TOKEN_PREFIX = 'fmdp_'
/** How long a token's answer (its project, or none) is kept: a revoked token stops working within this. */
export const PROJECT_TOKEN_CACHE_MS = 5_000
/** Tokens remembered at once; unknown ones are remembered too, so a flood of bad tokens costs no query each. */
const MAX_CACHED_TOKENS = 1_000

/** A new token: 256 random bits. Shown once; only its hash is stored. */
export function newProjectToken (): string {
  return `${PROJECT_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`
}

/** The stored form of a token. SHA-256 suffices: the token is random, not a password a person chose. */
export function projectTokenHash (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** The last characters of a token, shown beside it in the dashboard to tell tokens apart. */
export function projectTokenHint (token: string): string {
  return token.slice(-4)
}

/**
 * Which project a token belongs to, asked of the database at most once per token every
 * {@link PROJECT_TOKEN_CACHE_MS}; revoked and unknown tokens answer `undefined`. Bounded: the oldest
 * answers are forgotten first.
 */
export class ProjectTokenCache {
  readonly #lookup: (hash: string) => Promise<string | undefined>
  readonly #answers = new Map<string, { project: string | undefined, until: number }>()

  constructor (lookup: (hash: string) => Promise<string | undefined>) {
    this.#lookup = lookup
  }

  async projectOf (token: string, nowMs = Date.now()): Promise<string | undefined> {
    const hash = projectTokenHash(token)
    const known = this.#answers.get(hash)
    if (known !== undefined && known.until > nowMs) return known.project
    const project = await this.#lookup(hash)
    this.#answers.delete(hash)
    if (this.#answers.size >= MAX_CACHED_TOKENS) this.#answers.delete(this.#answers.keys().next().value!)
    this.#answers.set(hash, { project, until: nowMs + PROJECT_TOKEN_CACHE_MS })
    return project
  }

  /** Forgets every answer: after a revocation in this process, it takes effect at once. */
  clear (): void {
    this.#answers.clear()
  }
}
