import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'

/**
 * A browser's cookie jar for `app.inject`: keeps what `set-cookie` says (a cleared cookie goes), sends
 * every cookie on each request. Paths are not compared: the tests hit the dashboard and the host app alike.
 */
export class CookieJar {
  readonly cookies = new Map<string, string>()

  header (): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  take (res: LightMyRequestResponse): void {
    const raw = res.headers['set-cookie']
    for (const line of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
      const [pair] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      if (value === '' || /max-age=0\b/i.test(line) || /expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  /** `app.inject` with this jar's cookies; the reply's cookies go into the jar. */
  async inject (app: FastifyInstance, options: InjectOptions): Promise<LightMyRequestResponse> {
    const res = await app.inject({ ...options, headers: { ...options.headers, ...(this.cookies.size > 0 ? { cookie: this.header() } : {}) } })
    this.take(res)
    return res
  }

  copy (): CookieJar {
    const jar = new CookieJar()
    for (const [name, value] of this.cookies) jar.cookies.set(name, value)
    return jar
  }
}

/** Logs into the dashboard with the jar; returns the CSRF token (throws unless 200). */
export async function dashboardLogin (app: FastifyInstance, jar: CookieJar, username: string, password: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await jar.inject(app, { method: 'POST', url: '/dashboard/api/login', payload: { username, password }, headers })
  if (res.statusCode !== 200) throw new Error(`dashboard login failed: ${res.statusCode} ${res.body}`)
  return res.json<{ csrfToken: string }>().csrfToken
}
