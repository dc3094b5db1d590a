/**
 * Secrets out of outlier evidence, before it leaves the request thread: what is stored is already
 * redacted, so nothing can leak later (a backup, a guest, a Grafana panel).
 *
 * Two rules: a value whose **name** (header, query parameter, body field at any depth, form field)
 * contains a sensitive fragment is replaced whole; any other value that **looks like a credential** (a
 * JWT, a card number that passes Luhn's check, a long high-entropy token) is cut to a short prefix.
 */

/** What replaces a value whose name is sensitive. */
export const REDACTED = '[redacted]'

/**
 * Name fragments that mark a value as secret, matched case-insensitively inside the name with `-`, `_`,
 * `.` and spaces ignored (`X-Auth-Token`, `access_token`, `user.password`, `cardNumber`).
 */
export const DEFAULT_REDACT_NAMES = [
  'secret', 'token', 'passw', 'pwd', 'passphrase', 'key', 'auth', 'session', 'cookie', 'card', 'ssn',
  'credential', 'signature', 'cvv', 'cvc', 'otp', 'private', 'jwt', 'bearer', 'nonce', 'iban'
]

/** How names and values are judged; built once from the options. */
export interface RedactionRules {
  /** Normalised name fragments: a name containing one is secret. */
  readonly fragments: readonly string[]
  /** Normalised names never redacted by name (their values are still checked for credential shapes). */
  readonly keep: ReadonlySet<string>
}

/** Lower case, without `-`, `_`, `.` and spaces: `X-Auth_Token` and `xauthtoken` are one name. */
export function normalizeName (name: string): string {
  return name.toLowerCase().replace(/[-_.\s]/g, '')
}

/**
 * The rules from the defaults plus `redact` (more fragments, e.g. `['pin', 'x-tenant']`) and `keep`
 * (whole names never redacted by name, e.g. `['x-request-key']`).
 *
 * ### Examples
 * ```ts
 * const rules = redactionRules(['pin'], ['monkey'])
 * isSecretName('x-csrf-token', rules) // true
 * ```
 */
export function redactionRules (redact: readonly string[] = [], keep: readonly string[] = []): RedactionRules {
  const fragments = [...new Set([...DEFAULT_REDACT_NAMES, ...redact].map(normalizeName).filter((f) => f !== ''))]
  return { fragments, keep: new Set(keep.map(normalizeName)) }
}

export function isSecretName (name: string, rules: RedactionRules): boolean {
  const normalized = normalizeName(name)
  if (rules.keep.has(normalized)) return false
  for (const fragment of rules.fragments) if (normalized.includes(fragment)) return true
  return false
}

const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g
/** 13 to 19 digits, possibly grouped by spaces or dashes: a card number if Luhn's check passes. */
const CARD = /(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])/g
/** A run of token characters long enough to be a key; judged by its entropy. */
const TOKEN = /[A-Za-z0-9+/=_~-]{32,}/g
const KEPT_PREFIX = 4

/** Luhn's mod-10 check, on the digits of `text`. */
export function passesLuhn (text: string): boolean {
  const digits = text.replace(/\D/g, '')
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48
    if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9 }
    sum += d
  }
  return digits.length >= 13 && sum % 10 === 0
}

/** Shannon entropy in bits per character. */
function entropy (text: string): number {
  const counts = new Map<string, number>()
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1)
  let bits = 0
  for (const n of counts.values()) { const p = n / text.length; bits -= p * Math.log2(p) }
  return bits
}

/**
 * A random-looking token: mixed letters and digits at over 4 bits of entropy per character. Hex ids
 * (UUIDs, commit hashes: at most 4 bits) and words stay readable.
 */
function looksRandom (token: string): boolean {
  const classes = Number(/[a-z]/.test(token)) + Number(/[A-Z]/.test(token)) + Number(/\d/.test(token))
  return classes >= 2 && entropy(token) > 4
}

const cut = (value: string): string => `${value.slice(0, KEPT_PREFIX)}…${REDACTED}`

/** A value with every credential-shaped part cut to a short prefix (JWTs, card numbers, random tokens). */
export function redactValue (value: string): string {
  if (value.length < 13) return value
  return value
    .replace(JWT, cut)
    .replace(CARD, (digits) => passesLuhn(digits) ? REDACTED : digits)
    .replace(TOKEN, (token) => looksRandom(token) ? cut(token) : token)
}

/** Most values visited in one object: evidence is bounded however deep or wide a body is. */
const MAX_VISITED = 2_000
const MAX_DEPTH = 16

/**
 * A copy of a parsed value (JSON body, query, route params) with secret names replaced at any depth and
 * credential-shaped strings cut. Past {@link MAX_VISITED} values or {@link MAX_DEPTH} levels the rest is
 * dropped (`'…'`), never copied unredacted.
 */
export function redactObject (value: unknown, rules: RedactionRules): unknown {
  let visited = 0
  const walk = (v: unknown, depth: number): unknown => {
    if (++visited > MAX_VISITED || depth > MAX_DEPTH) return '…'
    if (typeof v === 'string') return redactValue(v)
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1e12) return redactValue(String(v)) === REDACTED ? REDACTED : v
    if (v === null || typeof v !== 'object') return v
    if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1))
    if (Buffer.isBuffer(v)) return redactText(v.toString('utf8'), rules)
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(v)) out[key] = isSecretName(key, rules) ? REDACTED : walk(item, depth + 1)
    return out
  }
  return walk(value, 0)
}

/**
 * `name=value`, `name: value` and `"name": "value"` pairs in free text (a form body, a JSON body cut
 * short, a log-like text body): the value of a secret name is replaced.
 */
const PAIR = /(["']?)([A-Za-z0-9_.[\]-]{1,64})\1(\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s&,;}\]]+)/g

/** Free text with the values of secret names replaced and credential-shaped parts cut. */
export function redactText (text: string, rules: RedactionRules): string {
  const paired = text.replace(PAIR, (whole, quote: string, name: string, separator: string, value: string) => {
    if (!isSecretName(name, rules)) return whole
    const quoted = value.startsWith('"') ? `"${REDACTED}"` : value.startsWith('\'') ? `'${REDACTED}'` : REDACTED
    return `${quote}${name}${quote}${separator}${quoted}`
  })
  return redactValue(paired)
}

/** A URL with the values of secret query parameters replaced and credential-shaped parts of the path cut. */
export function redactUrl (url: string, rules: RedactionRules): string {
  const q = url.indexOf('?')
  // segment by segment: a token's characters include '/', a path's segments are separate values
  const path = (q < 0 ? url : url.slice(0, q)).split('/').map(redactValue).join('/')
  if (q < 0) return path
  const query = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    const rawName = eq < 0 ? pair : pair.slice(0, eq)
    let name = rawName
    try { name = decodeURIComponent(rawName.replace(/\+/g, ' ')) } catch { /* keep the raw name */ }
    if (eq >= 0 && isSecretName(name, rules)) return `${rawName}=${REDACTED}`
    return redactValue(pair)
  })
  return `${path}?${query.join('&')}`
}
