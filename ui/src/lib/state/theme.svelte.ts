const stored = localStorage.getItem('fmd-theme')
export const theme = $state({ name: stored === 'dark' || stored === 'light' ? stored : (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light') })

export function applyTheme (): void {
  document.documentElement.dataset.theme = theme.name
  localStorage.setItem('fmd-theme', theme.name)
}

/** A CSS custom property of the current theme, for chart colours. */
export function cssVar (name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim()
}

export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac']
