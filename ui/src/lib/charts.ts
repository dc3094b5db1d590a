// chart.js with the pieces the dashboard draws: the core chart types, matrix (heatmaps) and box plots.
import { Chart, registerables } from 'chart.js'
import { MatrixController, MatrixElement } from 'chartjs-chart-matrix'
import { BoxPlotController, BoxAndWiskers } from '@sgratzl/chartjs-chart-boxplot'

Chart.register(...registerables, MatrixController, MatrixElement, BoxPlotController, BoxAndWiskers)
Chart.defaults.animation = false
Chart.defaults.maintainAspectRatio = false

export { Chart }
export type { ChartConfiguration } from 'chart.js'
