// #19's projects in Chromium: Settings lists the projects for everyone; an admin makes a project and its
// tokens (shown once, then gone from the page), rotates and revokes one, and the ingest route agrees;
// a bad name is refused with the reason shown; a hostile name stays text; a guest gets no admin controls.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import monitor from '../lib/index.js'
import { backend, ingestBatch, until } from './helpers.js'
import { launchChromium, logIn } from './browser.js'

t.setTimeout(300_000)
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const GUEST = { username: 'viewer', password: 'viewer-password', role: 'guest' as const }
const HOSTILE = '<img src=x onerror="window.__xss=1">'
const TOKEN = /^fmdp_[A-Za-z0-9_-]{43}$/
const SHOWN_ONCE = 'Shown once: store it now. Services send with it as remote.token.'

/** The dates the UI shows (format.ts `dateTime`), here in UTC. */
const utc = (iso: string): string => new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso))

/** Whether `token` is anywhere in the page: its markup, or the value of any field. */
async function inPage (page: Page, token: string): Promise<boolean> {
  return await page.evaluate((token) => document.documentElement.outerHTML.includes(token) ||
    [...document.querySelectorAll('input, textarea')].some((field) => (field as HTMLInputElement).value.includes(token)), token)
}

const projectRow = (name: string): string => `tr[data-testid=project-row]:has(td[data-testid=project-name]:text-is(${JSON.stringify(name)}))`
const tokenRow = (token: string): string => `tr[data-testid=token-row]:has([data-testid=token-hint]:text-is("…${token.slice(-4)}"))`

