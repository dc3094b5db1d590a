import { chromium, type Browser } from 'playwright-core'

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
