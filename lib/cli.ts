#!/usr/bin/env node
import { TEST_USAGE, testCommand } from './test-monitor/command.js'

const USAGE = `Usage: fastify-monitoring-dashboard <command> [options]

Commands:
  test    run the app's test suite and record which endpoints each test reaches

${TEST_USAGE}`

const [command, ...args] = process.argv.slice(2)
if (command === 'test') {
  process.exitCode = await testCommand(args)
} else {
  process.stderr.write(`${command === undefined || command === '--help' ? '' : `unknown command: ${command}\n\n`}${USAGE}\n`)
  process.exitCode = command === '--help' ? 0 : 2
}
