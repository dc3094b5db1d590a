import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DataDirLockedError } from '../errors.js'

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes `<dataDir>.lock` for this process. PGlite takes no lock of its own, and two processes
 * (or two apps in one process) opening one data directory corrupt it. A lock left by a dead
 * process is taken over. Returns the release function.
 */
export function lockDataDir (dataDir: string): () => void {
  const path = `${resolve(dataDir)}.lock`
  mkdirSync(dirname(path), { recursive: true })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' })
      return () => { try { unlinkSync(path) } catch {} }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = Number.parseInt(readFileSync(path, 'utf8'), 10)
      if (Number.isInteger(holder) && alive(holder)) {
        throw new DataDirLockedError(dataDir, holder === process.pid ? 'another app in this process' : `process ${holder}`)
      }
      unlinkSync(path)
    }
  }
  throw new DataDirLockedError(dataDir, 'a process that keeps re-taking the lock')
}
