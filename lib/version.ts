import { readFileSync, statSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/
const MAX_SYMREF_DEPTH = 5

function readTrimmed (path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return undefined
  }
}

/**
 * The directory holding HEAD for `gitPath`. A worktree or submodule has a `.git` *file*
 * (`gitdir: <path>`) pointing at its private git directory.
 */
function resolveGitDir (gitPath: string): string {
  const absolute = resolve(gitPath)
  if (statSync(absolute).isDirectory()) return absolute
  const content = readFileSync(absolute, 'utf8').trim()
  const match = /^gitdir:\s*(.+)$/m.exec(content)
  if (match === null) throw new Error(`${absolute} is neither a git directory nor a "gitdir:" file`)
  const target = match[1]!.trim()
  return isAbsolute(target) ? target : resolve(dirname(absolute), target)
}

function lookupRef (gitDir: string, commonDir: string, ref: string): string | undefined {
  const loose = readTrimmed(join(gitDir, ref)) ?? readTrimmed(join(commonDir, ref))
  if (loose !== undefined) return loose
  const packed = readTrimmed(join(commonDir, 'packed-refs'))
  if (packed === undefined) return undefined
  for (const line of packed.split('\n')) {
    // "<sha> <ref>"; comment lines start with '#', peeled tags with '^'
    const space = line.indexOf(' ')
    if (space > 0 && line.slice(space + 1) === ref) return line.slice(0, space)
  }
  return undefined
}

/**
 * Reads the commit id HEAD points at, without spawning git: follows symbolic refs through loose
 * refs and packed-refs, handles a detached HEAD and worktree/submodule `.git` files.
 *
 * ### Examples
 * ```ts
 * readGitCommit('./.git') // '3f9c…'
 * ```
 */
export function readGitCommit (gitPath: string): string {
  const gitDir = resolveGitDir(gitPath)
  const common = readTrimmed(join(gitDir, 'commondir'))
  const commonDir = common === undefined ? gitDir : resolve(gitDir, common)
  let value = readTrimmed(join(gitDir, 'HEAD'))
  if (value === undefined) throw new Error(`no HEAD in ${gitDir}`)
  for (let depth = 0; depth < MAX_SYMREF_DEPTH; depth++) {
    if (SHA.test(value)) return value
    const match = /^ref:\s*(.+)$/.exec(value)
    if (match === null) throw new Error(`unreadable HEAD value "${value.slice(0, 80)}"`)
    const ref = match[1]!.trim()
    const next = lookupRef(gitDir, commonDir, ref)
    if (next === undefined) throw new Error(`ref ${ref} not found (a branch with no commits?)`)
    value = next
  }
  throw new Error('symbolic refs nested too deeply')
}
