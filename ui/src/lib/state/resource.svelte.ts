import { ApiError } from '../api/client.js'

/** Seconds between retries while the monitoring database is unavailable, unless the server says. */
const UNAVAILABLE_RETRY_S = 5

/** Auto-refresh: every view's data is fetched again when the tick moves. */
export const refresh = $state({ tick: 0, everyS: Number(localStorage.getItem('fmd-refresh') ?? 0) })

let timer: ReturnType<typeof setInterval> | undefined
export function setAutoRefresh (seconds: number): void {
  refresh.everyS = seconds
  localStorage.setItem('fmd-refresh', String(seconds))
  if (timer !== undefined) clearInterval(timer)
  timer = seconds > 0 ? setInterval(() => { refresh.tick++ }, seconds * 1000) : undefined
}
setAutoRefresh(refresh.everyS)

/**
 * Data for a view, with loading and error states. Call during component set-up: `fetcher` runs in
 * an effect, so the reactive values it reads before its first await (route, range) refetch it.
 */
export function resource<T> (fetcher: () => Promise<T>): { data: T | undefined, error: string, unavailable: boolean, loading: boolean } {
  const state = $state<{ data: T | undefined, error: string, unavailable: boolean, loading: boolean }>({ data: undefined, error: '', unavailable: false, loading: true })
  let retries = $state(0)
  $effect(() => {
    void refresh.tick
    void retries
    let cancelled = false
    let retry: ReturnType<typeof setTimeout> | undefined
    state.loading = true
    fetcher().then((data) => {
      if (!cancelled) { state.data = data; state.error = ''; state.unavailable = false }
    }, (err: unknown) => {
      if (cancelled) return
      state.error = err instanceof Error ? err.message : String(err)
      // the database is starting or down: say so, and ask again when the server suggests
      state.unavailable = err instanceof ApiError && err.unavailable
      if (state.unavailable) retry = setTimeout(() => { retries++ }, ((err as ApiError).retryAfterS ?? UNAVAILABLE_RETRY_S) * 1000)
    }).finally(() => { if (!cancelled) state.loading = false })
    return () => { cancelled = true; clearTimeout(retry) }
  })
  return state
}
