import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

// OWASP's scrypt floor (N=2^17, r=8, p=1) needs 128 MB per hash; 2^15 with r=8 keeps a login at
// ~30 ms and 32 MB, which the login rate limit makes adequate for a monitoring dashboard.
const PARAMS = { N: 2 ** 15, r: 8, p: 1 }
const KEY_BYTES = 32

function derive (password: string, salt: Buffer, params: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_BYTES, { ...params, maxmem: 256 * 1024 * 1024 }, (err, key) => {
      if (err !== null) reject(err); else resolve(key)
    })
  })
}

/** `scrypt$N$r$p$salt$hash` (base64), so the parameters can be raised later without breaking old hashes. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt, PARAMS)
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$')
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, 'base64')
  const key = await derive(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p) })
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** A password for the first admin: 18 random bytes, URL-safe. */
export function randomPassword (): string {
  return randomBytes(18).toString('base64url')
}

/**
 * A hash of nothing, checked when the user does not exist, so a login takes as long for an
 * unknown user as for a wrong password (no user enumeration by timing).
 */
export const DUMMY_HASH = `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=`
