import { readFileSync } from 'node:fs'

/**
 * What a throw-away (`memory://`) PGlite needs to start without compiling or initialising anything:
 * its two WebAssembly modules compiled, its file-system bundle, and a dump of a freshly migrated data
 * directory. Built by the first `memory://` database of a process (in its writer thread) and handed to
 * the next ones through the main thread; a `WebAssembly.Module` is shared between threads, not copied.
 */
export interface PgliteAssets {
  pgliteWasmModule: WebAssembly.Module
  initdbWasmModule: WebAssembly.Module
  fsBundle: ArrayBuffer
  /** The data directory right after the migrations of `tablePrefix` (an uncompressed tarball). */
  snapshot: ArrayBuffer | undefined
  tablePrefix: string
}

/** Compiles PGlite's modules and reads its bundle from the installed package (what PGlite.create does each time). */
export async function loadPgliteAssets (tablePrefix: string): Promise<PgliteAssets> {
  const dist = new URL('.', import.meta.resolve('@electric-sql/pglite'))
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all(['pglite.wasm', 'initdb.wasm']
    .map(async (name) => await WebAssembly.compile(readFileSync(new URL(name, dist)))))
  const bundle = readFileSync(new URL('pglite.data', dist))
  return {
    pgliteWasmModule: pgliteWasmModule!,
    initdbWasmModule: initdbWasmModule!,
    fsBundle: bundle.buffer.slice(bundle.byteOffset, bundle.byteOffset + bundle.byteLength),
    snapshot: undefined,
    tablePrefix
  }
}
