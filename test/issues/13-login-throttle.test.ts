import t from 'tap'
import Fastify from 'fastify'
import monitor from '../../lib/index.js'
import { LoginThrottle, WorkSlots } from '../../lib/auth/login-throttle.js'
import { DIALECTS, backend } from '../helpers.js'

// Issue #13.5: the login limit was per IP only: with trustProxy a new X-Forwarded-For per request
// bypassed it (207 scrypt checks in 10 s), and 5 failures sent "from" a victim's IP locked the victim out.

t.test('the throttle ramps per key, counts concurrent attempts, forgets, and never locks for longer than the cap', async (t) => {
  const throttle = new LoginThrottle({ freeAttempts: 3, forgetAfterMs: 60_000, maxDelayMs: 8_000 })
  const keys = ['account:root', 'client:10.0.0.1']
  let now = 1_000_000
  t.same([0, 0, 0].map(() => throttle.attempt(keys, now)), [0, 0, 0], 'the free attempts go through at once, even at the same instant')
  t.equal(throttle.attempt(keys, now), 1_000, 'the next waits 1 s')
  t.equal(throttle.attempt(keys, now + 500), 500, 'a refused attempt does not move the wait')
  const waits: number[] = []
  for (let i = 0; i < 6; i++) {
    now += 60_000 - 1 // as late as possible without being forgotten
    t.equal(throttle.attempt(keys, now), 0)
    waits.push(throttle.attempt(keys, now))
  }
  t.same(waits, [2_000, 4_000, 8_000, 8_000, 8_000, 8_000], 'doubling up to the cap, never more')
  t.equal(throttle.attempt(['account:root', 'client:10.9.9.9'], now), 8_000, 'another client waits for the account\'s delay')
  t.equal(throttle.attempt(['account:other', 'client:10.0.0.1'], now), 8_000, 'another account waits for the client\'s delay')
  t.equal(throttle.attempt(['account:other', 'client:10.0.0.2'], now), 0, 'unrelated keys do not wait')
  throttle.succeed(keys)
  t.equal(throttle.attempt(keys, now), 0, 'a success starts afresh')
  t.equal(throttle.attempt(['account:x', 'client:y'], now + 10 * 60_000), 0, 'failures are forgotten')
})

t.test('a failure restarts the delay from the end of a slow check', async (t) => {
  const throttle = new LoginThrottle({ freeAttempts: 1, forgetAfterMs: 60_000, maxDelayMs: 8_000 })
  t.equal(throttle.attempt(['account:a'], 0), 0)
  throttle.failed(['account:a'], 5_000)
  t.equal(throttle.attempt(['account:a'], 5_500), 500, 'the 1 s delay counts from the failure, not from the attempt')
})

t.test('work slots run at most N at once, queue a few, refuse the rest', async (t) => {
  const slots = new WorkSlots(2, 3)
  let running = 0
  let most = 0
  const work = async (): Promise<string> => {
    running++
    most = Math.max(most, running)
    await new Promise((resolve) => setTimeout(resolve, 20))
    running--
    return 'done'
  }
  const results = await Promise.all(Array.from({ length: 8 }, async () => await slots.run(work)))
  t.equal(most, 2, 'two at a time')
  t.equal(results.filter((r) => r === 'done').length, 5, 'two running and three queued are served')
  t.equal(results.filter((r) => r === undefined).length, 3, 'the rest are refused at once')
  t.equal(await slots.run(work), 'done', 'and slots are free again afterwards')
})

const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const dialect = DIALECTS.includes('postgres') ? 'postgres' : DIALECTS[0]!

t.test(`${dialect}: behind a proxy (trustProxy), rotating X-Forwarded-For gets no more guesses; a victim is only delayed`, async (t) => {
  const store = await backend(dialect)
  t.teardown(store.cleanup)
  const app = Fastify({ trustProxy: true })
  await app.register(monitor, { ...store.options, metrics: false, dashboard: { users: [ADMIN], sessionSecret: 's'.repeat(40), loginRateLimit: { max: 3, maxDelayMs: 2_000 } } })
  t.teardown(() => app.close())
  await app.ready()
  await app.monitor.ready
  const login = async (ip: string, password: string, username = ADMIN.username): Promise<{ status: number, retryAfterS: number }> => {
    const res = await app.inject({ method: 'POST', url: '/dashboard/api/login', headers: { 'x-forwarded-for': ip }, payload: { username, password } })
    return { status: res.statusCode, retryAfterS: Number(res.headers['retry-after'] ?? 0) }
  }

  // 30 guesses on one account, each "from" a new address, sent at once
  const guesses = await Promise.all(Array.from({ length: 30 }, async (_, i) => await login(`198.51.100.${i + 1}`, `guess-${i}`)))
  const checked = guesses.filter((g) => g.status === 401).length
  t.equal(checked, 3, 'only the free attempts of the account are checked')
  t.ok(guesses.filter((g) => g.status === 429).every((g) => g.retryAfterS >= 1 && g.retryAfterS <= 2), 'the rest wait, and are told how long')

  // an attacker fails "from" the victim's address on the victim's account; the victim then logs in
  for (let i = 0; i < 10; i++) await login('203.0.113.50', `attack-${i}`)
  const first = await login('203.0.113.50', ADMIN.password)
  t.ok(first.status === 200 || (first.status === 429 && first.retryAfterS <= 2), `the victim is at most delayed by the cap (${first.status}, retry after ${first.retryAfterS} s)`)
  if (first.status === 429) await new Promise((resolve) => setTimeout(resolve, first.retryAfterS * 1000))
  const second = first.status === 200 ? first : await login('203.0.113.50', ADMIN.password)
  t.equal(second.status, 200, 'and then logs in with the right password')
})
