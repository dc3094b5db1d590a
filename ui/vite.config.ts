import { defineConfig } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'

// Served under a prefix chosen at run time (/dashboard by default): relative asset paths.
export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  base: './',
  plugins: [svelte()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 600, sourcemap: false },
  server: { proxy: { '/dashboard/api': 'http://127.0.0.1:3000' } }
})
