/**
 * The process that creates a new PGlite data directory: initdb and the migrations; then it exits and
 * all the memory they used goes back to the system (see initDataDirInProcess in dialect.ts). Its one
 * argument is the storage options as JSON. A failure exits non-zero with the error on stderr.
 */
import type { StorageOptions } from '../options.js'
import { openDatabase } from './dialect.js'
import { migrateToLatest } from './migrate.js'

const options = JSON.parse(process.argv[2]!) as Pick<StorageOptions, 'database' | 'tablePrefix'>
const opened = await openDatabase(options, { initHere: true })
try {
  await migrateToLatest(opened.rawDb, options.tablePrefix)
} finally {
  await opened.rawDb.destroy()
}
