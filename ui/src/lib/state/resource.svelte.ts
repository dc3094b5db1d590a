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
export function resource<T> (fetcher: () => Promise<T>): { data: T | undefined, error: string, loading: boolean } {
  const state = $state<{ data: T | undefined, error: string, loading: boolean }>({ data: undefined, error: '', loading: true })
  $effect(() => {
    void refresh.tick
    let cancelled = false
    state.loading = true
    fetcher().then((data) => {
      if (!cancelled) { state.data = data; state.error = '' }
    }, (err: unknown) => {
      if (!cancelled) state.error = err instanceof Error ? err.message : String(err)
    }).finally(() => { if (!cancelled) state.loading = false })
    return () => { cancelled = true }
  })
  return state
}
