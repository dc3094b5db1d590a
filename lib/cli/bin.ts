#!/usr/bin/env node
// The package's command (package.json "bin"): see main.ts.
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2))
