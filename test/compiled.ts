import { execFileSync } from 'node:child_process'
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildIsCurrent } from '../lib/storage/client.js'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * The plugin as compiled JavaScript: dist/ when it is newer than every source (`npm test` builds
 * first), else lib/ compiled into a temporary directory (beside links to node_modules and ui/).
 * Returns the path of its entry. A child process that builds many apps runs this JavaScript: under
 * tap's TypeScript loader each writer thread compiles its sources again (seconds per app on a busy machine).
 */
export function compilePlugin (): string {
  if (buildIsCurrent(new URL('../dist/index.js', import.meta.url), new URL('../lib/', import.meta.url))) return join(root, 'dist/index.js')
  const dir = mkdtempSync(join(tmpdir(), 'fmd-compiled-'))
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', join(dir, 'dist'),
    '--declaration', 'false', '--declarationMap', 'false', '--sourceMap', 'false'], { stdio: 'inherit' })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  symlinkSync(join(root, 'ui'), join(dir, 'ui'))
  return join(dir, 'dist/index.js')
}
