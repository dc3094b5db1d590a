import { hkdfSync, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'

const KEY_BYTES = 32

/** Where the key comes from, for the start-up log. */
export type SessionKeySource = 'secret' | 'file' | 'process'

/**
 * The 32-byte key of the session cookie: derived (HKDF) from `sessionSecret`; else, with PGlite,
 * a random key kept beside its data directory (one process owns it, so restarts keep sessions);
 * else a random key of this process (sessions end at restart and do not cross processes).
 */
export function sessionKey (secret: string | undefined, keyFile: string | undefined): { key: Buffer, source: SessionKeySource } {
  if (secret !== undefined) {
    return { key: Buffer.from(hkdfSync('sha256', secret, 'fastify-monitoring-dashboard', 'session cookie', KEY_BYTES)), source: 'secret' }
  }
  if (keyFile !== undefined) {
    try {
      const stored = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'hex')
      if (stored.length === KEY_BYTES) return { key: stored, source: 'file' }
    } catch { /* first start: make one */ }
    const key = randomBytes(KEY_BYTES)
    try {
      writeFileSync(keyFile, key.toString('hex'), { mode: 0o600 })
      return { key, source: 'file' }
    } catch { /* read-only directory: fall through to a process key */ }
  }
  return { key: randomBytes(KEY_BYTES), source: 'process' }
}
