import { setCsrfToken, whenUnauthorized } from '../api/client.js'
import { session as sessionApi } from '../api/dashboard.js'

/** Who is logged in; null shows the login page. */
export const auth = $state<{ user: { username: string, role: 'admin' | 'guest' } | null, checked: boolean, expired: boolean }>({ user: null, checked: false, expired: false })

whenUnauthorized(() => {
  if (auth.user !== null) auth.expired = true
  auth.user = null
})

export async function checkSession (): Promise<void> {
  try {
    const info = await sessionApi.current()
    setCsrfToken(info.csrfToken)
    auth.user = { username: info.username, role: info.role }
  } catch {
    auth.user = null
  } finally {
    auth.checked = true
  }
}

export async function login (username: string, password: string): Promise<void> {
  const info = await sessionApi.login(username, password)
  setCsrfToken(info.csrfToken)
  auth.expired = false
  auth.user = { username: info.username, role: info.role }
}

export async function logout (): Promise<void> {
  try { await sessionApi.logout() } finally { auth.user = null }
}

export const isAdmin = (): boolean => auth.user?.role === 'admin'
