import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import monitor, { type MonitorOptions } from '../../lib/index.js'
import { CookieJar, dashboardLogin } from '../cookie-jar.js'
import { DIALECTS, backend } from '../helpers.js'

// Issue #13.1: sessions end for real. The session was a stateless cookie: logout only cleared it in
// that browser (a copied cookie kept working), and a password change neither asked for the current
// password nor ended the user's other sessions.
const ADMIN = { username: 'root', password: 'root-password', role: 'admin' as const }
const GUEST = { username: 'viewer', password: 'viewer-password', role: 'guest' as const }

async function dashboardApp (options: MonitorOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(monitor, { ...options, flushIntervalMs: 20, metrics: false, dashboard: { users: [ADMIN, GUEST], sessionSecret: 's'.repeat(40) } })
  await app.ready()
  await app.monitor.ready
  return app
}

const status = async (app: FastifyInstance, jar: CookieJar, url = '/dashboard/api/session'): Promise<number> => (await jar.inject(app, { url })).statusCode

for (const dialect of DIALECTS) {
  t.test(`${dialect}: a restart keeps sessions; logout, password and role changes and deletion end them`, async (t) => {
    const store = await backend(dialect)
    t.teardown(store.cleanup)
    let app = await dashboardApp(store.options)
    t.teardown(() => app.close())

    // configured users can log in as soon as `ready` resolves (no 401 while they are provisioned)
    const admin = new CookieJar()
    const adminCsrf = await dashboardLogin(app, admin, ADMIN.username, ADMIN.password)

    // a restart with the same configuration logs nobody out (provisioning leaves users as configured alone)
    await app.close()
    app = await dashboardApp(store.options)
    t.equal(await status(app, admin), 200, 'a session survives a restart')

    // logout ends every session of the user, a copied cookie included
    const browser = new CookieJar()
    const csrf = await dashboardLogin(app, browser, GUEST.username, GUEST.password)
    const copied = browser.copy()
    const copiedAgain = browser.copy()
    t.equal(await status(app, copied), 200, 'a copied cookie works while the session lives')
    t.equal((await browser.inject(app, { method: 'POST', url: '/dashboard/api/logout', headers: { 'x-csrf-token': csrf } })).statusCode, 200)
    t.equal(await status(app, copied), 401, 'after logout the copied cookie is refused')
    const stolenChange = await copiedAgain.inject(app, { method: 'PUT', url: '/dashboard/api/users/viewer/password', headers: { 'x-csrf-token': csrf }, payload: { password: 'taken-over-1', currentPassword: 'x' } })
    t.equal(stolenChange.statusCode, 401, 'and cannot change the password afterwards')

    // changing one's own password needs the current one and ends the other sessions only
    const laptop = new CookieJar()
    const phone = new CookieJar()
    const laptopCsrf = await dashboardLogin(app, laptop, GUEST.username, GUEST.password)
    await dashboardLogin(app, phone, GUEST.username, GUEST.password)
    const laptopBefore = laptop.copy()
    const change = async (payload: Record<string, string>): Promise<number> => (await laptop.inject(app, { method: 'PUT', url: '/dashboard/api/users/viewer/password', headers: { 'x-csrf-token': laptopCsrf }, payload })).statusCode
    t.equal(await change({ password: 'new-viewer-password' }), 400, 'without the current password')
    t.equal(await change({ password: 'new-viewer-password', currentPassword: 'wrong-password' }), 403, 'with a wrong current password')
    t.equal(await status(app, phone), 200, 'nothing changed yet')
    t.equal(await change({ password: 'new-viewer-password', currentPassword: GUEST.password }), 200)
    t.equal(await status(app, laptop), 200, 'the session that changed it carries on')
    t.equal(await status(app, phone), 401, 'the user\'s other sessions get 401')
    t.equal(await status(app, laptopBefore), 401, 'so does a copy of the changing session taken before the change')
    await t.rejects(dashboardLogin(app, new CookieJar(), GUEST.username, GUEST.password), /401/, 'the old password is gone')

    // an admin setting someone's password, changing a role or deleting a user ends that user's sessions
    const viewer = new CookieJar()
    await dashboardLogin(app, viewer, GUEST.username, 'new-viewer-password')
    const adminPut = async (url: string, payload: Record<string, string>): Promise<number> =>
      (await admin.inject(app, { method: 'PUT', url: `/dashboard/api${url}`, headers: { 'x-csrf-token': adminCsrf }, payload })).statusCode
    t.equal(await adminPut('/users/viewer/password', { password: 'admin-set-password' }), 200, 'an admin needs no current password for another user')
    t.equal(await status(app, viewer), 401, 'the user\'s sessions end when an admin sets the password')
    await dashboardLogin(app, viewer, GUEST.username, 'admin-set-password')
    t.equal(await adminPut('/users/viewer/role', { role: 'admin' }), 200)
    t.equal(await status(app, viewer), 401, 'a role change ends the user\'s sessions')
    await dashboardLogin(app, viewer, GUEST.username, 'admin-set-password')
    t.equal((await viewer.inject(app, { url: '/dashboard/api/users' })).statusCode, 200, 'who logs in again with the new role')
    t.equal(await adminPut('/users/root/role', { role: 'guest' }), 200, 'an admin may step down while another admin remains')
    t.equal(await status(app, admin), 401, 'and their own session ends')
    const viewerCsrf = (await viewer.inject(app, { url: '/dashboard/api/session' })).json().csrfToken
    t.equal((await viewer.inject(app, { method: 'PUT', url: '/dashboard/api/users/viewer/role', headers: { 'x-csrf-token': viewerCsrf }, payload: { role: 'guest' } })).statusCode, 409, 'the last admin cannot lose the role')
    await viewer.inject(app, { method: 'POST', url: '/dashboard/api/users', headers: { 'x-csrf-token': viewerCsrf }, payload: { username: 'temp', password: 'temp-password', role: 'guest' } })
    const temp = new CookieJar()
    await dashboardLogin(app, temp, 'temp', 'temp-password')
    t.equal((await viewer.inject(app, { method: 'DELETE', url: '/dashboard/api/users/temp', headers: { 'x-csrf-token': viewerCsrf } })).statusCode, 200)
    t.equal(await status(app, temp), 401, 'a deleted user\'s session ends')
  })
}
