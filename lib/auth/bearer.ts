import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** Whether a request carries `Authorization: Bearer <token>`, compared in constant time. */
export function bearerMatcher (token: string): (request: FastifyRequest) => boolean {
  const expected = Buffer.from(`Bearer ${token}`)
  return (request) => {
    const given = Buffer.from(request.headers.authorization ?? '')
    return given.length === expected.length && timingSafeEqual(given, expected)
  }
}

/**
 * A hook that lets through requests carrying `Authorization: Bearer <token>` and answers 401
 * otherwise: for the machine-facing routes (export, test results), which use no session or cookie
 * (and so have no CSRF surface). Compared in constant time.
 */
export function bearerToken (token: string, what: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const matches = bearerMatcher(token)
  return async (request, reply) => {
    if (!matches(request)) {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: `a valid ${what} token is required` })
    }
  }
}
