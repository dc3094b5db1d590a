import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * Whether a request to the dashboard's API comes from the dashboard's own page (or from no page:
 * curl, a script). Browsers say where a request comes from in `Sec-Fetch-Site`, which pages cannot
 * forge: only `same-origin` (and `none`, typed or bookmarked) is accepted, so a page on a sibling
 * subdomain (`same-site`) is refused too. Older browsers send no `Sec-Fetch-Site`; there an `Origin`
 * must name this host. The scheme is not compared: TLS often ends at a proxy in front of the app.
 */
export function isSameOrigin (request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site']
  if (typeof site === 'string') return site === 'same-origin' || site === 'none'
  const origin = request.headers.origin
  if (origin === undefined) return true
  try {
    return withoutDefaultPort(new URL(origin).host) === withoutDefaultPort(request.host)
  } catch {
    return false
  }
}

function withoutDefaultPort (host: string): string {
  return host.replace(/:(80|443)$/, '')
}

/** Refuses cross-origin requests (403) before anything else runs on the dashboard's API routes. */
export async function refuseCrossOrigin (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!isSameOrigin(request)) await reply.code(403).send({ error: 'cross-origin requests to the dashboard API are refused' })
}

/**
 * Drops every `Access-Control-*` header from the dashboard's replies. A host's CORS plugin (say
 * @fastify/cors with `origin: true, credentials: true`) adds them to every route, which would let
 * other origins read the API with the user's cookie; the dashboard never shares its answers.
 */
export function stripCorsHeaders (reply: FastifyReply): void {
  for (const name of Object.keys(reply.getHeaders())) {
    if (name.toLowerCase().startsWith('access-control-')) reply.removeHeader(name)
  }
}
