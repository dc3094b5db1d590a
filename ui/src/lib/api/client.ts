/** The one fetch wrapper: JSON in and out, the CSRF header on writes, 401 → the session is over. */
export class ApiError extends Error {
  /** Seconds the server asked to wait (Retry-After), on 429 and 503. */
  readonly retryAfterS: number | undefined
  constructor (readonly status: number, message: string, retryAfterS?: number) {
    super(message)
    this.retryAfterS = retryAfterS
  }

  /** The monitoring database is not ready or down: views say so and try again. */
  get unavailable (): boolean { return this.status === 503 }
}

let csrfToken = ''
let onUnauthorized: () => void = () => {}

export function setCsrfToken (token: string): void { csrfToken = token }
export function whenUnauthorized (handler: () => void): void { onUnauthorized = handler }

const prefetched = new Map<string, Promise<unknown>>()

/**
 * Starts a GET now whose answer the next `request` for the same path takes, e.g. the first view's data
 * while the session is still being checked. A failed prefetch is simply asked again.
 */
export function prefetch (path: string): void {
  const answer = send(path, {}, false)
  answer.catch(() => {})
  prefetched.set(path, answer)
  setTimeout(() => prefetched.delete(path), 5_000)
}

export async function request<T> (path: string, options: { method?: string, body?: unknown } = {}): Promise<T> {
  const early = prefetched.get(path)
  if (early !== undefined && options.method === undefined) {
    prefetched.delete(path)
    try { return await early as T } catch { /* e.g. sent before the login: ask again */ }
  }
  return await send<T>(path, options, true)
}

async function send<T> (path: string, options: { method?: string, body?: unknown }, notifyUnauthorized: boolean): Promise<T> {
  const method = options.method ?? 'GET'
  const headers: Record<string, string> = { accept: 'application/json' }
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken
  // relative to the page (…/dashboard/), so any prefix works
  const res = await fetch(`./api${path}`, { method, headers, credentials: 'same-origin', body: options.body === undefined ? undefined : JSON.stringify(options.body) })
  const text = await res.text()
  let data: unknown
  try { data = text === '' ? undefined : JSON.parse(text) } catch { data = undefined }
  if (res.status === 401 && path !== '/login' && notifyUnauthorized) onUnauthorized()
  if (!res.ok) {
    const retryAfter = Number(res.headers.get('retry-after'))
    throw new ApiError(res.status, (data as { error?: string } | undefined)?.error ?? res.statusText, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined)
  }
  return data as T
}

/** `?a=1&b=2` from the defined entries. */
export function query (params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, String(value))
  const text = search.toString()
  return text === '' ? '' : `?${text}`
}
