#!/usr/bin/env node
import { TEST_USAGE, testCommand } from './test-monitor/command.js'
import { REPORT_USAGE, main as cliCommands } from './cli/main.js'
import { SERVE_USAGE } from './cli/serve.js'

const USAGE = `Usage: fastify-monitoring-dashboard <command> [options]

Commands:
  test    run the app's test suite and record which endpoints each test reaches
  report  compare two versions, ranges or load-test runs per endpoint; exit 1 on a regression (a CI gate)
  load    drive a running app with autocannon and record the run's window as a baseline
  serve   run the collector: the dashboard, /metrics and the ingest route as a server of their own

${TEST_USAGE}

${REPORT_USAGE}

${SERVE_USAGE}`

const [command, ...args] = process.argv.slice(2)
if (command === 'test') {
  process.exitCode = await testCommand(args)
} else if (command === 'report' || command === 'load' || command === 'serve') {
  process.exitCode = await cliCommands([command, ...args])
} else {
  process.stderr.write(`${command === undefined || command === '--help' ? '' : `unknown command: ${command}\n\n`}${USAGE}\n`)
  process.exitCode = command === '--help' ? 0 : 2
}
