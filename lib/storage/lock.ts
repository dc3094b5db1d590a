import { randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, readlinkSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DataDirLockedError } from '../errors.js'

/** What a lock file says about its holder. */
interface LockHolder {
  pid: number
  /** The holder's start time (clock ticks after boot, /proc/<pid>/stat field 22); undefined off Linux. */
  startTime: string | undefined
  /** Random per lock taken: tells this process's locks from a dead process's with the same PID. */
  token: string
  /** The holder's PID namespace (`/proc/self/ns/pid`): its PID means something only inside it. */
  pidNamespace: string | undefined
}

const POLL_MS = 50
/** The holder touches its lock file this often ... */
const HEARTBEAT_MS = 3_000
/** ... so a lock from another PID namespace (another container on a shared volume) untouched this long is dead. */
const STALE_MS = 15_000
const OWN_PID_NAMESPACE = ((): string | undefined => { try { return readlinkSync('/proc/self/ns/pid') } catch { return undefined } })()

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

function mtimeMs (path: string): number {
  try { return statSync(path).mtimeMs } catch { return 0 }
}

function readHolder (path: string): LockHolder | undefined {
  try {
    const text = readFileSync(path, 'utf8')
    // the format of 0.1.0: a PID only
    if (/^\d+$/.test(text.trim())) return { pid: Number(text), startTime: undefined, token: '', pidNamespace: OWN_PID_NAMESPACE }
    const parsed = JSON.parse(text) as Partial<LockHolder>
    return typeof parsed.pid === 'number' && typeof parsed.token === 'string' ? { pidNamespace: undefined, ...parsed } as LockHolder : undefined
  } catch {
    // unreadable, half-written or the old plain-PID format: nobody we can tell is alive
    return undefined
  }
}

/**
 * Takes `<dataDir>.lock` for this process. PGlite takes no lock of its own, and two processes (or two
 * apps in one process) opening one data directory corrupt it. The file names the holder by PID, start
 * time, PID namespace and a random token, and the holder touches it every few seconds. A lock whose
 * holder no longer runs (killed with SIGKILL, a container restarted with the same PID) is taken over;
 * a holder in another PID namespace (another container sharing the volume) cannot be looked up, so its
 * lock is taken over once it has not been touched for `STALE_MS`. A lock held by another app of this
 * process, say one a test suite closes without awaiting, is waited for up to `waitMs`. Resolves with
 * the release function.
 */
export async function lockDataDir (dataDir: string, waitMs: number): Promise<() => void> {
  const path = `${resolve(dataDir)}.lock`
  mkdirSync(dirname(path), { recursive: true })
  const startedAt = Date.now()
  const deadline = startedAt + waitMs
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
    const holder: LockHolder = { pid: process.pid, startTime: startTimeOf('self'), token: randomUUID(), pidNamespace: OWN_PID_NAMESPACE }
    try {
      writeFileSync(path, JSON.stringify(holder), { flag: 'wx' })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const current = readHolder(path)
      if (current !== undefined && current.pidNamespace !== OWN_PID_NAMESPACE) {
        const untouchedMs = Date.now() - mtimeMs(path)
        if (untouchedMs < STALE_MS) {
          // wait for a dead holder's lock to go stale; a live one keeps touching it
          if (Date.now() < Math.max(deadline, startedAt + STALE_MS + HEARTBEAT_MS)) {
            await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, STALE_MS - untouchedMs + POLL_MS)))
            continue
          }
          throw new DataDirLockedError(dataDir, `process ${current.pid} of another PID namespace (another container?), which still touches the lock (if no such process runs, delete ${path})`)
        }
      } else if (current !== undefined && holderRuns(current) && !(current.pid === process.pid && current.startTime === holder.startTime)) {
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
    const heartbeat = setInterval(() => {
      try { if (readHolder(path)?.token === holder.token) utimesSync(path, new Date(), new Date()) } catch {}
    }, HEARTBEAT_MS)
    heartbeat.unref()
    return () => {
      if (heldHere.get(path)?.token !== holder.token) return
      clearInterval(heartbeat)
      heldHere.delete(path)
      // only our own file: a process that took over a lock we lost must keep it
      if (readHolder(path)?.token === holder.token) { try { unlinkSync(path) } catch {} }
      release()
    }
  }
}
