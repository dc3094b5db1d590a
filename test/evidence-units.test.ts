// Unit tests of the evidence's building blocks: redaction, the hourly cap, the grouped-profile merge.
import t from 'tap'
import { REDACTED, isSecretName, passesLuhn, redactObject, redactText, redactUrl, redactValue, redactionRules } from '../lib/collection/redact.js'
import { OutlierCap, OutlierDetector } from '../lib/collection/outliers.js'
import { MAX_MERGED_TREE_NODES, mergeCallTrees } from '../lib/queries/profiles.js'
import type { CallTree } from '../lib/profiling/sampler.js'

const rules = redactionRules()
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'
const CARD = '4111 1111 1111 1111'
const API_KEY = 'sk_live_9fQx2LmZ7pR4tV8wK1nB6yH3cJ5dG0aE'

t.test('secret names: header, query and body field names by fragment, both directions configurable', async (t) => {
  for (const name of ['authorization', 'Cookie', 'set-cookie', 'proxy-authorization', 'x-api-key', 'x-auth-token', 'x-access-token', 'X-CSRF-Token',
    'token', 'access_token', 'refresh-token', 'password', 'new_password', 'passwd', 'pwd', 'client_secret', 'sessionId', 'cardNumber', 'card_cvv', 'ssn', 'apiKey', 'private_key']) {
    t.ok(isSecretName(name, rules), `${name} is secret`)
  }
  for (const name of ['x-request-id', 'content-type', 'user-agent', 'accept', 'page', 'q', 'ms', 'host']) t.notOk(isSecretName(name, rules), `${name} is kept`)
  const custom = redactionRules(['tenant', 'PIN_code'], ['X-Cache-Key'])
  t.ok(isSecretName('x-tenant', custom), 'a fragment added')
  t.ok(isSecretName('pinCode', custom), 'fragments ignore case, - and _')
  t.notOk(isSecretName('x-cache-key', custom), 'a name kept despite "key"')
  t.ok(isSecretName('x-api-key', custom), 'other names with the fragment still redacted')
})

t.test('credential-shaped values are cut whatever their name', async (t) => {
  t.notMatch(redactValue(`Bearer ${JWT}`), /SflKxw|eyJzdWIi/, 'a JWT')
  t.match(redactValue(`Bearer ${JWT}`), /^Bearer eyJh…\[redacted\]$/, 'cut to a short prefix')
  t.equal(redactValue(CARD), REDACTED, 'a card number that passes Luhn')
  t.equal(redactValue('4111-1111-1111-1111'), REDACTED, 'with dashes')
  t.ok(passesLuhn('4111111111111111'))
  t.notOk(passesLuhn('4111111111111112'))
  t.equal(redactValue('order 4111111111111112'), 'order 4111111111111112', 'digits failing Luhn stay (an order number)')
  t.notMatch(redactValue(`key=${API_KEY}`), /9fQx2LmZ7pR4/, 'a long random token')
  for (const kept of ['550e8400-e29b-41d4-a716-446655440000', 'a3f1c9e2b4d6f8a0c1e3b5d7f9a1c3e5b7d9f1a3', '/api/v1/users/profile/settings/notifications/email']) {
    t.equal(redactValue(kept), kept, `readable ids and paths stay: ${kept}`)
  }
})

t.test('objects, text and URLs', async (t) => {
  const body = { user: 'ann', password: 'hunter2-pass', nested: { card: { number: CARD }, list: [{ token: 'abc' }, { ok: 1 }] }, cc: 4111111111111111, note: `jwt ${JWT}` }
  const out = redactObject(body, rules) as typeof body
  t.same(out, { user: 'ann', password: REDACTED, nested: { card: REDACTED, list: [{ token: REDACTED }, { ok: 1 }] }, cc: REDACTED, note: 'jwt eyJh…[redacted]' })
  t.notMatch(JSON.stringify(out), /hunter2|4111|SflKxw/)
  const deep: Record<string, unknown> = {}
  let at = deep
  for (let i = 0; i < 100; i++) { at.next = {}; at = at.next as Record<string, unknown> }
  at.password = 'deep-secret'
  t.notMatch(JSON.stringify(redactObject(deep, rules)), /deep-secret/, 'past the depth bound the rest is dropped, not copied')

  t.equal(redactText('user=ann&password=hunter2&x=1', rules), `user=ann&password=${REDACTED}&x=1`, 'a form body')
  t.equal(redactText('{"user":"ann","password":"hunter2","card":"4111', rules), `{"user":"ann","password":"${REDACTED}","card":"${REDACTED}"`, 'JSON cut short, even a value cut short')
  t.equal(redactUrl('/login?user=ann&token=abc&access_token=def&password=ghi&ms=150', rules),
    `/login?user=ann&token=${REDACTED}&access_token=${REDACTED}&password=${REDACTED}&ms=150`)
  t.equal(redactUrl('/x?acc%65ss_token=abc', rules), `/x?acc%65ss_token=${REDACTED}`, 'an encoded name is decoded to be judged')
  t.equal(redactUrl(`/reset/${API_KEY}?a=1`, rules), '/reset/sk_l…[redacted]?a=1', 'a token in the path')
})

