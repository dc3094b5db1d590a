import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { MAX_GROUP_LENGTH, resolveGroupBy } from '../lib/group-by.js'

const request = { headers: { 'x-user': 'ada' }, user: { id: 7 } } as unknown as FastifyRequest & { user: { id: number } }

t.test('values and functions, called until a value comes out', async (t) => {
  t.equal(resolveGroupBy('static', request), 'static')
  t.equal(resolveGroupBy(42, request), '42')
  t.equal(resolveGroupBy(undefined, request), null)
  t.equal(resolveGroupBy(null, request), null)
  t.equal(resolveGroupBy((r) => (r as typeof request).user.id, request), '7')
  t.equal(resolveGroupBy(() => () => 'deep', request), 'deep')
  t.equal(resolveGroupBy(() => undefined, request), null)
})

t.test('arrays become a tuple string, each item resolved', async (t) => {
  t.equal(resolveGroupBy([(r: FastifyRequest) => r.headers['x-user'] as string, 'eu', 3], request), '(ada, eu, 3)')
  t.equal(resolveGroupBy([() => undefined, 1], request), '(None, 1)')
})

t.test('objects become JSON, long values are cut, promises and runaway nesting are refused', async (t) => {
  t.equal(resolveGroupBy(() => ({ team: 'a' }) as never, request), '{"team":"a"}')
  t.equal(resolveGroupBy('x'.repeat(1000), request)!.length, MAX_GROUP_LENGTH)
  t.throws(() => resolveGroupBy(() => Promise.resolve('x') as never, request), /synchronously/)
  const forever = (): unknown => forever
  t.throws(() => resolveGroupBy(forever as never, request), /nested more than 8 deep/)
  const circular: Record<string, unknown> = {}
  circular.self = circular
  t.throws(() => resolveGroupBy(() => circular as never, request))
})
