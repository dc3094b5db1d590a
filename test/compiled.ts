import { execFileSync } from 'node:child_process'
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Compiles lib/ into a temporary directory (beside links to node_modules and ui/) and returns the
 * path of its entry. A child process that builds many apps runs this JavaScript: under tap's
 * TypeScript loader each writer thread compiles its sources again (seconds per app on a busy machine).
 */
export function compilePlugin (): string {
  const dir = mkdtempSync(join(tmpdir(), 'fmd-compiled-'))
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', join(dir, 'dist'),
    '--declaration', 'false', '--declarationMap', 'false', '--sourceMap', 'false'], { stdio: 'inherit' })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  symlinkSync(join(root, 'ui'), join(dir, 'ui'))
  return join(dir, 'dist/index.js')
}
