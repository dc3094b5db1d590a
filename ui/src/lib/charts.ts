// chart.js with the pieces the dashboard draws: the core chart types, matrix (heatmaps) and box plots.
import { Chart, registerables, type Scale, type ScaleOptions } from 'chart.js'
import { MatrixController, MatrixElement } from 'chartjs-chart-matrix'
import { BoxPlotController, BoxAndWiskers } from '@sgratzl/chartjs-chart-boxplot'
import { ms } from './format.js'

Chart.register(...registerables, MatrixController, MatrixElement, BoxPlotController, BoxAndWiskers)
Chart.defaults.animation = false
Chart.defaults.maintainAspectRatio = false

export { Chart }
export type { ChartConfiguration } from 'chart.js'

/** At most this many labels on a log axis, however wide it is. */
export const MAX_LOG_TICKS = 12
// room per label: "500 ms" is about 40 px wide in chart.js's 12 px font, a label about 16 px high
const PX_PER_LABEL_HORIZONTAL = 64
const PX_PER_LABEL_VERTICAL = 28

// 0.1 * 2 is 0.20000000000000004: a tick's value is the round number it stands for
const round = (value: number): number => Number(value.toPrecision(12))

/**
 * The values labelled on a log axis from `min` to `max`: 1, 2 and 5 of every decade; only the decades
 * (1, 10, 100…) when those would be more than `maxTicks`; every second (third…) decade when even the
 * decades are too many. chart.js's own log ticks are every 1–9 of a decade, and its default labels
 * (1, 2, 3, 5 and the whole last fifth of the axis) overlap.
 *
 * ### Examples
 * ```ts
 * logTickValues(0.8, 600) // [1, 2, 5, 10, 20, 50, 100, 200, 500]
 * logTickValues(0.01, 10_000, 6) // [0.01, 1, 100, 10000]: 7 decades are too many, so every second one
 * ```
 */
export function logTickValues (min: number, max: number, maxTicks = MAX_LOG_TICKS): number[] {
  if (!(min > 0) || !(max >= min) || !Number.isFinite(max)) return []
  const inside = (value: number): boolean => value >= min * (1 - 1e-9) && value <= max * (1 + 1e-9)
  const first = Math.floor(Math.log10(min))
  const last = Math.ceil(Math.log10(max))
  const withSteps = (steps: number[]): number[] => {
    const values: number[] = []
    for (let exponent = first; exponent <= last; exponent++) {
      for (const step of steps) {
        const value = round(step * 10 ** exponent)
        if (inside(value)) values.push(value)
      }
    }
    return values
  }
  const limit = Math.max(2, maxTicks)
  const oneTwoFive = withSteps([1, 2, 5])
  // an axis inside one decade (3 to 4 ms) has no 1, 2 or 5 to show: label its whole numbers instead
  if (oneTwoFive.length < 2) {
    const all = withSteps([1, 2, 3, 4, 5, 6, 7, 8, 9])
    return all.length <= limit ? all : oneTwoFive
  }
  if (oneTwoFive.length <= limit) return oneTwoFive
  const decades = withSteps([1])
  const every = Math.ceil(decades.length / limit)
  return decades.filter((_, i) => i % every === 0)
}

/** A log-axis tick's label: the duration with the shared {@link ms} formatter (`500 ms`, `2 s`). */
export function logTickLabel (value: number | string): string {
  return ms(Number(value), { trimZeros: true })
}

/**
 * The options of every logarithmic duration axis (box plots, a report's CDFs): ticks at
 * {@link logTickValues} for the axis's length, labelled by {@link logTickLabel}.
 *
 * ### Examples
 * ```ts
 * const options = { scales: { x: logDurationAxis({ color: cssVar('--muted') }) } }
 * ```
 */
export function logDurationAxis ({ title = 'duration', color }: { title?: string, color?: string } = {}): ScaleOptions<'logarithmic'> {
  return {
    type: 'logarithmic',
    title: { display: true, text: title, ...(color === undefined ? {} : { color }) },
    ticks: { callback: logTickLabel, maxRotation: 0, ...(color === undefined ? {} : { color }) },
    afterBuildTicks: (scale: Scale) => {
      const room = scale.isHorizontal() ? scale.width / PX_PER_LABEL_HORIZONTAL : scale.height / PX_PER_LABEL_VERTICAL
      const values = logTickValues(scale.min, scale.max, Math.min(MAX_LOG_TICKS, Math.floor(room)))
      if (values.length > 0) scale.ticks = values.map((value) => ({ value, major: Number.isInteger(Math.log10(value)) }))
    }
  }
}
