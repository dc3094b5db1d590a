import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readGitCommit } from '../lib/version.js'
import { resolveOptions } from '../lib/options.js'
import { tmpDir } from './helpers.js'

const A = 'a'.repeat(40)
const B = 'b'.repeat(40)
const C = 'c'.repeat(40)

function gitDir (): string {
  const dir = join(tmpDir(), '.git')
  mkdirSync(join(dir, 'refs', 'heads'), { recursive: true })
  return dir
}

t.test('HEAD through a loose ref', async (t) => {
  const dir = gitDir()
  writeFileSync(join(dir, 'HEAD'), 'ref: refs/heads/main\n')
  writeFileSync(join(dir, 'refs', 'heads', 'main'), `${A}\n`)
  t.equal(readGitCommit(dir), A)
})

t.test('HEAD through packed-refs (loose ref absent), skipping comments and peeled tags', async (t) => {
  const dir = gitDir()
  writeFileSync(join(dir, 'HEAD'), 'ref: refs/heads/release\n')
  writeFileSync(join(dir, 'packed-refs'), `# pack-refs with: peeled fully-peeled sorted\n${C} refs/heads/other\n${B} refs/heads/release\n^${A}\n`)
  t.equal(readGitCommit(dir), B)
})

t.test('detached HEAD', async (t) => {
  const dir = gitDir()
  writeFileSync(join(dir, 'HEAD'), `${C}\n`)
  t.equal(readGitCommit(dir), C)
})

t.test('a worktree .git file pointing at its git dir, refs in the common dir', async (t) => {
  const main = gitDir()
  writeFileSync(join(main, 'refs', 'heads', 'feature'), `${B}\n`)
  const worktreeGitDir = join(main, 'worktrees', 'wt')
  mkdirSync(worktreeGitDir, { recursive: true })
  writeFileSync(join(worktreeGitDir, 'HEAD'), 'ref: refs/heads/feature\n')
  writeFileSync(join(worktreeGitDir, 'commondir'), '../..\n')
  const worktree = tmpDir()
  writeFileSync(join(worktree, '.git'), `gitdir: ${worktreeGitDir}\n`)
  t.equal(readGitCommit(join(worktree, '.git')), B)
})

t.test('unreadable repositories fail clearly', async (t) => {
  const dir = gitDir()
  writeFileSync(join(dir, 'HEAD'), 'ref: refs/heads/empty\n')
  t.throws(() => readGitCommit(dir), /ref refs\/heads\/empty not found/)
  writeFileSync(join(dir, 'HEAD'), 'garbage')
  t.throws(() => readGitCommit(dir), /unreadable HEAD/)
})

t.test('git wins over appVersion, as in Flask-MonitoringDashboard', async (t) => {
  const dir = gitDir()
  writeFileSync(join(dir, 'HEAD'), `${A}\n`)
  const resolved = resolveOptions({ git: dir, appVersion: '1.0.0' }, {})
  if (resolved instanceof Error) throw resolved
  t.equal(resolved.appVersion, A)
})

t.test("this repository's own HEAD is readable", async (t) => {
  t.match(readGitCommit(new URL('../.git', import.meta.url).pathname), /^[0-9a-f]{40}$/)
})
