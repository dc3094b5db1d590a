import type { FastifyRequest } from 'fastify'
import { copyPrefix } from './protocol.js'

/** What `groupBy` may be: a value, or a function of the request returning one (FMD semantics). */
export type GroupByValue = string | number | bigint | boolean | null | undefined | readonly GroupBy[]
export type GroupBy = GroupByValue | ((request: FastifyRequest) => GroupBy)

/** Longest group-by value stored; longer ones are cut. */
export const MAX_GROUP_LENGTH = 256
const MAX_CALL_DEPTH = 8

class GroupByError extends Error {}

function resolveValue (value: unknown, request: FastifyRequest, depth: number): string | null {
  if (depth > MAX_CALL_DEPTH) throw new GroupByError('groupBy functions nested more than 8 deep')
  switch (typeof value) {
    case 'string': return value
    case 'number': case 'bigint': case 'boolean': return String(value)
    case 'undefined': return null
    case 'function': return resolveValue(value(request), request, depth + 1)
    case 'symbol': return value.toString()
    case 'object': {
      if (value === null) return null
      if (Array.isArray(value)) {
        // FMD stores a tuple as its printed form
        return `(${value.map((item) => resolveValue(item, request, depth + 1) ?? 'None').join(', ')})`
      }
      if (typeof (value as { then?: unknown }).then === 'function') {
        throw new GroupByError('groupBy returned a promise; it must return a value synchronously')
      }
      return JSON.stringify(value) ?? null
    }
  }
  return null
}

/**
 * Evaluates the user's `groupBy` for one request. Functions are called until a value comes out,
 * arrays become a tuple string, objects their JSON. Throws if the user's code throws.
 *
 * ### Examples
 * ```ts
 * resolveGroupBy((req) => [req.user.id, 'eu'], request) // '(42, eu)'
 * ```
 */
export function resolveGroupBy (groupBy: GroupBy, request: FastifyRequest): string | null {
  const value = resolveValue(groupBy, request, 0)
  if (value === null) return null
  return copyPrefix(value, MAX_GROUP_LENGTH)
}
