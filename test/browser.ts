import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'

/**
 * Debian's Chromium (never a downloaded browser), with flags that work as root without network.
 * Playwright gives every launch a fresh temporary profile of its own.
 */
export async function launchChromium (): Promise<Browser> {
  return await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
}

/** Logs in through the dashboard's login form and waits for the header to show the user. */
export async function logIn (page: Page, base: string, user: { username: string, password: string }): Promise<void> {
  await page.goto(`${base}/dashboard/`)
  await page.fill('input[name=username]', user.username)
  await page.fill('input[name=password]', user.password)
  await page.click('button[type=submit]')
  await page.waitForSelector('[data-testid=who]')
}

/** True per canvas (of `selector`, all by default) when it has any non-transparent pixel: chart.js drew something. */
export async function canvasesDrawn (page: Page, selector = 'canvas'): Promise<boolean[]> {
  return await page.$$eval(selector, (canvases: HTMLCanvasElement[]) => canvases.map((canvas) => {
    const { width, height } = canvas
    if (width === 0 || height === 0) return false
    const data = canvas.getContext('2d')!.getImageData(0, 0, width, height).data
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true
    return false
  }))
}

/**
 * Serves the app on a loopback port, opens Chromium logged in as `user` and goes to the dashboard
 * view `hash` (e.g. `#/overview`). The browser closes with `t`'s teardown.
 */
export async function openDashboard (t: { teardown: (fn: () => Promise<void>) => void }, app: FastifyInstance, user: { username: string, password: string }, hash: string): Promise<Page> {
  if (app.server.address() === null) await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launchChromium()
  t.teardown(async () => { await browser.close() })
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await logIn(page, base, user)
  await page.goto(`${base}/dashboard/${hash}`)
  return page
}
