import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { defineConfig, type Plugin } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'

const outDir = new URL('./dist/', import.meta.url).pathname

/**
 * Writes `<file>.br` and `<file>.gz` beside the page and each built asset, once at build time at the highest levels, so the
 * plugin serves them without compressing per request (@fastify/static's preCompressed).
 */
function precompress (): Plugin {
  return {
    name: 'fmd-precompress',
    apply: 'build',
    closeBundle () {
      const files = ['index.html', ...readdirSync(join(outDir, 'assets')).filter((f) => /\.(js|css|svg)$/.test(f)).map((f) => `assets/${f}`)]
      for (const file of files) {
        const body = readFileSync(join(outDir, file))
        writeFileSync(join(outDir, `${file}.br`), brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
        writeFileSync(join(outDir, `${file}.gz`), gzipSync(body, { level: 9 }))
      }
    }
  }
}

// Served under a prefix chosen at run time (/dashboard by default): relative asset paths.
export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  base: './',
  plugins: [svelte(), precompress()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 600, sourcemap: false },
  server: { proxy: { '/dashboard/api': 'http://127.0.0.1:3000' } }
})