t.test('the hourly cap keeps the slowest outliers of the hour', async (t) => {
  const cap = new OutlierCap(3)
  const hour = 3_600_000 * 400_000
  t.same([10, 20, 30].map((d) => cap.admit(1, hour + d, d)), [true, true, true], 'room for three')
  t.equal(cap.admit(1, hour + 100, 5), false, 'a faster one than all kept is only counted')
  t.equal(cap.admit(1, hour + 101, 10), false, 'as fast as the fastest kept: counted')
  t.equal(cap.admit(1, hour + 102, 25), true, 'slower than the fastest kept: it replaces it')
  t.equal(cap.admit(1, hour + 103, 15), false, 'the fastest kept is now 20')
  t.equal(cap.admit(1, hour + 104, 21), true)
  t.equal(cap.admit(2, hour + 105, 1), true, 'per endpoint')
  t.equal(cap.admit(1, hour + 3_600_000, 1), true, 'a new hour starts empty')
  t.equal(new OutlierCap(0).admit(1, hour, 1000), false, 'a cap of 0 keeps none')
})

t.test('an outlier exceeds constant × the mean of its endpoint\'s window, once warmed up, and joins the window', async (t) => {
  const detector = new OutlierDetector(2.5, 4, 5)
  t.same([10, 10, 10, 10].map((d) => detector.observe(0, d)), [undefined, undefined, undefined, undefined], 'fewer than minSamples seen: none')
  t.equal(detector.observe(0, 25), undefined, 'not above 2.5 × 10')
  t.equal(detector.observe(0, 60), 2.5 * 13, 'above 2.5 × the mean of 10, 10, 10, 10, 25: the threshold it exceeded')
  t.equal(detector.observe(1, 1000), undefined, 'per endpoint: another one warms up on its own')
  // the window now holds 10, 10, 10, 25, 60 (the first 10 left it): mean 23
  t.equal(detector.observe(0, 57.5), undefined, 'the outlier raised the threshold to 2.5 × 23')
  t.equal(detector.observe(0, 100), 2.5 * (10 + 10 + 25 + 60 + 57.5) / 5, 'the oldest left the window')
})

/** A call tree of a `depth`-deep chain of distinct app functions, `width` such chains side by side. */
function syntheticTree (width: number, depth: number, salt = 0): CallTree {
  const frames: CallTree['frames'] = []
  const nodes: CallTree['nodes'] = []
  for (let w = 0; w < width; w++) {
    let parent = -1
    for (let d = 0; d < depth; d++) {
      frames.push({ functionName: `f${w}_${d}_${salt}`, url: 'app/x.js', line: d + 1 })
      nodes.push([frames.length - 1, parent, d === depth - 1 ? 1000 : 0, 1000])
      parent = nodes.length - 1
    }
  }
  return { intervalUs: 1000, samples: width, frames, nodes }
}

t.test('the grouped-profile merge: correct, linear, bounded', async (t) => {
  const pluginUrl = new URL('../lib/profiling/sampler.ts', import.meta.url).href
  const tree: CallTree = {
    intervalUs: 1000,
    samples: 3,
    concurrent: 1,
    frames: [{ functionName: 'handler', url: 'app/routes.js', line: 3 }, { functionName: 'hook', url: pluginUrl, line: 9 }, { functionName: 'work', url: 'app/work.js', line: 1 }],
    nodes: [[0, -1, 1000, 3000], [1, 0, 0, 2000], [2, 1, 2000, 2000]]
  }
  const grouped = mergeCallTrees([tree, { ...tree, concurrent: 0 }])
  t.same(grouped.nodes.map((n) => [n.functionName, n.parent, n.hits, n.totalMs, n.selfMs]), [['handler', -1, 2, 6, 2], ['work', 0, 2, 4, 4]],
    'the plugin\'s frame is left out, its callee moves up to its caller')
  t.equal(grouped.requests, 2)
  t.equal(grouped.sharedRequests, 1, 'trees that overlapped another request of the endpoint are counted')

  // time grows with the nodes merged, not their square: 8× the nodes (and 8× the distinct sibling paths,
  // which a copy of the sibling list per new path made quadratic), well under 8² the time
  const timeOf = (trees: CallTree[]): number => {
    let best = Infinity
    for (let round = 0; round < 3; round++) {
      const started = performance.now()
      mergeCallTrees(trees)
      best = Math.min(best, performance.now() - started)
    }
    return best
  }
  const small = Array.from({ length: 25 }, (_, i) => syntheticTree(10, 20, i))
  const large = Array.from({ length: 200 }, (_, i) => syntheticTree(10, 20, i))
  const ratio = timeOf(large) / timeOf(small)
  t.ok(ratio < 24, `8× the trees took ${ratio.toFixed(1)}× the time (quadratic would be ~64×)`)
  // a deep stack (a recursive app function) does not overflow the merge
  t.equal(mergeCallTrees([syntheticTree(1, 20_000)]).nodes.length, 2_000, 'a 20,000-deep tree is merged; the output is capped')

  const many = Array.from({ length: 1_000 }, () => syntheticTree(10, 50))
  const bounded = mergeCallTrees(many)
  t.equal(bounded.truncated, true)
  t.equal(bounded.requests, Math.floor(MAX_MERGED_TREE_NODES / 500), 'the merge stops at its node budget')
})
