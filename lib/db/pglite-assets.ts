import { readFileSync } from 'node:fs'

/**
 * What a PGlite needs to start without compiling anything: its two WebAssembly modules compiled and
 * its file-system bundle, and for a throw-away (`memory://`) one also a dump of a freshly migrated data
 * directory, so it skips initdb and the migrations. Built by the first PGlite database of a process (in
 * its writer thread) and handed to the next ones through the main thread; a `WebAssembly.Module` is
 * shared between threads, not copied, with the optimised code V8 compiled for it in the background
 * (about 3 s of CPU per new module here): a test suite that builds an app per test pays it once.
 */
export interface PgliteAssets {
  pgliteWasmModule: WebAssembly.Module
  initdbWasmModule: WebAssembly.Module
  fsBundle: ArrayBuffer
  /** `memory://` only: the data directory right after the migrations of `tablePrefix` (an uncompressed tarball). */
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
