import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import { UiMissingError } from '../errors.js'

/** ui/dist of this package: two levels up from lib/routes (source) and dist/lib/routes… (built). */
function findUiRoot (): string {
  for (const up of ['../../ui/dist/', '../../../ui/dist/']) {
    const dir = fileURLToPath(new URL(up, import.meta.url))
    if (existsSync(`${dir}index.html`)) return dir
  }
  throw new UiMissingError(fileURLToPath(new URL('../../ui/dist/index.html', import.meta.url)))
}

// Only the page's own scripts run, whatever the stored data holds (route names, group-by values).
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY'
}

/** The built Svelte app, at the dashboard prefix (`/dashboard/`; `/dashboard` redirects there). */
export async function uiRoutes (app: FastifyInstance, prefix: string): Promise<void> {
  const root = findUiRoot()
  const config = { monitor: false }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // a list: with preCompressed, @fastify/static looks the index up only in a list (a string answers 404)
    index: ['index.html'],
    wildcard: true,
    decorateReply: false,
    // the build writes .br and .gz beside each asset (ui/vite.config.ts): sent to clients that accept them
    preCompressed: true,
    // the static plugin's own `public, max-age=0` would replace the header set below
    cacheControl: false,
    // index.html must be revalidated so a new build is picked up; hashed assets can be cached
    setHeaders: (res, path) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value)
      res.setHeader('cache-control', /index\.html(\.br|\.gz)?$/.test(path) ? 'no-cache' : 'public, max-age=31536000, immutable')
    },
    routeConfig: config
  } as Parameters<typeof fastifyStatic>[1])
  // relative asset paths need the trailing slash
  app.get('/', { prefixTrailingSlash: 'no-slash', config }, async (_request, reply) => await reply.redirect(`${prefix}/`))
}
