import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { lockDataDir } from '../../lib/storage/lock.js'
import { backend, buildApp, tmpDir } from '../helpers.js'

const HOLDER = fileURLToPath(new URL('../fixtures/lock-holder.ts', import.meta.url))

/** Starts the lock holder, as PID 1 of a new PID namespace (with its own /proc) when `asPid1`. */
async function startHolder (dataDir: string, asPid1: boolean): Promise<{ child: ChildProcess, line: string }> {
  const node = [process.execPath, ...process.execArgv, HOLDER]
  // --kill-child: SIGKILL to unshare reaches the namespace's PID 1, as `docker kill` does
  const child = asPid1
    ? spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL', ...node], { env: { ...process.env, FMD_DATA_DIR: dataDir } })
    : spawn(node[0]!, node.slice(1), { env: { ...process.env, FMD_DATA_DIR: dataDir } })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += String(chunk) })
  const deadline = Date.now() + 120_000
  while (!output.includes('\n') && Date.now() < deadline && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 50))
  return { child, line: output.trim() }
}

// Issue #12.1: the lock file held a PID only, so a new process with the same PID (PID 1 in every
// container) took a crashed holder's lock for its own and refused to start, forever.
t.test('a lock left by a holder killed with SIGKILL is taken over by a new PID 1', async (t) => {
  const dataDir = join(tmpDir(), 'data')
  const first = await startHolder(dataDir, true)
  t.equal(first.line, 'locked 1', 'the first holder runs as PID 1 and takes the lock')
  first.child.kill('SIGKILL')
  await once(first.child, 'exit')
  const second = await startHolder(dataDir, true)
  t.teardown(() => { second.child.kill('SIGKILL') })
  t.equal(second.line, 'locked 1', 'a new PID 1 takes the dead holder\'s lock (once it is no longer touched)')

  // while that one lives, a process elsewhere (here: outside its PID namespace) is refused, with what to do
  const third = await startHolder(dataDir, false)
  t.match(third.line, /^refused FST_MONITORING_DATA_DIR_LOCKED .*is in use by process 1 of another PID namespace.*\(if no such process runs, delete .*\.lock\)/, third.line)
})

t.test('a lock left by a killed process of this PID namespace is taken over at once; a live one is refused', async (t) => {
  const dataDir = join(tmpDir(), 'data')
  const first = await startHolder(dataDir, false)
  t.match(first.line, /^locked \d+$/)
  const second = await startHolder(dataDir, false)
  t.match(second.line, new RegExp(`^refused FST_MONITORING_DATA_DIR_LOCKED .*is in use by process ${first.line.split(' ')[1]!} \\(if no such process runs, delete .*\\.lock\\)`), second.line)
  t.match(second.line, /PGlite belongs to one process: give each app its own dataDir, stop the app before the command line reads its directory, or use a PostgreSQL server/, 'and what to do, for an app or the command line')
  first.child.kill('SIGKILL')
  await once(first.child, 'exit')
  const third = await startHolder(dataDir, false)
  t.teardown(() => { third.child.kill('SIGKILL') })
  t.match(third.line, /^locked \d+$/, 'the dead holder\'s lock is taken over')
})

// Issue #12 C: a test suite that does not await app.close() starts the next app at once; PGlite's
// close takes about a second, and the second app was refused with FST_MONITORING_DATA_DIR_LOCKED.
t.test('pglite: an app started while another of this process is still closing waits for it', async (t) => {
  const store = await backend('pglite')
  t.teardown(store.cleanup)
  const first = await buildApp(store.options)
  await first.ready()
  await first.monitor.ready
  for (let i = 0; i < 25; i++) await first.inject(`/users/${i}`)
  const closing = first.close()
  const second = await buildApp(store.options)
  t.teardown(() => second.close())
  await second.ready()
  await closing
  await second.monitor.ready
  const { n } = await second.monitor.db.selectFrom('request').select(({ fn }) => fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  t.equal(Number(n), 25, 'the second app opened the directory after the first had written and closed it')
})

t.test('a lock held by an app of this process that never closes is refused after the wait, clearly', async (t) => {
  const dataDir = join(tmpDir(), 'data')
  const release = await lockDataDir(dataDir, 0)
  t.teardown(release)
  const started = Date.now()
  await t.rejects(lockDataDir(dataDir, 300), { code: 'FST_MONITORING_DATA_DIR_LOCKED', message: /another app in this process, still open after 300 ms \(close it, and await app\.close\(\)/ })
  t.ok(Date.now() - started >= 290, 'after waiting')
  const waiting = lockDataDir(dataDir, 10_000)
  setTimeout(release, 100)
  const again = await waiting
  t.pass('and taken as soon as it is released')
  again()
})
