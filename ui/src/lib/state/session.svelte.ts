import { setCsrfToken, whenUnauthorized } from '../api/client.js'
import { session as sessionApi } from '../api/dashboard.js'

/** Who is logged in; null shows the login page. */
export const auth = $state<{ user: { username: string, role: 'admin' | 'guest' } | null, checked: boolean, expired: boolean }>({ user: null, checked: false, expired: false })

// Whether this browser logged in here and has not logged out or been refused since (not a secret: the
// session itself is an httpOnly cookie). Without it a visitor gets the login page at once, instead of
// asking the server and getting two 401s (the session and the prefetched first view) in the console.
const SIGNED_IN = `fmd-signed-in:${location.pathname}`
const signedIn = (on: boolean): void => { if (on) localStorage.setItem(SIGNED_IN, '1'); else localStorage.removeItem(SIGNED_IN) }

/** False when this browser has not logged in to this dashboard (or has logged out since): no session to ask for. */
export const mayBeSignedIn = (): boolean => localStorage.getItem(SIGNED_IN) === '1'

whenUnauthorized(() => {
  if (auth.user !== null) auth.expired = true
  auth.user = null
  signedIn(false)
})

export async function checkSession (): Promise<void> {
  if (!mayBeSignedIn()) {
    auth.checked = true
    return
  }
  try {
    const info = await sessionApi.current()
    setCsrfToken(info.csrfToken)
    auth.user = { username: info.username, role: info.role }
  } catch {
    // a 401 cleared the mark (whenUnauthorized); an unreachable server leaves it for the next visit
    auth.user = null
  } finally {
    auth.checked = true
  }
}

export async function login (username: string, password: string): Promise<void> {
  const info = await sessionApi.login(username, password)
  setCsrfToken(info.csrfToken)
  signedIn(true)
  auth.expired = false
  auth.user = { username: info.username, role: info.role }
}

export async function logout (): Promise<void> {
  try { await sessionApi.logout() } finally {
    auth.user = null
    signedIn(false)
  }
}

export const isAdmin = (): boolean => auth.user?.role === 'admin'
