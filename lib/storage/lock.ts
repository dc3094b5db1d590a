import { randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DataDirLockedError } from '../errors.js'

/** What a lock file says about its holder. */
interface LockHolder {
  pid: number
  /** The holder's start time (clock ticks after boot, /proc/<pid>/stat field 22); undefined off Linux. */
  startTime: string | undefined
  /** Random per lock taken: tells this process's locks from a dead process's with the same PID. */
  token: string
}

const POLL_MS = 50

/** Locks this process holds, by path: another app of this process waits for their release. */
const heldHere = new Map<string, { token: string, released: Promise<void> }>()

/** A process's start time from /proc (field 22 of stat; the command name may hold spaces and parentheses). */
function startTimeOf (pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/**
 * Whether the lock's holder still runs: a process with its PID exists and, where /proc tells, started
 * when the holder did. A PID alone is not enough: in a container every start is PID 1, so a lock left by
 * a killed container would otherwise look held by the new one forever.
 */
function holderRuns (holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const startTime = startTimeOf(holder.pid)
  return holder.startTime === undefined || startTime === undefined || startTime === holder.startTime
}

function readHolder (path: string): LockHolder | undefined {
  try {
    const text = readFileSync(path, 'utf8')
    // the format of 0.1.0: a PID only
    if (/^\d+$/.test(text.trim())) return { pid: Number(text), startTime: undefined, token: '' }
    const parsed = JSON.parse(text) as Partial<LockHolder>
    return typeof parsed.pid === 'number' && typeof parsed.token === 'string' ? parsed as LockHolder : undefined
  } catch {
    // unreadable, half-written or the old plain-PID format: nobody we can tell is alive
    return undefined
  }
}

/**
 * Takes `<dataDir>.lock` for this process. PGlite takes no lock of its own, and two processes (or two
 * apps in one process) opening one data directory corrupt it. The file names the holder by PID,
 * start time and a random token. A lock whose holder no longer runs (killed with SIGKILL, a container
 * restarted with the same PID) is taken over. A lock held by another app of this process, say one a
 * test suite closes without awaiting, is waited for up to `waitMs`. Resolves with the release function.
 */
export async function lockDataDir (dataDir: string, waitMs: number): Promise<() => void> {
  const path = `${resolve(dataDir)}.lock`
  mkdirSync(dirname(path), { recursive: true })
  const deadline = Date.now() + waitMs
  for (;;) {
    const mine = heldHere.get(path)
    if (mine !== undefined) {
      const left = deadline - Date.now()
      let timer: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        mine.released.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), Math.max(0, left)) })
      ])
      clearTimeout(timer)
      if (timedOut) throw new DataDirLockedError(dataDir, `another app in this process, still open after ${waitMs} ms (close it, and await app.close(), before starting the next)`)
      continue
    }
    const holder: LockHolder = { pid: process.pid, startTime: startTimeOf('self'), token: randomUUID() }
    try {
      writeFileSync(path, JSON.stringify(holder), { flag: 'wx' })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const current = readHolder(path)
      if (current !== undefined && holderRuns(current) && !(current.pid === process.pid && current.startTime === holder.startTime)) {
        throw new DataDirLockedError(dataDir, `process ${current.pid} (if no such process runs, delete ${path})`)
      }
      // a dead holder's lock (or one this very process left unreleased, which no app holds now)
      if (current === undefined && Date.now() < deadline) {
        // a lock being written right now reads as empty: look again before taking it over
        await new Promise((resolve) => setTimeout(resolve, POLL_MS))
        if (readHolder(path) !== undefined) continue
      }
      try { unlinkSync(path) } catch {}
      continue
    }
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    heldHere.set(path, { token: holder.token, released })
    return () => {
      if (heldHere.get(path)?.token !== holder.token) return
      heldHere.delete(path)
      // only our own file: a process that took over a lock we lost must keep it
      if (readHolder(path)?.token === holder.token) { try { unlinkSync(path) } catch {} }
      release()
    }
  }
}
