import createError from '@fastify/error'

/**
 * The plugin's coded errors. Every error thrown at `register` names the option at fault.
 *
 * ### Examples
 * ```ts
 * try { await app.register(monitor, { tablePrefix: 'x;drop' }) }
 * catch (err) { if (err.code === 'FST_MONITORING_INVALID_OPTION') … }
 * ```
 */
export const InvalidOptionError = createError<[string, string]>(
  'FST_MONITORING_INVALID_OPTION',
  '"%s" option %s',
  500,
  TypeError
)

export const ConfigFileError = createError<[string, string]>(
  'FST_MONITORING_CONFIG_FILE',
  'cannot read config file "%s": %s'
)

export const DataDirLockedError = createError<[string, string]>(
  'FST_MONITORING_DATA_DIR_LOCKED',
  'embedded database directory "%s" is in use by %s; PGlite belongs to one process: give each app its own dataDir, stop the app before the command line reads its directory, or use a PostgreSQL server to share one database'
)

export const UnknownEndpointError = createError<[string]>(
  'FST_MONITORING_UNKNOWN_ENDPOINT',
  'no monitored endpoint "%s"',
  404
)

export const StorageUnavailableError = createError<[string]>(
  'FST_MONITORING_STORAGE_UNAVAILABLE',
  'monitoring database unavailable: %s',
  503
)

export const UiMissingError = createError<[string]>(
  'FST_MONITORING_UI_MISSING',
  'the dashboard UI is not built (no %s): run `npm run build`, or register with dashboard: false'
)

export const DecoratorConflictError = createError<[string, string]>(
  'FST_MONITORING_DECORATOR_CONFLICT',
  'the app already has a %s decorator "%s", which fastify-monitoring-dashboard adds; register nothing else under that name'
)

export const DatabaseUnavailableError = createError<[string, { cause: unknown }?]>(
  'FST_MONITORING_DATABASE_UNAVAILABLE',
  'the monitoring database is unavailable (%s); retry shortly',
  503
)

export const UnknownSelectionError = createError<[string]>(
  'FST_MONITORING_UNKNOWN_SELECTION',
  'nothing to compare: %s',
  404
)

export const GraphError = createError<[string, string]>(
  'FST_MONITORING_GRAPH',
  'custom graph "%s": %s',
  500,
  TypeError
)

export const errors = {
  InvalidOptionError,
  ConfigFileError,
  DataDirLockedError,
  UnknownEndpointError,
  StorageUnavailableError,
  UiMissingError,
  DecoratorConflictError,
  DatabaseUnavailableError,
  UnknownSelectionError,
  GraphError
}