t.test('pglite: the Projects section of Settings', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const app: FastifyInstance = Fastify({ logger: false })
  await app.register(monitor, { ...store.options, metrics: false, flushIntervalMs: 20, dashboard: { users: [ADMIN, GUEST], sessionSecret: 's'.repeat(40) } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.monitor.ready
  const db = app.monitor.db
  await until(async () => (await db.selectFrom('dashboard_user').select('id').execute()).length >= 2)
  // a name the API would refuse, as an older or hand-edited database could hold it: shown as text
  await db.insertInto('project').values({ name: HOSTILE }).execute()
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const ingest = async (token: string, id: string): Promise<number> => (await app.inject({
    method: 'POST', url: '/dashboard/api/ingest', headers: { authorization: `Bearer ${token}` }, payload: ingestBatch(id, '/invoices')
  })).statusCode
  const projectNames = async (): Promise<string[]> => (await db.selectFrom('project').select('name').orderBy('name').execute()).map((p) => p.name)

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } })
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
  const page = await context.newPage()
  const dialogs: string[] = []
  page.on('dialog', (dialog) => { dialogs.push(dialog.message()); void dialog.accept() })
  const consoleText: string[] = []
  page.on('console', (message) => consoleText.push(message.text()))
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  let projectPosts = 0
  page.on('request', (request) => { if (request.method() === 'POST' && new URL(request.url()).pathname === '/dashboard/api/projects') projectPosts++ })

  await logIn(page, base, ADMIN)
  await page.goto(`${base}/dashboard/#/settings?tz=UTC`)
  await page.waitForSelector(`${projectRow('default')}`)
  t.equal(await page.locator('[data-testid=issued-token]').count(), 0, 'no token box before a token is made')

  // a new project: its token shown once, in a read-only monospace field
  await page.fill('[data-testid=add-project] input', 'billing')
  await page.click('[data-testid=add-project] button:has-text("New project")')
  const field = page.locator('[data-testid=issued-token-value]')
  await field.waitFor()
  const first = await field.inputValue()
  t.match(first, TOKEN, 'the token is the API\'s: fmdp_ and 43 base64url characters')
  t.same(await projectNames(), [HOSTILE, 'billing', 'default'].sort(), 'the project was made')
  t.match(await page.textContent('[role=status].notice'), /^Created project billing\.$/)
  t.equal((await page.textContent('[data-testid=issued-token]'))!.replace(/\s+/g, ' ').includes(SHOWN_ONCE), true, 'the box says to store it now, as remote.token')
  t.equal(await field.isEditable(), false, 'read-only')
  t.match(await field.evaluate((el) => getComputedStyle(el).fontFamily), /monospace/, 'in a monospace font')
  t.equal(await field.evaluate((el) => el === document.activeElement), true, 'focused, so it is in view and selected')
  t.equal(await page.inputValue('[data-testid=add-project] input'), '', 'the name field is emptied')
  await page.click('[data-testid=issued-token] button:has-text("Copy")')
  await page.waitForSelector('[data-testid=issued-token] [role=status]:has-text("Copied.")')
  t.equal(await page.evaluate(async () => await navigator.clipboard.readText()), first, 'Copy puts the token on the clipboard')
  t.equal(await page.textContent(`${tokenRow(first)} [data-testid=token-state]`), 'active', 'the new token is listed by its hint')
  t.equal(await page.textContent(`${tokenRow(first)} [data-testid=token-last-used]`), 'never')

  // Done: the token is gone from the page and was never put in the URL, storage or the console
  t.equal(await inPage(page, first), true, 'shown until Done')
  await page.click('[data-testid=issued-token] button:has-text("Done")')
  await page.waitForSelector('[data-testid=issued-token]', { state: 'detached' })
  t.equal(await inPage(page, first), false, 'not in the page after Done')
  t.equal(page.url().includes(first), false, 'never in the URL')
  t.equal(await page.evaluate((token) => JSON.stringify({ ...localStorage }).includes(token) || JSON.stringify({ ...sessionStorage }).includes(token), first), false, 'never in storage')
  t.equal(consoleText.some((text) => text.includes(first)), false, 'never in the console')

  // the token works
  t.equal(await ingest(first, 'ui-1'), 200, 'the ingest route takes the token made in the UI')

  // a name taken: the API's 409 on the page's status line, and no token box
  await page.fill('[data-testid=add-project] input', 'billing')
  await page.click('[data-testid=add-project] button:has-text("New project")')
  await page.waitForSelector('[role=status].notice:has-text("Failed")')
  t.equal(await page.textContent('[role=status].notice'), 'Failed: a project with that name exists')
  t.equal(await page.locator('[data-testid=issued-token]').count(), 0, 'no token for a refused project')

  // rotation: a new token, then the first revoked (after a confirm)
  await page.click(`${projectRow('billing')} button:has-text("New token")`)
  await page.waitForSelector('[role=status].notice:has-text("New token for billing")')
  const second = await field.inputValue()
  t.match(second, TOKEN)
  t.not(second, first, 'a new token, not the first again')
  t.match(await page.textContent('[data-testid=issued-token]'), /New token for billing/)
  await page.click('[data-testid=issued-token] button:has-text("Done")')
  t.equal(await inPage(page, second), false, 'the second is gone after Done too')
  const api = await (await page.request.get(`${base}/dashboard/api/projects`)).json() as { projects: Array<{ id: number, name: string, createdAt: string, endpoints: number, lastRequested: string | null }>, tokens: Array<{ hint: string, createdAt: string, lastUsedAt: string | null }> }
  const billing = api.projects.find((p) => p.name === 'billing')!
  const cells = await page.locator(`${projectRow('billing')} td`).allTextContents()
  t.same(cells.slice(0, 4), ['billing', '1', utc(billing.lastRequested!), utc(billing.createdAt)], 'name, endpoints, last request and created, dates as elsewhere in the UI')
  const firstToken = api.tokens.find((token) => token.hint === first.slice(-4))!
  t.equal(await page.textContent(`${tokenRow(first)} [data-testid=token-last-used]`), utc(firstToken.lastUsedAt!), 'the first token was last used by the batch')
  t.equal(await page.textContent(`${tokenRow(second)} [data-testid=token-last-used]`), 'never')
  await page.click(`${tokenRow(first)} button:has-text("Revoke")`)
  await page.waitForSelector(`${tokenRow(first)} [data-testid=token-state]:has-text("revoked at")`)
  t.same(dialogs, [`Revoke token …${first.slice(-4)} of billing? Services sending with it are refused at once.`], 'asked first')
  t.equal(await page.locator(`${tokenRow(first)} button:has-text("Revoke")`).count(), 0, 'a revoked token has no Revoke button')
  t.equal(await page.locator(`${tokenRow(second)} button:has-text("Revoke")`).count(), 1, 'the active one keeps its')
  t.equal(await page.textContent(`${tokenRow(second)} [data-testid=token-state]`), 'active')
  t.equal(await ingest(first, 'ui-2'), 401, 'the revoked token is refused')
  t.equal(await ingest(second, 'ui-3'), 200, 'the new one works')

  // "<script>": the form refuses it, and so does the API when the browser does not check
  const posts = projectPosts
  await page.fill('[data-testid=add-project] input', '<script>')
  await page.click('[data-testid=add-project] button:has-text("New project")')
  t.equal(await page.$eval('[data-testid=add-project] input', (el: HTMLInputElement) => el.validity.patternMismatch), true, 'the field says the name does not match')
  await page.waitForTimeout(200)
  t.equal(projectPosts, posts, 'nothing sent')
  await page.$eval('[data-testid=add-project] input', (el) => el.removeAttribute('pattern'))
  await page.click('[data-testid=add-project] button:has-text("New project")')
  await page.waitForFunction(() => document.querySelector('[role=status].notice')?.textContent?.includes('pattern') === true)
  t.match(await page.textContent('[role=status].notice'), /^Failed: body\/name must match pattern/, 'the API\'s 400 shown')
  t.equal(projectPosts, posts + 1)
  t.same(await projectNames(), [HOSTILE, 'billing', 'default'].sort(), 'no project made')
  t.equal(await page.locator('[data-testid=issued-token]').count(), 0)

  // a hostile name is text, in the table and in the token box
  t.equal(await page.textContent(`${projectRow(HOSTILE)} [data-testid=project-name]`), HOSTILE, 'the name shown as text')
  await page.click(`${projectRow(HOSTILE)} button:has-text("New token")`)
  await page.waitForSelector('[data-testid=issued-token]')
  t.equal((await page.textContent('[data-testid=issued-token] strong'))!, `New token for ${HOSTILE}`)
  t.equal(await page.locator('main img').count(), 0, 'no element made from the name')
  await page.click('[data-testid=issued-token] button:has-text("Done")')
  t.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined, 'no injected script ran')
  t.equal(dialogs.length, 1, 'no dialog but the confirm')
  t.same(pageErrors, [], 'no script errors')
  await context.close()

  // a guest: the projects, no token, no admin control
  const guestContext = await browser.newContext()
  const guestPage = await guestContext.newPage()
  await logIn(guestPage, base, GUEST)
  await guestPage.goto(`${base}/dashboard/#/settings?tz=UTC`)
  await guestPage.waitForSelector(projectRow('billing'))
  t.same(await guestPage.locator('[data-testid=project-name]').allTextContents(), [HOSTILE, 'billing', 'default'], 'a guest sees every project')
  const guestApi = await (await guestPage.request.get(`${base}/dashboard/api/projects`)).json() as { projects: Array<{ name: string, lastRequested: string | null }>, tokens: unknown[] }
  t.same(guestApi.tokens, [], 'the API gives a guest no token')
  const lastRequested = guestApi.projects.find((p) => p.name === 'billing')!.lastRequested!
  t.same(await guestPage.locator(`${projectRow('billing')} td`).allTextContents(), ['billing', '1', utc(lastRequested), utc(billing.createdAt)], 'the same columns, without the admin one')
  t.equal(await guestPage.locator('[data-testid=add-project]').count(), 0, 'no New project form')
  t.equal(await guestPage.locator('button:has-text("Revoke")').count(), 0, 'no Revoke button')
  t.equal(await guestPage.locator('button:has-text("New token")').count(), 0, 'no New token button')
  t.equal(await guestPage.locator('[data-testid=token-row]').count(), 0, 'no token listed')
  await guestContext.close()
})
